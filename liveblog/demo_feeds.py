"""The demo's social feeds: a conversation under the demo event's hashtag on X, Mastodon and Bluesky, replayed
through the loopback fake networks (capture/feeds/fakes.py), so a newcomer sees posts arrive
within seconds with no credentials and no network. All content is invented.

The demo event moderates its posts, and the conversation's regular voices are approved authors:
their posts go straight in, and one newcomer's post waits in the moderation queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from typing import Any

from liveblog.capture.feeds.fakes import FakeNetworks, serve_fakes
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
        ("mastodon", "ruth@civic.example", "Ruth Lindqvist",
         f"<p>Sunita: career changers stay longer than graduate hires in their first three years. Want the data. {T}</p>", None),
        ("bluesky", "did:plc:kwamecodes", "", f"Secondments both ways between councils and the NHS: why is this still rare? {T}", None),
        ("x", "parkbench_pete", "Pete Okoro", f"We did a 6-month secondment swap with the county. Best training money we never spent. {T}", None),
        ("mastodon", "lib_jo@books.example", "Jo (library service)",
         f"<p>The slide everyone is photographing: three routes in. <a href=\"https://books.example/tags/{tag}\">{T}</a></p>",
         "A slide with three routes into public service: apprenticeships, secondments, returners"),
        ("bluesky", "did:plc:openmarek", "", f"Declan on apprentice pay: the levy covers training, not the salary gap {T}", None),
        ("x", "mo_hrlead", "Mo Adeyemi", f"'Hire for values, train for skills' gets a round of applause {T}", None),
        ("mastodon", "ruth@civic.example", "Ruth Lindqvist", f"<p>Notes from the room are going up live on the liveblog. {T}</p>", None),
    ]


def waiting(T: str) -> tuple[str, str, str, str, str | None]:  # noqa: N803
    """The newcomer's post that waits for a moderator."""
    return ("x", "first_timer_fi", "Fi Murray", f"Does anyone have the apprenticeship numbers by region? {T}", None)


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
        feeds_bluesky={"jetstream_url": f"ws://127.0.0.1:{port}/subscribe", "cdn_base": base, "appview_url": base},
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


async def replay(services: Services, fakes: FakeNetworks, event_id: str, hashtag: str, every: float) -> None:
    """Set the event's moderation up, then keep the conversation going on the fake networks."""
    talk = conversation(hashtag)
    await services.feeds.set_policy(event_id, "", True)
    for network, handle, *_ in talk:
        await services.feeds.add_rule(event_id, "allow_author", _author_key(network, handle), "demo")
    services.feeds.poll_now()
    await asyncio.sleep(1.0)  # let the sources connect before the first posts
    post(fakes, talk[0], hashtag)
    post(fakes, waiting(hashtag), hashtag)  # one post waits for a moderator from the start
    services.feeds.poll_now()
    for entry in itertools.cycle(talk[1:]):
        await asyncio.sleep(every)
        post(fakes, entry, hashtag)
        services.feeds.poll_now()


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
