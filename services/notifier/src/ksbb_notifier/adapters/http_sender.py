"""Webhook HTTP client: https-only, SSRF guard at delivery time, no redirects, bounded response capture.

Connections are kept alive in one small pool per endpoint and checked destination: a pool is keyed by the
endpoint, the URL's scheme, host and port, and the address that passed the SSRF check at this delivery.
So a pooled connection is only ever reused for the host name its TLS certificate was verified for and the
address that was checked (a host that resolves elsewhere later gets a new pool), and one endpoint's pool
keeps at most its own concurrency's worth of idle connections, so looking for a free one costs nothing like
a search through every endpoint's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import httpx

from ksbb_notifier.domain.deliveries import AttemptResult, WebhookRequest
from ksbb_notifier.domain.errors import AddressRefused, UrlRefused
from ksbb_notifier.domain.ssrf import AddressPolicy

Resolver = Callable[[str, int], Awaitable[list[str]]]
#: Idle keep-alive connections are closed after this long (receivers commonly close after 5-75 s).
KEEPALIVE_EXPIRY_SECONDS = 30.0
#: Pools kept at once; the least recently used one is closed beyond this.
MAX_POOLS = 2000


class PoolKey(NamedTuple):
    """What a pooled connection may be reused for: one endpoint, one destination as checked."""

    endpoint_id: str
    scheme: str
    host: str
    port: int | None
    address: str


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
        connections_per_endpoint: int = 4,
        max_pools: int = MAX_POOLS,
    ) -> None:
        self._policy = policy
        self._insecure = frozenset(h.lower() for h in insecure_http_hosts)
        self._resolver = resolver or system_resolver
        self._max_body = max_body_bytes
        self._timeout = timeout
        self._transport = transport  # a test's transport serves every endpoint (no pools of its own)
        # No cap on connections opened (a request never waits for the pool: concurrency is the dispatcher's
        # business, and two loops may share a sender); idle ones kept: what the endpoint's concurrency uses.
        self._limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=connections_per_endpoint,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        # One TLS context (the CA bundle loaded once) shared by every pool; SNI and the certificate check
        # still use each request's own host name (`sni_hostname`).
        self._tls = httpx.create_ssl_context() if transport is None else None
        self._max_pools = max_pools
        self._pools: OrderedDict[PoolKey, httpx.AsyncClient] = OrderedDict()
        #: Requests in flight per pool: a pool in use is never closed to make room for another.
        self._in_use: dict[PoolKey, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Close every pool's connections."""
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for client in pools:
            with contextlib.suppress(Exception):
                await client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def pools(self) -> list[PoolKey]:
        """The pools open now, least recently used first."""
        return list(self._pools)

    def _pool(self, key: PoolKey) -> httpx.AsyncClient:
        """The endpoint's client for this checked destination (created on first use, kept while used)."""
        client = self._pools.get(key)
        if client is not None:
            self._pools.move_to_end(key)
            return client
        client = httpx.AsyncClient(
            follow_redirects=False, timeout=self._timeout, transport=self._transport, limits=self._limits,
            verify=self._tls or True,
        )
        self._pools[key] = client
        if len(self._pools) > self._max_pools:
            self._close_idle(len(self._pools) - self._max_pools)
        return client

    def _close_idle(self, count: int) -> None:
        """Close up to `count` of the least recently used pools that no request is using."""
        for key in [k for k in self._pools if not self._in_use.get(k)][:count]:
            task = asyncio.ensure_future(self._pools.pop(key).aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

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
        key = PoolKey(request.endpoint_id, parsed.scheme, parsed.host.lower(), parsed.port, address)
        client = self._pool(key)
        self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            return await self._post(client, parsed, target, request, started)
        finally:
            self._in_use[key] -= 1
            if not self._in_use[key]:
                del self._in_use[key]

    async def _post(
        self, client: httpx.AsyncClient, parsed: httpx.URL, target: httpx.URL, request: WebhookRequest, started: float
    ) -> AttemptResult:
        """The POST itself, on the pool chosen for the checked destination."""
        outgoing = client.build_request(
            "POST",
            target,
            content=request.body.encode(),
            headers={**request.headers, "host": _host_header(parsed)},
        )
        if parsed.scheme == "https":
            # Certificate and SNI are checked against the real host name, not the pinned address.
            outgoing.extensions["sni_hostname"] = parsed.host
        try:
            response = await client.send(outgoing, stream=True)
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
