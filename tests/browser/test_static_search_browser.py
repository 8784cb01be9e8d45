"""The static export's search finds what the server's search finds (issue 17 item 5): the same
queries asked of the server (SQLite, Snowball stems) and of the exported site opened from disk
in chromium (the vendored Snowball JavaScript stemming the query), for an English and a French
event, words in other forms ("buddies"), a quoted phrase and accents. And the vendored stemmers
stem a vocabulary exactly as the server's `snowballstemmer` does."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import snowballstemmer
from playwright.sync_api import expect

from liveblog.capture.notes import Author
from liveblog.models import SNOWBALL_ALGORITHMS
from liveblog.paths import resource_dir
from liveblog.services import Services
from liveblog.web.app import make_templates
from liveblog.web.static_site import export_site
from tests.archive_fixtures import note, organiser_account, social_post
from tests.browser.conftest import PHONE, ThreadServer

pytestmark = pytest.mark.browser

ENGLISH_NOTES = (
    "Each newcomer gets a buddy for the first month",
    "Study buddies were the surprise of the survey",
    "Buddies and mentors are not the same thing",
    "The buddying scheme cost nothing",
    "Stay interviews ask people why they stay",
    "An interview at exit comes too late: people stay when asked early",
    "Crème brûlée at the café, said the policy team",
)
FRENCH_NOTES = (
    "Ils mangeaient des pommes pendant la pause",
    "Nous allons manger ensemble après la séance",
    "Les politiques publiques changent lentement",
    "Une politique de mentorat pour les nouveaux arrivants",
)
ENGLISH_QUERIES = (
    "buddies",
    "buddy",
    "Buddies mentors",
    '"stay interviews"',
    '"interviews stay"',
    "stay interviews",
    "creme brulee",
    "policies",
    "Keynote",
    "survey buddy",
    "nothing-at-all-here",
)
FRENCH_QUERIES = ("manger", "mangeaient", "politique", '"politiques publiques"', "seance", "pommes pause")


def build(server: ThreadServer) -> dict[str, str]:
    seed = server.seed
    assert seed is not None

    async def make(svc: Services) -> dict[str, str]:
        org = Author.organiser(await organiser_account(svc))
        for body in ENGLISH_NOTES[:4]:
            await note(svc, seed.session_id, org, body)
        for body in ENGLISH_NOTES[4:]:
            await note(svc, seed.other_session_id, org, body)
        await social_post(svc, seed.session_id, "My buddies say hello from the back row")
        french = await svc.programme.create_event(
            {"title": "Journée", "starts_on": "2026-05-14", "ends_on": "2026-05-14", "language": "fr"}
        )
        salon = await svc.programme.create_session(
            french.id,
            {"title": "Séance plénière", "starts_at": "2026-05-14T09:00", "ends_at": "2026-05-14T10:00"},
        )
        await svc.programme.set_state(salon.id, "live")
        for body in FRENCH_NOTES:
            await note(svc, salon.id, org, body)
        for sid in (seed.session_id, seed.other_session_id, salon.id):
            if sid != salon.id:
                await svc.programme.set_state(sid, "live")
            await svc.programme.set_state(sid, "ended")
        await svc.archive.archive_due()
        await svc.archive.set_summary(seed.session_id, "Buddies help newcomers settle", "org")
        return {"en": seed.event_id, "fr": french.id}

    return server.call(make)


def server_results(server: ThreadServer, event_id: str, text: str) -> set[str]:
    """The server's matches for a query, as links inside the exported site."""

    async def search(svc: Services) -> set[str]:
        query = dataclasses.replace(svc.archive.query(text, event_id=event_id), limit=1000)
        result = await svc.archive.search(query)
        assert not result.limited
        links = set()
        for hit in result.hits:
            base = f"sessions/{hit.session_id}.html"
            anchors = {"summary": "#summary", "comment": f"#comment-{hit.ref}", "session": ""}
            links.add(base + anchors.get(hit.kind, f"#item-{hit.ref}"))
        return links

    return server.call(search)


def export_results(page: Any, site: Path, text: str) -> set[str]:
    page.goto(f"{(site / 'search.html').as_uri()}?q={quote(text)}")
    expect(page.locator("#offline-status")).to_contain_text("for “")
    return set(
        page.locator("#offline-results a").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    )


def test_the_exported_search_finds_what_the_server_finds(
    browser_context: Any, server: ThreadServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    events = build(server)
    page = browser_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for language, queries in (("en", ENGLISH_QUERIES), ("fr", FRENCH_QUERIES)):
        site = tmp_path / language
        server.call(
            lambda svc, event_id=events[language], site=site: export_site(
                svc, make_templates().env, event_id, site
            )
        )
        for text in queries:
            expected = server_results(server, events[language], text)
            assert export_results(page, site, text) == expected, f"{language}: {text!r}"
    # The comparisons above mean something: the server finds these.
    assert (
        len(server_results(server, events["en"], "buddies")) == 6
    )  # four notes ("buddying" too), a post, the summary
    assert len(server_results(server, events["en"], '"stay interviews"')) == 1
    assert len(server_results(server, events["fr"], "manger")) == 2
    assert len(server_results(server, events["fr"], "politique")) == 2
    page.goto(f"{(tmp_path / 'en' / 'search.html').as_uri()}?q=buddies")
    expect(page.locator("#offline-results mark").first).to_have_text("buddies", ignore_case=True)
    page.screenshot(path=str(screenshot_dir / "static-search-stemmed-desktop.png"), full_page=True)
    phone = browser_context(viewport=PHONE).new_page()
    phone.goto(f"{(tmp_path / 'fr' / 'search.html').as_uri()}?q=mangeaient")
    expect(phone.locator("#offline-results mark").first).to_have_text("mangeaient")
    phone.screenshot(path=str(screenshot_dir / "static-search-stemmed-phone.png"), full_page=True)
    assert errors == []


# Words in several forms per language, and the words of the notes above.
VOCABULARY = {
    "english": "buddies buddy buddying policies policy generously running ran cats caresses ponies"
    " communication organisation universal emergency arsenal interviews interviewing skis dying news",
    "french": "mangeaient manger mangé politiques politique continuellement nationales",
    "german": "häuser hausmeister aufeinanderfolgenden gegenüber kategorischen",
    "spanish": "corriendo corrieron políticas niñas ciudadanos",
    "italian": "abbandonata abbandonare politiche nazionalità città",
    "dutch": "lichamelijke opgaven huizen kinderen fietsen",
    "portuguese": "políticas corações cidadãos trabalhando",
}


def test_the_vendored_stemmers_stem_as_the_server_does(browser_context: Any, tmp_path: Path) -> None:
    snowball = resource_dir("static") / "js" / "snowball"
    words = {
        name: sorted(set((VOCABULARY[name] + " " + " ".join(ENGLISH_NOTES + FRENCH_NOTES)).lower().split()))
        for name in VOCABULARY
    }
    assert set(words) == {a for a in SNOWBALL_ALGORITHMS.values() if a}
    scripts = "".join(
        f'<script src="{(snowball / f).as_uri()}"></script>'
        for f in ["base-stemmer.js"] + [f"{n}-stemmer.js" for n in words]
    )
    (tmp_path / "stem.html").write_text(f"<!doctype html><title>stem</title>{scripts}")
    page = browser_context().new_page()
    page.goto((tmp_path / "stem.html").as_uri())
    stemmed = page.evaluate(
        "(words) => Object.fromEntries(Object.entries(words).map(([name, list]) =>"
        " [name, list.map((w) => new window.LiveblogSnowball[name]().stemWord(w))]))",
        words,
    )
    for name, list_ in words.items():
        stemmer = snowballstemmer.stemmer(name)
        assert stemmed[name] == [stemmer.stemWord(w) for w in list_], name
