"""Charts drawn as inline SVG on the server: no script, readable in a static export, and each
with a text title and description so a screen reader gets the numbers too."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

INK = "#1f2937"
BAR = "#2563eb"
GRID = "#d1d5db"
MUTED = "#4b5563"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    t = escape(title)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{t}"'
        f' xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{t}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def bar_chart(
    rows: list[tuple[str, int]], *, title: str, width: int = 640, details: list[str] | None = None
) -> Markup:
    """Horizontal bars, one row per (label, value), the value written at the bar's end. A row's
    detail (a poll's session, say) goes in its tooltip and the description, so the label itself
    says what the bar is."""
    if not rows:
        return Markup(f'<p class="muted">{escape(title)}: nothing to show yet.</p>')
    row_h, label_w, pad = 26, 230, 8
    height = row_h * len(rows) + pad * 2
    top = max(v for _, v in rows) or 1
    span = width - label_w - 60
    body = []
    described = []
    for n, (label, value) in enumerate(rows):
        detail = details[n] if details else ""
        full = f"{label} ({detail})" if detail else label
        y = pad + n * row_h
        short = label if len(label) <= 34 else label[:33].rstrip() + "…"
        w = max(2, round(span * value / top)) if value else 0
        body.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" fill="{INK}"><title>{escape(full)}</title>'
            f"{escape(short)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row_h - 8}" fill="{BAR}" rx="2"/>'
            f'<text x="{label_w + w + 6}" y="{y + 17}" fill="{INK}">{value}</text>'
        )
        described.append(f"{full}: {value}")
    return _svg(width, height, title, "; ".join(described), body)


def fill_quarters(slots: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Every quarter hour from the first slot to the last, with 0 where nothing was posted (at
    most a week of them; a longer span keeps only the slots given)."""
    from datetime import datetime, timedelta

    if not slots:
        return slots
    counts = dict(slots)
    start = datetime.strptime(slots[0][0], "%Y-%m-%dT%H:%M")
    end = datetime.strptime(slots[-1][0], "%Y-%m-%dT%H:%M")
    if end - start > timedelta(days=7):
        return slots
    out = []
    while start <= end:
        key = start.strftime("%Y-%m-%dT%H:%M")
        out.append((key, counts.get(key, 0)))
        start += timedelta(minutes=15)
    return out


# Hours between labels on the time axis: the fewest that leave room to read each label.
LABEL_STEPS = (1, 2, 3, 4, 6, 12, 24)
LABEL_ROOM = 44  # px a label such as "09:00" or "15 May" needs, with a gap


def activity_chart(
    slots: list[tuple[str, int]], *, title: str, width: int = 640, height: int = 200
) -> Markup:
    """Columns over time: (slot 'YYYY-MM-DDTHH:MM', count). Along the bottom an hour label every
    few hours (as many as fit), with the date where a new day starts; up the side 0, half and the
    top."""
    if not slots:
        return Markup(f'<p class="muted">{escape(title)}: nothing to show yet.</p>')
    slots = fill_quarters(slots)
    left, bottom, top_pad = 36, 28, 10
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    top = max(n for _, n in slots) or 1
    col = plot_w / len(slots)
    step = next((h for h in LABEL_STEPS if col * 4 * h >= LABEL_ROOM), LABEL_STEPS[-1])
    body = [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" y2="{top_pad + plot_h}" stroke="{GRID}"/>'
    ]
    for value in sorted({top, top // 2, 0}, reverse=True):
        y = top_pad + plot_h - plot_h * value / top
        body.append(
            f'<text x="{left - 6}" y="{y + (10 if value == top else 4 if value else 0):.1f}"'
            f' text-anchor="end" fill="{MUTED}">{value}</text>'
        )
        if 0 < value < top:
            body.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="{GRID}"'
                ' stroke-dasharray="2 4"/>'
            )
    last_x: float | None = None
    for n, (slot, count) in enumerate(slots):
        h = plot_h * count / top
        x = left + n * col
        body.append(
            f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(col - 2, 1):.1f}" height="{h:.1f}"'
            f' fill="{BAR}"><title>{escape(slot.replace("T", " "))}: {count}</title></rect>'
        )
        hour, minute = int(slot[11:13]), slot[14:16]
        on_tick = minute == "00" and hour % step == 0
        if (n == 0 or on_tick) and (last_x is None or x - last_x >= LABEL_ROOM):
            label = (
                f"{int(slot[8:10])} {MONTHS[int(slot[5:7]) - 1]}"
                if on_tick and hour == 0 and n
                else f"{hour:02d}:00"
            )
            body.append(f'<text x="{x + 1:.1f}" y="{height - 8}" fill="{MUTED}">{escape(label)}</text>')
            last_x = x
    desc = "; ".join(f"{slot.replace('T', ' ')}: {n}" for slot, n in slots)
    return _svg(width, height, title, desc, body)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
