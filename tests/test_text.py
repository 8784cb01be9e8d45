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


# -- plain text's short cut: the same HTML as the full Markdown path ------------------------------

# Letters, punctuation and spaces that mean something somewhere in Markdown or to the link finder,
# mixed with plain words, so that both the short cut and the full path are exercised.
_PIECES = [
    *"abcxyzABC019 ",
    *" \n\n  ",
    *",.;:?!'\"()%=/+@$-",
    *"#>*_`~|[]<>&\\{}^\t\r\x00",
    *"\u00a0\u2028\u200b\u3000\ufeff\u00e9\u2014\u201c\u2026\U0001f600\u0663",
    "http://",
    "https://x.org",
    "mailto:",
    "ftp:",
    "//",
    "www.",
    "localhost",
    "LocalHost:8000",
    "example.com",
    ".de",
    ".io ",
    "a@b.co",
    "1. ",
    "2) ",
    "- ",
    "+ ",
    "==",
    "--",
    "    ",
    "Ada says ",
    "40% faster",
]


def _full_markdown(text: str) -> str:
    from liveblog.text import _md, _plain_text, sanitise

    tokens = _md.parse(text)
    return sanitise(_md.renderer.render(tokens, _md.options, {"fallback_alt": _plain_text(tokens)}))


def test_plain_text_takes_the_short_cut_and_renders_as_markdown_would() -> None:
    import random

    from liveblog.text import plain_html

    plain = [
        "Ada: the new compiler is 40% faster, since v3.2 (beta). Really?",
        "bench t=1733600000000 xxxxxxxx",
        'She said "ship it" and they did!\nSecond line, same paragraph',
        "Café \u2014 \u201cquoted\u201d \U0001f600",
        "2026 was the year",
    ]
    for text in plain:
        assert plain_html(text) is not None, text
        assert render_markdown(text) == _full_markdown(text), text
    rng = random.Random(22)
    shortcut = 0
    for _ in range(30_000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12)))
        fast = plain_html(text)
        if fast is not None:
            shortcut += 1
            assert render_markdown(text) == _full_markdown(text), repr(text)
    assert shortcut > 1_000  # the comparison above was made often enough to mean something


@pytest.mark.parametrize(
    "text",
    [
        "a=b.com",
        "see example.com",
        "mail a@b.co",
        "go to http://x.org",
        "served from localhost",
        "x\n==",
        "1. one",
        "3) three",
        "- item",
        "  indented",
        "trailing  \nbreak",
        "a\n\nb",
        "**bold**",
        "a\u00a0",
        "",
    ],
)
def test_text_that_may_mean_more_takes_the_full_markdown_path(text: str) -> None:
    from liveblog.text import plain_html

    assert plain_html(text) is None
    assert render_markdown(text) == _full_markdown(text)
