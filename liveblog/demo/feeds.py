"""The demo's social feeds: a conversation under the demo event's hashtag on X, Mastodon and Bluesky, replayed
through the loopback fake networks (demo/fakes.py), so a newcomer sees posts arrive
within seconds with no credentials and no network. All content is invented.

The demo event moderates its posts, and the conversation's regular voices are approved authors:
their posts go straight in, and one newcomer's post waits in the moderation queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import socket
from typing import Any

from liveblog.demo.fakes import FakeNetworks, serve_fakes
from liveblog.errors import LiveblogError
from liveblog.lifecycle import Supervisor
from liveblog.services import Services
from liveblog.settings import Settings

log = logging.getLogger(__name__)

FAKE_TOKEN = "fake-token"


def conversation(T: str) -> list[tuple[str, str, str, str, str | None]]:  # noqa: N803 (T reads as the tag in text)
    """(network, handle, display name, text, image alt or None); every author is approved."""
    tag = T.lstrip("#").lower()
    return [
        ("x", "mo_hrlead", "Mo Adeyemi", f"Standing room only for the apprenticeships session at {T}", None),
        (
            "mastodon",
            "ruth@civic.example",
            "Ruth Lindqvist",
            f"<p>Sunita: career changers stay longer than graduate hires in their first three years. Want the data. {T}</p>",
            None,
        ),
        (
            "bluesky",
            "did:plc:kwamecodes",
            "",
            f"Secondments both ways between councils and the NHS: why is this still rare? {T}",
            None,
        ),
        (
            "x",
            "parkbench_pete",
            "Pete Okoro",
            f"We did a 6-month secondment swap with the county. Best training money we never spent. {T}",
            None,
        ),
        (
            "mastodon",
            "lib_jo@books.example",
            "Jo (library service)",
            f'<p>The slide everyone is photographing: three routes in. <a href="https://books.example/tags/{tag}">{T}</a></p>',
            "A slide with three routes into public service: apprenticeships, secondments, returners",
        ),
        (
            "bluesky",
            "did:plc:openmarek",
            "",
            f"Declan on apprentice pay: the levy covers training, not the salary gap {T}",
            None,
        ),
        (
            "x",
            "mo_hrlead",
            "Mo Adeyemi",
            f"'Hire for values, train for skills' gets a round of applause {T}",
            None,
        ),
        (
            "mastodon",
            "ruth@civic.example",
            "Ruth Lindqvist",
            f"<p>Notes from the room are going up live on the liveblog. {T}</p>",
            None,
        ),
    ]


def waiting(T: str) -> tuple[str, str, str, str, str | None]:  # noqa: N803
    """The newcomer's post that waits for a moderator."""
    return (
        "x",
        "first_timer_fi",
        "Fi Murray",
        f"Does anyone have the apprenticeship numbers by region? {T}",
        None,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_feed_settings(settings: Settings, port: int) -> Settings:
    """Point every source at the fakes on 127.0.0.1:port, polling often enough to feel live, and
    allow fetching from loopback (the fakes' address; refused by default, docs/feeds.md)."""
    import dataclasses

    base = f"http://127.0.0.1:{port}"
    changed = settings.replace(
        feeds={"enabled": True, "allow_private_addresses": True},
        feeds_x={"enabled": True, "api_base": base, "poll_seconds": 4.0},
        feeds_mastodon={"instances": (base,), "poll_seconds": 4.0},
        feeds_bluesky={
            "jetstream_url": f"ws://127.0.0.1:{port}/subscribe",
            "cdn_base": base,
            "appview_url": base,
        },
    )
    return dataclasses.replace(changed, x_bearer_token=FAKE_TOKEN)


def _author_key(network: str, handle: str) -> str:
    return f"{network}:{handle.lower()}"


def post(fakes: FakeNetworks, entry: tuple[str, str, str, str, str | None], hashtag: str) -> None:
    network, handle, name, text, alt = entry
    tag = hashtag.lstrip("#").lower()
    if network == "x":
        fakes.add_tweet(handle, name, text, image_alt=alt)
    elif network == "mastodon":
        fakes.add_status(handle, name, text, [tag], image_alt=alt)
    else:
        if handle not in fakes.profiles:  # the AppView knows the account: its posts show a handle
            fakes.add_profile(handle, f"{handle.split(':')[-1]}.bsky.social", name or None)
        fakes.add_skeet(handle, text, [tag], image_alt=alt)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(text)).split())


def gaps(count: int, first: float, spread: float) -> list[float]:
    """Waits before each of `count` posts: the first after `first` seconds, then growing by a
    constant factor so that they all fit in `spread` seconds (a conversation that starts busy and
    calms down, as the room's does), never shorter than `first`."""
    if count <= 0:
        return []
    if count == 1 or spread <= first * count:
        return [first] * count
    low, high = 1.0, 4.0
    for _ in range(60):  # the factor whose geometric series fills the spread
        mid = (low + high) / 2
        total = sum(first * mid**n for n in range(count))
        low, high = (mid, high) if total < spread else (low, mid)
    return [first * low**n for n in range(count)]


async def _already_collected(services: Services, event_id: str) -> set[str]:
    """The plain texts of the posts collected for the event so far, whatever their state: after a
    restart the replay skips them, since the fake networks would give the same words new ids."""
    routes = await services.db.read(lambda r: r.list_social_routes(event_id=event_id, limit=10_000))
    return {_plain(route.post.text) for route in routes}


async def replay(
    services: Services, fakes: FakeNetworks, event_id: str, hashtag: str, every: float, spread: float = 1200.0
) -> None:
    """Set the event's moderation up, then post the conversation on the fake networks, each text
    once: the first within seconds, the rest spread over `spread` seconds. After a restart it
    carries on with the texts not collected yet; when all are in, it stops."""
    talk = conversation(hashtag)
    await services.feeds.moderation.set_policy(event_id, "", True)
    for network, handle, *_ in talk:
        await services.feeds.moderation.add_rule(
            event_id, "allow_author", _author_key(network, handle), "demo"
        )
    seen = await _already_collected(services, event_id)
    left = [entry for entry in talk if _plain(entry[3]) not in seen]
    services.feeds.poll_now()
    await asyncio.sleep(1.0)  # let the sources connect before the first posts
    newcomer = waiting(hashtag)
    if _plain(newcomer[3]) not in seen:
        post(fakes, newcomer, hashtag)  # one post waits for a moderator from the start
    for entry, wait in zip(left, [0.0, *gaps(len(left) - 1, every, spread)], strict=False):
        await asyncio.sleep(wait)
        post(fakes, entry, hashtag)
        services.feeds.poll_now()
    log.info("demo feeds: the conversation is over (%d posts)", len(talk))


class DemoFeedsComponent:
    """Runs the fake networks and the replay; opened after the demo data is loaded."""

    name = "demo.feeds"

    def __init__(self, services: Services, port: int, every: float, hashtag: str) -> None:
        self.services = services
        self.hashtag = hashtag
        self.port = port
        self.every = every
        self.fakes = FakeNetworks()
        self._stack = contextlib.AsyncExitStack()

    async def open(self, supervisor: Supervisor) -> None:
        await self._stack.enter_async_context(serve_fakes(self.fakes, self.port))
        events = [e for e in await self.services.programme.events() if self.hashtag in e.hashtags]
        if not events:
            log.warning("demo feeds: no demo event found; nothing to replay")
            return
        event_id = events[0].id

        async def run() -> None:
            try:
                await replay(self.services, self.fakes, event_id, self.hashtag, self.every)
            except LiveblogError as exc:
                log.info("demo feeds stop: %s", exc.message)

        supervisor.spawn("demo.feeds", run)

    async def close(self) -> None:
        await self._stack.aclose()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "fake_networks": self.fakes.base_url}
