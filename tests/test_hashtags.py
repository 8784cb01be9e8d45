"""Hashtags and search terms as the networks define them: Unicode tags accepted by the API and the
forms, plain entries kept as search terms, and posts matched case- (and on Mastodon accent-)
insensitively."""

from __future__ import annotations

from datetime import UTC, datetime

from liveblog.capture.feeds.base import EventTarget, SessionTarget, hashtags_in, split_terms
from liveblog.capture.feeds.render import render_post
from liveblog.capture.feeds.routing import route_post
from liveblog.capture.feeds.x import build_query
from liveblog.models import SocialPost
from tests.conftest import LiveServer, Seed, organiser_csrf

CONFERENCE_TAGS = ["#café", "#JournéesDuNumérique", "#日本語", "#Ärztetag", "#हिन्दी", "#open_data"]


async def test_the_api_accepts_unicode_hashtags_and_keeps_plain_terms(live: LiveServer, seeded: Seed) -> None:
    async with live.client(headers={"Authorization": f"Bearer {seeded.login_token}"}) as http:
        created = await http.post(
            "/api/v1/events",
            json={
                "title": "Forum",
                "starts_on": "2026-06-01",
                "ends_on": "2026-06-01",
                "hashtags": [*CONFERENCE_TAGS, "tweepy", "open data"],
            },
        )
        assert created.status_code == 201, created.text
        # Hashtags stay hashtags; entries without '#' stay search terms (not turned into tags).
        assert created.json()["hashtags"] == [*CONFERENCE_TAGS, "tweepy", "open data"]
        for bad in ("#bad-tag", "#2026", "#", "#two words"):
            refused = await http.post(
                "/api/v1/events",
                json={"title": "x", "starts_on": "2026-06-01", "ends_on": "2026-06-01", "hashtags": [bad]},
            )
            assert refused.status_code == 400, bad
            error = refused.json()["error"]
            assert error["field"] == "hashtags"
            assert "letters, digits, marks or _" in error["message"] and "search term" in error["message"]


async def test_the_event_form_takes_unicode_tags_terms_and_quoted_phrases(
    live: LiveServer, seeded: Seed
) -> None:
    async with live.client(
        cookies={"lb_login": seeded.login_token},
        headers=organiser_csrf(seeded.login_token),
        follow_redirects=False,
    ) as http:
        response = await http.post(
            "/organise/events/new",
            data={
                "title": "Forum",
                "starts_on": "2026-06-02",
                "ends_on": "2026-06-02",
                "hashtags": '#Ärztetag #日本語, tweepy "open data"',
            },
        )
        assert response.status_code == 303, response.text
        event_id = response.headers["location"].rsplit("/", 1)[1]
        refused = await http.post(
            "/organise/events/new",
            data={
                "title": "Forum",
                "starts_on": "2026-06-02",
                "ends_on": "2026-06-02",
                "hashtags": "#bad-tag",
            },
        )
        assert refused.status_code == 400 and "letters, digits, marks or _" in refused.text
        # The form shows the phrase quoted, so saving it again keeps it one term.
        page = await http.get(f"/organise/events/{event_id}")
        assert (
            "#Ärztetag #日本語 tweepy &#34;open data&#34;" in page.text
            or "#Ärztetag #日本語 tweepy &quot;open data&quot;" in page.text
        )
    event = await live.services.programme.event(event_id)
    assert list(event.hashtags) == ["#Ärztetag", "#日本語", "tweepy", "open data"]


def test_terms_are_x_search_terms_not_hashtags() -> None:
    tags, terms = split_terms(("#Ärztetag", "tweepy", "open data"))
    assert tags == frozenset({"ärztetag"}) and terms == ("tweepy", "open data")
    target = EventTarget("e", tags, terms, (), datetime(2026, 1, 1, tzinfo=UTC))
    assert build_query(target, set()) == '#ärztetag OR tweepy OR "open data"'


def test_tags_in_text_take_letters_digits_marks_and_underscore() -> None:
    text = "Bonjour #JournéesDuNumérique, #日本語 and #हिन्दी at #Ärztetag_2026! Not a tag: a#b or &#38;"
    assert hashtags_in(text) == ["journéesdunumérique", "日本語", "हिन्दी", "ärztetag_2026"]
    post = SocialPost("x", "1", "ana", "Ana", text, "https://x.com/ana/status/1", "2026-01-01T00:00:00.000Z")
    assert (
        'href="https://x.com/hashtag/%E0%A4%B9%E0%A4%BF%E0%A4%A8%E0%A5%8D%E0%A4%A6%E0%A5%80"'
        in render_post(post)
    )


def _target(tags: list[str], terms: tuple[str, ...] = ()) -> EventTarget:
    own, _ = split_terms(tuple(tags))
    return EventTarget(
        "e",
        own,
        terms,
        (SessionTarget("s1", frozenset(), True, datetime(2026, 1, 1, tzinfo=UTC)),),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def _post(network: str, text: str, hashtags: tuple[str, ...] = ()) -> SocialPost:
    return SocialPost(
        network,
        f"{network}-{text}",
        "ana",
        "Ana",
        text,
        "https://social.example/1",
        "2026-01-01T00:00:00.000Z",
        hashtags=hashtags,
    )


def test_posts_match_case_insensitively_and_on_mastodon_accent_insensitively() -> None:
    event = [_target(["#Ärztetag", "#café"], ("tweepy",))]
    assert route_post(_post("x", "Live from #ÄRZTETAG"), event, None) == [("e", "s1")]
    assert route_post(_post("bluesky", "x", ("CAFÉ",)), event, None) == [("e", "s1")]
    # Mastodon's tag timeline for #café answers #cafe too (its HashtagNormalizer folds accents): so do we.
    assert route_post(_post("mastodon", "x", ("cafe",)), event, None) == [("e", "s1")]
    assert route_post(_post("mastodon", "x", ("arztetag",)), event, None) == [("e", "s1")]
    assert route_post(_post("bluesky", "x", ("cafe",)), event, None) == []
    # A plain term matches words in the text, whatever their case, not parts of words.
    assert route_post(_post("rss", "Using Tweepy today"), event, None) == [("e", "s1")]
    assert route_post(_post("rss", "tweepyish"), event, None) == []


def test_a_term_is_matched_in_bluesky_text() -> None:
    from liveblog.capture.feeds.base import Wanted
    from liveblog.capture.feeds.bluesky import post_from_event

    def event(text: str) -> dict[str, object]:
        return {
            "did": "did:plc:ana",
            "time_us": 1,
            "kind": "commit",
            "commit": {
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": "3k",
                "record": {"text": text, "createdAt": "2026-01-01T00:00:00Z"},
            },
        }

    wanted = Wanted(frozenset({"café"}), ("tweepy",))
    assert post_from_event(event("Trying Tweepy at the workshop"), wanted, "", {}, 500)[0] == "post"
    assert post_from_event(event("#CAFÉ time"), wanted, "", {}, 500)[0] == "post"
    assert post_from_event(event("#cafe time, tweepyish"), wanted, "", {}, 500)[0] == "skip"
