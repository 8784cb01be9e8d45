"""What people type is rendered safely: no script, no event handlers, only http(s)/mailto links."""

from __future__ import annotations

import re

import pytest

from liveblog.text import find_embeds, render_markdown


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "<a href='javascript:alert(1)'>x</a>",
        "![x](javascript:alert(1))",
        '<svg onload="alert(1)">',
        "<iframe src='https://evil.example'></iframe>",
        "[x](vbscript:msgbox)",
    ],
)
def test_hostile_markup_renders_inert(source: str) -> None:
    html = render_markdown(source)
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img src=x" not in lowered and "<svg" not in lowered and "<iframe" not in lowered
    assert not re.search(r"<[a-z][^>]*\son\w+\s*=", lowered), "an event handler attribute survived"
    assert (
        'href="javascript' not in lowered and 'href="data:' not in lowered and 'href="vbscript' not in lowered
    )
    assert 'src="javascript' not in lowered


def test_nested_bullets_bold_and_links() -> None:
    html = render_markdown("- one\n  - **two**\n- see https://example.org")
    assert "<ul>\n<li>one\n<ul>\n<li><strong>two</strong></li>" in html
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer ugc">' in html


def test_only_our_own_photos_render_as_images() -> None:
    html = render_markdown("![room](/media/0123456789abcdef) ![pixel](https://tracker.example/p.gif)")
    assert '<img src="/media/0123456789abcdef" alt="room"' in html
    assert '<img src="https://tracker' not in html
    assert '<a href="https://tracker.example/p.gif"' in html


def test_video_and_slide_links_become_click_to_load_embeds() -> None:
    embeds = find_embeds(
        "talk https://www.youtube.com/watch?v=dQw4w9WgXcQ and https://youtu.be/abcdefghijk, "
        "https://vimeo.com/76979871 https://speakerdeck.com/someone/deck https://example.org"
    )
    assert [e["provider"] for e in embeds] == ["YouTube", "YouTube", "Vimeo", "Speaker Deck"]
    assert embeds[0]["player"] == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert embeds[2]["player"] == "https://player.vimeo.com/video/76979871"
    assert embeds[3]["player"] == ""
