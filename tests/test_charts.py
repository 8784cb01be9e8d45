"""The archive's inline SVG charts: readable axes and labels that say what each bar is."""

from __future__ import annotations

import re

from liveblog.archive.charts import activity_chart, bar_chart


def _labels(svg: str) -> list[tuple[float, str]]:
    """(x, text) of the text labels along the bottom axis (y near the chart's foot)."""
    return [
        (float(x), t) for x, t in re.findall(r'<text x="([\d.]+)" y="192" fill="[^"]+">([^<]+)</text>', svg)
    ]


def test_a_two_day_events_activity_has_evenly_spaced_labels_that_can_be_read() -> None:
    slots = [
        (f"2026-05-{d}T{h:02d}:{m:02d}", (h * 7 + m) % 5)
        for d, hours in (("14", range(9, 24)), ("15", range(0, 18)))
        for h in hours
        for m in (0, 15, 30, 45)
    ]
    svg = str(activity_chart(slots, title="Items per quarter hour"))
    labels = _labels(svg)
    assert len(labels) >= 5, labels
    assert labels[0][1] == "09:00"
    assert "15 May" in [t for _, t in labels]  # the second day is named where it starts
    xs = [x for x, _ in labels]
    assert all(b - a >= 40 for a, b in zip(xs, xs[1:], strict=False)), xs  # no two labels run into each other
    gaps = {round(b - a) for a, b in zip(xs[1:], xs[2:], strict=False)}
    assert len(gaps) == 1, xs  # evenly spaced after the first


def test_a_short_session_still_has_labels_and_a_middle_value_on_the_axis() -> None:
    slots = [
        ("2026-05-14T09:00", 4),
        ("2026-05-14T09:15", 10),
        ("2026-05-14T09:30", 2),
        ("2026-05-14T10:00", 1),
    ]
    svg = str(activity_chart(slots, title="t"))
    assert [t for _, t in _labels(svg)] == ["09:00", "10:00"]
    values = re.findall(r'text-anchor="end" fill="[^"]+">(\d+)</text>', svg)
    assert values == ["10", "5", "0"]


def test_bars_are_labelled_by_their_own_text_with_the_detail_in_the_tooltip() -> None:
    session = "Keeping talent: what stay interviews taught three councils"
    rows = [("Would you run stay interviews?", 31), ("How long is the notice period in your council?", 18)]
    svg = str(bar_chart(rows, title="Voters per poll", details=[session, session]))
    shown = re.findall(r"</title>([^<]+)</text>", svg)
    assert shown == ["Would you run stay interviews?", "How long is the notice period in…"]
    assert session not in shown[0] and svg.count(f"({session})") == 4  # in each tooltip and the description
    assert "Would you run stay interviews? (Keeping talent" in svg.split("<desc>")[1]
