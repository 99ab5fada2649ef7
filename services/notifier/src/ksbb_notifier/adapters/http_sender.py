"""Webhook HTTP client: https-only, SSRF guard at delivery time, no redirects, bounded response capture."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable

import httpx

from ksbb_notifier.domain.deliveries import AttemptResult, WebhookRequest
from ksbb_notifier.domain.errors import AddressRefused, UrlRefused
from ksbb_notifier.domain.ssrf import AddressPolicy

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the operating system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, insecure_http_hosts: list[str] | frozenset[str]) -> httpx.URL:
    """The parsed URL if it is https (or http to an allow-listed host); raises UrlRefused otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if not parsed.host:
        raise UrlRefused("the URL has no host")
    if parsed.userinfo:
        raise UrlRefused("credentials in the URL are not allowed")
    if parsed.scheme == "https":
        return parsed
    if parsed.scheme == "http" and parsed.host.lower() in {h.lower() for h in insecure_http_hosts}:
        return parsed
    raise UrlRefused("the URL must use https")


class HttpUrlRules:
    """The URL rules webhooks follow, as the sender applies them (so API checks and deliveries agree)."""

    def __init__(self, insecure_http_hosts: list[str]) -> None:
        self._insecure = frozenset(h.lower() for h in insecure_http_hosts)

    def host_of(self, url: str) -> str:
        """The URL's host if the URL may be used; raises UrlRefused otherwise."""
        return str(check_url(url, self._insecure).host)


class HttpWebhookSender:
    """Sends one signed request to the address that passed the SSRF check, never following redirects."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        insecure_http_hosts: list[str],
        timeout: float,
        max_body_bytes: int,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._insecure = frozenset(h.lower() for h in insecure_http_hosts)
        self._resolver = resolver or system_resolver
        self._max_body = max_body_bytes
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=200),
        )

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    async def resolve_checked(self, url: httpx.URL) -> str:
        """The first address of the URL's host, after every resolved address passed the policy."""
        host = url.host
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                addresses = await self._resolver(host, url.port or (443 if url.scheme == "https" else 80))
            except OSError as exc:
                raise AddressRefused(f"{host} does not resolve: {exc}") from exc
        if not addresses:
            raise AddressRefused(f"{host} does not resolve")
        # Every answer must pass: a mixed answer is how DNS rebinding sneaks a private address in.
        checked = [self._policy.check(host, address) for address in addresses]
        return str(checked[0])

    async def send(self, request: WebhookRequest) -> AttemptResult:
        """One POST; failures are results (no exceptions) so the caller can log and schedule them."""
        started = time.perf_counter()
        try:
            parsed = check_url(request.url, self._insecure)
            address = await self.resolve_checked(parsed)
        except (UrlRefused, AddressRefused) as exc:
            return AttemptResult(None, _elapsed(started), error=f"refused: {exc}")
        target = parsed.copy_with(host=address)
        outgoing = self._client.build_request(
            "POST",
            target,
            content=request.body.encode(),
            headers={**request.headers, "host": _host_header(parsed)},
        )
        if parsed.scheme == "https":
            # Certificate and SNI are checked against the real host name, not the pinned address.
            outgoing.extensions["sni_hostname"] = parsed.host
        try:
            response = await self._client.send(outgoing, stream=True)
            try:
                captured = await self._read_limited(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            return AttemptResult(None, _elapsed(started), error="timeout")
        except httpx.HTTPError as exc:
            return AttemptResult(None, _elapsed(started), error=f"{type(exc).__name__}: {exc}"[:300])
        return AttemptResult(
            response.status_code,
            _elapsed(started),
            response_body=captured,
            retry_after=response.headers.get("retry-after"),
        )

    async def _read_limited(self, response: httpx.Response) -> str:
        data = b""
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= self._max_body:
                break
        return data[: self._max_body].decode(errors="replace")


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port is None else f"{host}:{url.port}"


def _elapsed(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
