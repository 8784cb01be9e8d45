"""Outbound fetches are safe (capture/outbound.py): a URL named by a post or a feed never makes
the server talk to what runs beside it.

A second loopback HTTP service (`Service`) stands in for an internal one (an admin API, a cloud
metadata endpoint): every test asserts it got no request. Tests only have loopback, so the
"public internet" is a seam, `FakeInternet`: it answers DNS for a few test names with a public
address (PUBLIC) and routes connections to that address to a loopback port. It replaces DNS and
routing only; the checks run on what it answers exactly as they run on what the real resolver
answers. Each refusal test has a positive control beside it (the same path to a public name
works), so a seam that let nothing through could not make them pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ipaddress
import json
import logging
import ssl
import typing
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import trustme
from PIL import Image

from liveblog.capture.feeds.base import SourceError
from liveblog.capture.feeds.mastodon import MastodonSource
from liveblog.capture.feeds.media import MediaFetcher
from liveblog.capture.feeds.rss import RssSource
from liveblog.capture.feeds.x import XSource
from liveblog.capture.outbound import Network, OutboundClient, OutboundError, Refused, refusal
from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.metrics import OUTBOUND_REFUSED
from liveblog.models import SocialPost
from liveblog.services import Services
from liveblog.storage import Unit
from tests.conftest import eventually, make_settings, seed

# A global unicast address, as a CDN's would be. No packet goes there: FakeInternet routes it to
# a loopback port.
PUBLIC = "93.184.215.14"


def jpeg(red: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (red, 30, 30)).save(out, "JPEG")
    return out.getvalue()


class Service:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records every request it gets."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[str] = []  # "GET /path"
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.port = 0
        self.tls = tls  # https with this server context
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Service:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        method, target = head.split(b" ", 2)[:2]
        path = target.decode().split("?")[0]
        self.requests.append(f"{method.decode()} {path}")
        status, headers, body = self.routes.get(path, (404, {}, b"not here"))
        lines = [f"HTTP/1.1 {status} X", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        if "content-length" not in {k.lower() for k in headers} and headers.get("x-no-length") is None:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()


class FakeInternet(Network):
    """DNS and routing for tests: `names` answer with the addresses given (a list per lookup, the
    last one repeating), and a connection to an address in `routes` reaches that loopback port.
    Anything else is resolved and connected to for real."""

    def __init__(self, names: dict[str, list[list[str]]], routes: dict[str, int]) -> None:
        super().__init__()
        self.names = names
        self.routes = routes
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.names.get(host)
        if answers is None:
            return await super().resolve(host, port)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async def connect(
        self,
        ip: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[typing.Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((ip, port))
        if ip in self.routes:
            ip, port = "127.0.0.1", self.routes[ip]
        return await super().connect(ip, port, timeout, local_address, socket_options)


@pytest.fixture
async def internal() -> AsyncIterator[Service]:
    """The service beside the app that no post may reach."""
    async with Service() as service:
        service.routes["/secret.png"] = (200, {"content-type": "image/jpeg"}, jpeg())
        service.routes["/feed.rss"] = (
            200,
            {"content-type": "application/rss+xml"},
            b'<rss version="2.0"><channel><title>inside</title></channel></rss>',
        )
        yield service


@pytest.fixture
async def public() -> AsyncIterator[Service]:
    """What the test names (cdn.test, blog.test) reach through FakeInternet."""
    async with Service() as service:
        service.routes["/photo.jpg"] = (200, {"content-type": "image/jpeg"}, jpeg())
        service.routes["/avatar.jpg"] = (200, {"content-type": "image/jpeg"}, jpeg(red=20))
        yield service


def internet(public: Service, **names: list[list[str]]) -> FakeInternet:
    return FakeInternet({"cdn.test": [[PUBLIC]], "blog.test": [[PUBLIC]], **names}, {PUBLIC: public.port})


def client(network: Network | None = None, **kw: Any) -> OutboundClient:
    return OutboundClient("test", allow_private=False, timeout=5.0, network=network, **kw)


# -- which addresses are refused ------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "fd12:3456::1": "private",
    "fc00::1": "private",
    "fec0::1": "private",
    "64:ff9b:1::a00:1": "private",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "100.64.0.1": "shared (carrier-grade NAT)",
    "100.127.255.254": "shared (carrier-grade NAT)",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.0.8": "reserved",
    "192.0.2.1": "reserved",
    "198.18.0.1": "reserved",
    "198.51.100.1": "reserved",
    "203.0.113.9": "reserved",
    "192.88.99.1": "reserved",
    "2001:db8::1": "reserved",
    "2001::1": "reserved",
    "100::1": "reserved",
    "::7f00:1": "reserved",
    "2002:7f00:1::": "reserved",
    "2002:5db8:d70e::1": "reserved",  # 6to4, whatever it wraps
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:0.0.0.0": "IPv4-mapped unspecified",
    "64:ff9b::7f00:1": "IPv4-mapped loopback",
    "64:ff9b::a9fe:a9fe": "IPv4-mapped link-local",  # NAT64
}
ALLOWED = [
    "93.184.215.14",
    "1.1.1.1",
    "8.8.8.8",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "192.167.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:1.1.1.1",
    "64:ff9b::101:101",
]


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_private_loopback_and_special_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == REFUSED[address]


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


# -- a client on its own -------------------------------------------------------------------------


async def test_every_spelling_of_loopback_is_refused_with_the_real_resolver(internal: Service) -> None:
    """The real resolver: names and numeric forms that reach 127.0.0.1 are refused by address,
    not by spelling; the internal service sees nothing, and each refusal is logged and counted."""
    p = internal.port
    urls = [
        internal.url("/secret.png"),
        f"http://localhost:{p}/secret.png",
        f"http://2130706433:{p}/secret.png",
        f"http://127.1:{p}/secret.png",
        f"http://0x7f.0.0.1:{p}/secret.png",
        f"http://[::1]:{p}/secret.png",
        f"http://[::ffff:127.0.0.1]:{p}/secret.png",
        f"http://0.0.0.0:{p}/secret.png",
    ]
    before = OUTBOUND_REFUSED.counts.get("loopback", 0) + OUTBOUND_REFUSED.counts.get("unspecified", 0)
    c = client()
    try:
        for url in urls:
            with pytest.raises(Refused):
                await c.get(url)
        for url in ("file:///etc/passwd", "gopher://127.0.0.1/", f"ftp://127.0.0.1:{p}/"):
            with pytest.raises(Refused, match="scheme"):
                await c.get(url)
        with pytest.raises(OutboundError):  # httpx will not parse it; getaddrinfo would read 127.0.0.1
            await c.get(f"http://0177.0.0.1:{p}/secret.png")
    finally:
        await c.aclose()
    assert internal.requests == []
    after = OUTBOUND_REFUSED.counts.get("loopback", 0) + OUTBOUND_REFUSED.counts.get("unspecified", 0)
    assert after - before == len(urls)
    assert 'liveblog_outbound_refused_total{reason="loopback"}' in "\n".join(OUTBOUND_REFUSED.render())


async def test_a_redirect_from_a_public_url_to_an_internal_one_is_refused(
    internal: Service, public: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """http://cdn.test/ is public (FakeInternet); it redirects to the internal service, which must
    get nothing. Its control: the same redirect to another public URL is followed."""
    public.routes["/to-inside"] = (302, {"location": internal.url("/secret.png")}, b"")
    public.routes["/to-inside-by-name"] = (
        301,
        {"location": f"http://localhost:{internal.port}/secret.png"},
        b"",
    )
    public.routes["/to-photo"] = (302, {"location": "http://cdn.test/photo.jpg"}, b"")
    for n in range(7):
        public.routes[f"/loop{n}"] = (307, {"location": f"/loop{n + 1}"}, b"")
    net = internet(public)
    c = client(net)
    try:
        caplog.set_level(logging.WARNING, "liveblog.capture.outbound")
        ok = await c.get("http://cdn.test/to-photo")  # the control: public to public is followed
        assert ok.status_code == 200 and ok.content == public.routes["/photo.jpg"][2]
        with pytest.raises(Refused, match="loopback"):
            await c.get("http://cdn.test/to-inside")
        with pytest.raises(Refused, match="loopback"):
            await c.get("http://cdn.test/to-inside-by-name")
        with pytest.raises(Refused, match="more than 5 redirects"):
            await c.get("http://cdn.test/loop0")
    finally:
        await c.aclose()
    assert internal.requests == []
    assert public.requests[:3] == ["GET /to-photo", "GET /photo.jpg", "GET /to-inside"]
    assert len([r for r in public.requests if r.startswith("GET /loop")]) == 6  # the first and 5 redirects
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(internal.url("/secret.png") in m and "loopback" in m for m in refused), refused


async def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(
    internal: Service, public: Service
) -> None:
    """DNS rebinding: rebind.test answers a public address to the check made before the request,
    then 127.0.0.1 to the next lookup. The connection is made only to an address checked at
    connect time, so the internal service gets nothing."""
    net = internet(public, **{"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    c = client(net)
    try:
        with pytest.raises(Refused, match="rebind.test is at 127.0.0.1, a loopback address"):
            await c.get(f"http://rebind.test:{internal.port}/secret.png")
    finally:
        await c.aclose()
    assert net.lookups == ["rebind.test", "rebind.test"]  # checked before the request, and at connect
    assert net.connects == [] and internal.requests == []


async def test_size_is_capped_whether_or_not_the_length_is_declared(public: Service) -> None:
    public.routes["/big"] = (200, {"content-type": "image/jpeg"}, b"x" * 5000)
    public.routes["/big-unannounced"] = (200, {"content-type": "image/jpeg", "x-no-length": "1"}, b"x" * 5000)
    public.routes["/small"] = (200, {"content-type": "image/jpeg"}, b"x" * 1000)
    c = client(internet(public), max_bytes=4096)
    try:
        assert len((await c.get("http://cdn.test/small")).content) == 1000
        for path in ("/big", "/big-unannounced"):
            with pytest.raises(OutboundError, match="larger than 4096 bytes"):
                await c.get("http://cdn.test" + path)
    finally:
        await c.aclose()


# -- through the feed sources and the feed service ------------------------------------------------


def media_in(doc: Any) -> list[Any]:
    """Every stored image an export carries, wherever it sits."""
    if isinstance(doc, dict):
        found = list(doc.get("media", [])) if isinstance(doc.get("media"), list) else []
        return found + [m for k, v in doc.items() if k != "media" for m in media_in(v)]
    if isinstance(doc, list):
        return [m for v in doc for m in media_in(v)]
    return []


async def test_a_post_naming_an_internal_image_and_avatar_fetches_nothing(
    tmp_path: Path, internal: Service
) -> None:
    """A collected post whose image and avatar are on the internal service is stored as a link:
    no request reaches the service and nothing is stored to be served under /media/."""
    settings = make_settings(
        tmp_path, feeds={"moderate_by_default": False, "fetch_media": True}, feeds_x={"enabled": False}
    )
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        post = SocialPost(
            network="mastodon",
            post_id="https://social.example/1",
            author_handle="eve@social.example",
            author_name="Eve",
            text="Look #test",
            url="https://social.example/@eve/1",
            posted_at="2026-05-14T09:10:00Z",
            hashtags=("test",),
            media=({"type": "image", "url": internal.url("/secret.png"), "alt": "a"},),
            avatar_url=internal.url("/secret.png"),
        )
        result = await svc.feeds.ingest("mastodon", [post])
        assert result.new == 1
        [item] = await svc.programme.items(ids.session_id, kind="social")
        assert "/media/" not in item.html and internal.url("/secret.png") in item.html  # a link, not a copy
        assert media_in(await svc.archive.export(ids.event_id)) == []
    finally:
        await svc.close()
    assert internal.requests == []


async def test_mastodon_media_avatars_and_rss_redirects_never_reach_an_internal_service(
    tmp_path: Path, internal: Service, public: Service
) -> None:
    """End to end with allow_private_addresses off: the fake Mastodon instance is reached as
    mastodon.test (FakeInternet routes it to its loopback port). Its statuses name the internal
    service for an image, for an avatar, and through a public CDN that redirects inside; an RSS
    feed at blog.test redirects inside. The public image (the control) is fetched and served."""
    async with serve_fakes() as fake:
        net = FakeInternet(
            {"mastodon.test": [[PUBLIC]], "cdn.test": [["93.184.215.15"]], "blog.test": [["93.184.215.15"]]},
            {PUBLIC: int(fake.base_url.rsplit(":", 1)[1]), "93.184.215.15": public.port},
        )
        public.routes["/to-inside.png"] = (302, {"location": internal.url("/secret.png")}, b"")
        public.routes["/feed.rss"] = (301, {"location": internal.url("/feed.rss")}, b"")
        settings = make_settings(
            tmp_path,
            feeds={"moderate_by_default": False, "fetch_media": True, "request_timeout_seconds": 5.0},
            feeds_x={"enabled": False},
        )
        assert settings.feeds.allow_private_addresses is False  # the default
        svc = Services.build(settings)
        instance = f"http://mastodon.test:{fake.base_url.rsplit(':', 1)[1]}"
        mastodon = MastodonSource(settings, instance, network=net)
        svc.feeds.use_sources([mastodon])
        svc.feeds.fetcher = MediaFetcher(settings.feeds.media_bytes, 5.0, network=net)
        await svc.open()
        try:
            ids = await seed(svc)
            add_status(
                fake,
                "eve",
                "Inside #test",
                image=internal.url("/secret.png"),
                avatar=internal.url("/secret.png"),
            )
            add_status(
                fake,
                "mal",
                "Through a CDN #test",
                image="http://cdn.test/to-inside.png",
                avatar="http://cdn.test/to-inside.png",
            )
            add_status(
                fake,
                "ana",
                "A real photo #test",
                image="http://cdn.test/photo.jpg",
                avatar="http://cdn.test/avatar.jpg",
            )
            svc.feeds.poll_now()

            async def three() -> list[Any] | None:
                items = await svc.programme.items(ids.session_id, kind="social")
                return items if len(items) == 3 else None

            items = {i.author: i for i in await eventually(three, what="the three statuses")}
            assert "/media/" not in items["eve"].html and "/media/" not in items["mal"].html
            assert items["ana"].html.count('src="/media/') == 2  # the control: image and avatar, ours now
            assert len(media_in(await svc.archive.export(ids.event_id))) == 2

            rss = RssSource(settings, "http://blog.test/feed.rss", network=net)
            try:
                with pytest.raises(SourceError, match="refused.*loopback"):
                    await rss.poll_once(svc.feeds, [])
            finally:
                await rss.close()
        finally:
            await svc.close()
    assert internal.requests == []
    assert "GET /feed.rss" in public.requests and "GET /to-inside.png" in public.requests


def add_status(fake: FakeNetworks, user: str, text: str, *, image: str, avatar: str) -> None:
    fake.add_status(f"{user}@social.example", user, f"<p>{text}</p>", ["test"], image_alt="a picture")
    status = fake.statuses[-1]
    status["media_attachments"][0]["url"] = image
    status["account"]["avatar"] = status["account"]["avatar_static"] = avatar


async def test_x_requests_through_tweepy_follow_the_same_rule(tmp_path: Path) -> None:
    """tweepy's requests session is checked by our adapter: with the rule on, an API base on
    loopback is refused before anything is sent; with allow_private_addresses it is reached."""
    async with serve_fakes() as fake:
        for allow, reached in ((False, 0), (True, 1)):
            settings = dataclasses.replace(
                make_settings(
                    tmp_path,
                    feeds={"allow_private_addresses": allow},
                    feeds_x={"api_base": fake.base_url, "max_results": 10},
                ),
                x_bearer_token="fake-token",
            )
            source = XSource(settings)
            try:
                params = {"query": "#test", "max_results": 10}
                if allow:
                    assert "meta" in await source._request(params)
                else:
                    with pytest.raises(SourceError, match="refused.*127.0.0.1 is a loopback address"):
                        await source._request(params)
            finally:
                await source.close()
            assert len(fake.x_requests) == reached


async def test_with_a_mock_transport_literal_addresses_are_still_refused() -> None:
    """httpx.MockTransport (the seam for recorded payloads) replaces the network, so names are
    not resolved; literal private addresses, schemes and redirects are still checked."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/hop":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=b"{}")

    c = client(transport=httpx.MockTransport(answer))
    try:
        assert (await c.get("https://mastodon.example/api")).content == b"{}"
        with pytest.raises(Refused, match="169.254.169.254 is a link-local address"):
            await c.get("https://mastodon.example/hop")
        with pytest.raises(Refused, match="private"):
            await c.get("http://[fd00::1]/")
    finally:
        await c.aclose()
    assert seen == ["https://mastodon.example/api", "https://mastodon.example/hop"]


async def test_every_fediverse_fetch_follows_the_same_rule(tmp_path: Path, internal: Service) -> None:
    """docs/federation.md, "Safety": the fediverse's fetches and deliveries go through the same
    guard. With federation.allow_private_addresses off, an actor document, a public key, a
    replier's avatar, a Webmention's source and a delivery to an inbox, all on the internal
    service, reach nothing and store nothing; with it on (the positive control), each of them
    does reach the service."""
    actor = internal.url("/users/eve")
    document = {
        "id": actor,
        "type": "Person",
        "inbox": f"{actor}/inbox",
        "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": "PEM"},
    }
    internal.routes["/users/eve"] = (
        200,
        {"content-type": "application/activity+json"},
        json.dumps(document).encode(),
    )
    internal.routes["/users/eve/inbox"] = (202, {}, b"")
    for allowed in (False, True):
        internal.requests.clear()
        settings = make_settings(tmp_path / str(allowed), federation={"allow_private_addresses": allowed})
        (tmp_path / str(allowed)).mkdir()
        svc = Services.build(settings)
        await svc.open()
        try:
            fed = svc.federation
            assert fed is not None
            ids = await seed(svc)
            await svc.db.write(lambda tx: tx.remote_author(actor, "@eve@internal"))  # a replier
            base = "https://liveblog.example"
            target = f"{base}/sessions/{ids.session_id}"
            internal.routes["/blog"] = (
                200,
                {"content-type": "text/html"},
                f'<a href="{target}">t</a>'.encode(),
            )
            outcomes = []
            for name, attempt in (
                ("actor", fed.fetch(base, actor)),
                ("key", fed.remote_key(base, f"{actor}#main-key")),
                ("delivery", fed.post_body(f"{actor}/inbox", f"{base}/ap/actor#main-key", b"{}")),
            ):
                try:
                    await attempt
                    outcomes.append((name, "reached"))
                except Refused as exc:
                    outcomes.append((name, exc.reason))
            # A reply's author's avatar, fetched before the reply is written (any item id will do).
            avatar = await fed._avatar_to_copy(actor, {"icon": {"url": internal.url("/secret.png")}}, 1, "")
            if avatar is not None:

                async def keep(
                    tx: Unit, session_id: str = ids.session_id, got: tuple[str, bytes] = avatar
                ) -> None:
                    await tx.set_author_avatar(actor, await tx.insert_media(session_id, *got, None))

                await svc.db.write(keep)
            await fed._take_mention(internal.url("/blog"), target, ids.session_id)
            stored = (
                await svc.db.read(lambda r: r.author_avatar(actor)),
                [c.body for c in (await svc.comments.moderation_queue()).pending],
            )
        finally:
            await svc.close()
        if allowed:
            assert outcomes == [("actor", "reached"), ("key", "reached"), ("delivery", "reached")]
            assert sorted(set(internal.requests)) == [
                "GET /blog",
                "GET /secret.png",
                "GET /users/eve",
                "POST /users/eve/inbox",
            ]
            assert stored[0] and stored[1] == ["Mentioned in <http://127.0.0.1:%d/blog>" % internal.port]
        else:
            assert outcomes == [("actor", "loopback"), ("key", "loopback"), ("delivery", "loopback")]
            assert internal.requests == []
            assert stored == ("", [])


async def test_a_flood_of_webmentions_reads_one_server_a_few_pages_at_a_time(tmp_path: Path) -> None:
    """POST /webmention is open to anyone, and each one makes the server read its source: a flood
    naming one site must not become a flood of our requests to it (nor of tasks here). At most
    2 of its pages are read at once (FETCHES_PER_HOST, as for actors and keys), and past
    MAX_PENDING_MENTIONS waiting, a Webmention is refused with 429 until they are read; nothing
    is kept of the site once they are."""
    from liveblog.federation.service import FETCHES_PER_HOST, MAX_PENDING_MENTIONS
    from tests.conftest import run_server

    open_now, most, release = 0, 0, asyncio.Event()

    async def slow_site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            await asyncio.wait_for(release.wait(), 30)  # a site that answers slowly
            writer.write(b"HTTP/1.1 404 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        finally:
            open_now -= 1
            writer.close()

    server = await asyncio.start_server(slow_site, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(tmp_path, federation={"allow_private_addresses": True})
    svc = Services.build(settings)
    await svc.open()
    try:
        ids = await seed(svc)
        async with run_server(settings, svc) as live, live.client() as c:
            target = f"{live.url}/sessions/{ids.session_id}"
            statuses = []
            for n in range(MAX_PENDING_MENTIONS + 5):
                source = f"http://127.0.0.1:{port}/post/{n}"
                r = await c.post("/webmention", data={"source": source, "target": target})
                statuses.append(r.status_code)
            await eventually(lambda: open_now >= FETCHES_PER_HOST, what="the first reads to start")
            assert statuses == [202] * MAX_PENDING_MENTIONS + [429] * 5
            assert most == FETCHES_PER_HOST
            release.set()
            fed = svc.federation
            assert fed is not None
            await eventually(lambda: not fed._mentions, 30, "every waiting Webmention to be read")
            assert most == FETCHES_PER_HOST
            # Nothing is kept of a host once its reads are done (anyone may name any number of them).
            assert fed.host_slots.busy() == []
    finally:
        await svc.close()
        server.close()
        await server.wait_closed()


async def test_outbound_clients_share_one_tls_context_per_ca_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a CA bundle takes 50 to 200 ms: every client of a process verifies with one
    context, one per CA source. A CA named by SSL_CERT_FILE (a test's, a private network's) is
    trusted; without it, certifi's bundle is, and a certificate of that CA is refused."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    plain = [OutboundClient(p, allow_private=True, timeout=5.0) for p in ("rss", "media")]
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    trusting = [OutboundClient(p, allow_private=True, timeout=5.0) for p in ("rss", "media")]
    try:
        async with Service(tls=server_side) as site:
            site.routes["/feed.rss"] = (200, {"content-type": "application/rss+xml"}, b"<rss/>")
            with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
                await plain[0].get(site.url("/feed.rss"))
            for client in trusting:
                assert (await client.get(site.url("/feed.rss"))).content == b"<rss/>"
        assert plain[0].ssl_context is plain[1].ssl_context is not None
        assert trusting[0].ssl_context is trusting[1].ssl_context is not plain[0].ssl_context
        assert trusting[0].ssl_context is not None and trusting[0].ssl_context.check_hostname
    finally:
        for client in plain + trusting:
            await client.aclose()
