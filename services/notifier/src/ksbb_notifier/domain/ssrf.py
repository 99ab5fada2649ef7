"""SSRF policy: which resolved addresses a webhook may be delivered to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ksbb_notifier.domain.errors import AddressRefused

__all__ = ["METADATA_ADDRESSES", "AddressPolicy", "AddressRefused"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata services, refused even though some are also caught by the generic rules.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


@dataclass(frozen=True)
class AddressPolicy:
    """Refuses non-public destinations unless their host or network is allow-listed."""

    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, hosts: Iterable[str], cidrs: Iterable[str]) -> AddressPolicy:
        """A policy from settings values."""
        return cls(
            allow_hosts=frozenset(h.lower().strip("[]") for h in hosts),
            allow_networks=tuple(ipaddress.ip_network(c, strict=False) for c in cidrs),
        )

    def host_allowed(self, host: str) -> bool:
        """Whether a host name is exempt from the address check."""
        return host.lower().strip("[]") in self.allow_hosts

    def check_literal(self, host: str) -> None:
        """Refuse a host written as a literal address at once; names are checked when they are resolved."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        self.check(host, host)

    def check(self, host: str, address: str) -> IPAddress:
        """The address if delivery may connect to it; raises AddressRefused otherwise."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.host_allowed(host) or any(ip in network for network in self.allow_networks):
            return ip
        if ip in METADATA_ADDRESSES:
            raise AddressRefused(f"{host} resolves to a cloud metadata address ({ip})")
        if ip.is_loopback:
            raise AddressRefused(f"{host} resolves to a loopback address ({ip})")
        if ip.is_link_local:
            raise AddressRefused(f"{host} resolves to a link-local address ({ip})")
        if ip.is_multicast:
            raise AddressRefused(f"{host} resolves to a multicast address ({ip})")
        if ip.is_private:
            raise AddressRefused(f"{host} resolves to a private address ({ip})")
        if ip.is_reserved or ip.is_unspecified or not ip.is_global:
            raise AddressRefused(f"{host} resolves to a reserved address ({ip})")
        return ip
