"""The one way the server fetches a URL it was given: feeds, instances, media, avatars, profiles.

Posts name image and avatar URLs, and organisers name feeds; none of them may make the server
talk to what runs beside it (server-side request forgery). As Mastodon's private-address check
and Synapse's ip_range_blacklist do, every request resolves its host first and refuses private,
loopback, link-local, multicast, unspecified and reserved addresses (IPv4-mapped, NAT64 and 6to4
forms included); redirects are followed here, at most MAX_REDIRECTS, each hop checked again; and
the connection itself goes through `GuardedBackend`, which resolves, checks and connects to the
address it checked, so a name that answers differently between the check and the connect (DNS
rebinding) cannot win. Time and size are capped. Refusals are logged with the URL and the reason
and counted in /metrics (liveblog_outbound_refused_total). `[feeds] allow_private_addresses`
turns the address rule off for tests and the demo, whose fake networks run on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import socket
import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx

from liveblog.metrics import OUTBOUND_REFUSED

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5  # browsers allow 20; a feed or an image needs one or two (http -> https, a CDN)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # a page of 40 Mastodon statuses is ~100 KiB; a feed rarely 1 MiB
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

_V4, _V6 = ipaddress.IPv4Network, ipaddress.IPv6Network
# (network, reason): the union of Synapse's DEFAULT_IP_RANGE_BLACKLIST and Mastodon's
# PrivateAddressCheck, from IANA's special-purpose registries. Explicit, because what the stdlib's
# is_global says differs between Python releases (3.11.7 calls 224.0.0.1 and 2002:7f00:1:: global).
BLOCKED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared (carrier-grade NAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "reserved"),  # documentation
    (_V4("192.88.99.0/24"), "reserved"),  # 6to4 relay anycast
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "reserved"),  # benchmarking
    (_V4("198.51.100.0/24"), "reserved"),  # documentation
    (_V4("203.0.113.0/24"), "reserved"),  # documentation
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # and 255.255.255.255, broadcast
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "reserved"),  # IPv4-compatible, deprecated
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001::/23"), "reserved"),  # IETF protocol assignments, Teredo (2001::/32) among them
    (_V6("2001:db8::/32"), "reserved"),  # documentation
    (_V6("2002::/16"), "reserved"),  # 6to4: an IPv4 address inside, which could be any
    (_V6("fc00::/7"), "private"),  # unique local
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "private"),  # site-local, deprecated
    (_V6("ff00::/8"), "multicast"),
)
NAT64 = _V6("64:ff9b::/96")  # the well-known prefix: the last 32 bits are the IPv4 address reached


def refusal(ip: IPAddress) -> str | None:
    """Why the server must not connect to this address (e.g. "loopback"), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))  # no scope id: fe80::1%eth0 is fe80::1
        inner = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if inner is not None:  # ::ffff:127.0.0.1 and 64:ff9b::7f00:1 reach 127.0.0.1
            reason = refusal(inner)
            return f"IPv4-mapped {reason}" if reason else None
    for network, reason in BLOCKED:
        if ip.version == network.version and ip in network:
            return reason
    # What the table might miss, as the stdlib knows it.
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    ):
        if hit:
            return reason
    return None


class OutboundError(Exception):
    """A fetch that did not happen or did not finish; the message says why, for logs and panels."""


class Refused(OutboundError):
    """A fetch the rules forbid (an address, a scheme, a redirect too many): nothing was sent."""

    def __init__(self, reason: str, detail: str, url: str = "") -> None:
        super().__init__(f"refused: {detail}")
        self.reason = reason  # a short category, the metric's label
        self.detail = detail
        self.url = url


class Network:
    """DNS and TCP as they really are. Tests replace this (a fake internet with its own names and
    routes), never the checks made on what it answers."""

    def __init__(self) -> None:
        self._tcp = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def connect(
        self,
        ip: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[typing.Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._tcp.connect_tcp(
            ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )


async def vetted(host: str, port: int, network: Network, allow_private: bool) -> list[str]:
    """The addresses `host` may be reached at. Raises Refused when any address it has is
    forbidden (as Synapse does: a name that points inside is not trusted for its other
    addresses either), OutboundError when it cannot be resolved."""
    bare = host.strip("[]")
    addresses = _literal(bare)
    if addresses is None:
        try:
            addresses = await network.resolve(bare, port)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {bare[:100]}: {exc}") from None
    return allowed(bare, addresses, allow_private)


def vetted_now(host: str, port: int, allow_private: bool) -> list[str]:
    """`vetted` for synchronous clients (requests, in a worker thread), with the real resolver."""
    bare = host.strip("[]")
    addresses = _literal(bare)
    if addresses is None:
        try:
            infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise OutboundError(f"cannot resolve {bare[:100]}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return allowed(bare, addresses, allow_private)


def _literal(host: str) -> list[str] | None:
    """[host] when it is an IP address already (nothing to resolve), else None."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return None


def allowed(host: str, addresses: list[str], allow_private: bool) -> list[str]:
    if not addresses:
        raise OutboundError(f"cannot resolve {host[:100]}: no address")
    if not allow_private:
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address))
            if reason is not None:
                where = f"{host[:100]} is at {address}," if host != address else f"{address} is"
                raise Refused(reason.removeprefix("IPv4-mapped "), f"{where} a {reason} address")
    return addresses


def record_refusal(purpose: str, exc: Refused) -> None:
    """Log and count a refused fetch (once, where it is given up)."""
    OUTBOUND_REFUSED.add(exc.reason)
    log.warning("outbound %s fetch refused: %s (%s)", purpose, exc.url[:300] or "?", exc.detail)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network for our clients: every new connection resolves its host, checks every
    address, and connects to a checked one, never to a name resolved again later."""

    def __init__(self, network: Network, allow_private: bool) -> None:
        self.network = network
        self.allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await vetted(host, port, self.network, self.allow_private):
            try:
                return await self.network.connect(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:  # try the host's next address
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix socket", "a unix socket is not a URL we fetch")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context of every outbound client: certifi's CA bundle, or the one named
    by SSL_CERT_FILE or SSL_CERT_DIR (as httpx reads them; a test's or a private network's CA),
    host names checked. Built once per CA source and process: loading a bundle takes 50 to
    200 ms, and httpx built two per client (0.3 to 0.6 s for a server's seven clients). A
    context is safe to share between connections, clients and threads."""
    return _tls_context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.cache
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # Keyed by the variables; httpx reads them itself (trust_env), else takes certifi's bundle.
    return httpx.create_ssl_context(trust_env=True)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a GuardedBackend (httpx takes no network backend argument, so
    the pool it made is replaced by one that has ours; TLS still verifies the URL's host name)."""

    def __init__(self, backend: GuardedBackend) -> None:
        context = tls_context()
        # Given the shared context, httpx builds none for the pool it makes (replaced below).
        super().__init__(verify=context, trust_env=False, retries=0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            network_backend=backend,
            retries=0,
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
        )


class OutboundClient:
    """An httpx client with the rules above. `get` returns the response with its body read
    (empty unless 2xx) or raises OutboundError (Refused when the rules forbid it).

    `transport` (an httpx.MockTransport in tests) replaces the network: names are not resolved
    then, but literal addresses, schemes and redirects are still checked."""

    def __init__(
        self,
        purpose: str,
        *,
        allow_private: bool,
        timeout: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
        headers: dict[str, str] | None = None,
        network: Network | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.purpose = purpose  # "media", "rss", "mastodon", ...: in logs and nothing else
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.network = network or Network()
        self._resolve_names = transport is None
        # The process's verifying context (shared), or None when a mock transport stands in.
        self.ssl_context = tls_context() if transport is None else None
        self.client = httpx.AsyncClient(
            transport=transport or GuardedTransport(GuardedBackend(self.network, allow_private)),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "Liveblog", **(headers or {})},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(
        self,
        url: str,
        params: typing.Any = None,
        *,
        max_bytes: int | None = None,
        headers: typing.Callable[[str], dict[str, str]] | None = None,
    ) -> httpx.Response:
        """`headers(url)`, when given, adds headers to each request, redirects included (a
        signature names the URL it was made for)."""
        async with self._exchange(url):  # the whole exchange, redirects included
            limit = self.max_bytes if max_bytes is None else max_bytes
            return await self._follow(url, params, limit, headers)

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST a body (a fediverse delivery): the same address rules, no redirect followed, the
        answer's body read up to 64 KiB (only its status matters)."""
        request = self.client.build_request("POST", url, content=content, headers=headers)
        async with self._exchange(url):
            await self._check(request.url)
            response = await self.client.send(request, stream=True)
            try:
                body = await self._body(response, 65536) if response.status_code < 300 else b""
            finally:
                await response.aclose()
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    @contextlib.asynccontextmanager
    async def _exchange(self, url: str) -> typing.AsyncIterator[None]:
        """One exchange's time cap (twice the timeout), and its failures as OutboundError
        (refusals logged and counted)."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                yield
        except Refused as exc:
            exc.url = exc.url or url
            record_refusal(self.purpose, exc)
            raise
        except TimeoutError:
            raise OutboundError(f"no complete answer within {self.timeout * 2:g}s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: 0177.0.0.1, a bad Location...
            raise OutboundError(f"{type(exc).__name__}: {str(exc)[:200]}") from None

    async def _follow(
        self,
        url: str,
        params: typing.Any,
        max_bytes: int,
        headers: typing.Callable[[str], dict[str, str]] | None = None,
    ) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            request = self.client.build_request("GET", url, params=params)
            if headers is not None:
                request.headers.update(headers(str(request.url)))
            try:
                await self._check(request.url)
                response = await self.client.send(request, stream=True)
            except Refused as exc:
                exc.url = str(request.url)
                raise
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_CODES and location:
                    url, params = str(response.url.join(location)), None
                    continue
                body = await self._body(response, max_bytes) if 200 <= response.status_code < 300 else b""
            finally:
                await response.aclose()
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )
        raise Refused("redirects", f"more than {MAX_REDIRECTS} redirects", url)

    async def _check(self, url: httpx.URL) -> None:
        """Before each request, the first and every redirect: the URL's scheme, then its host's
        addresses (checked again at connect time, by GuardedBackend)."""
        if url.scheme not in ("http", "https"):
            raise Refused("scheme", f"{url.scheme or 'no'} scheme: only http and https are fetched")
        if not url.host:
            raise Refused("scheme", "no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        if self._resolve_names:
            await vetted(url.host, port, self.network, self.allow_private)
        elif (literal := _literal(url.host)) is not None:  # a mock transport: no names, no DNS
            allowed(url.host, literal, self.allow_private)

    @staticmethod
    async def _body(response: httpx.Response, max_bytes: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise OutboundError(f"the answer is larger than {max_bytes} bytes")
        body = bytearray()
        async for chunk in response.aiter_bytes():  # counted as it comes: a header can lie
            body += chunk
            if len(body) > max_bytes:
                raise OutboundError(f"the answer is larger than {max_bytes} bytes")
        return bytes(body)
