"""Charts as inline SVG, made on the server: column charts (integer axes, empty slots kept), bar lists and a
transaction's timeline. No script and no external resource; the page's CSS sets fonts.

One colour meaning per chart family: customers are blue; severities are grey, orange and red wherever
they appear; compliance is green at or above the threshold and red below it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from edge.review.tables import BIDI

CUSTOMERS = "#3b6ea8"
# Bars and markers are graphics: at least 3:1 on white (WCAG 1.4.11). Medium's orange was #d9822b, 2.9:1.
SEVERITY = {"info": "#7a8794", "medium": "#d6802a", "high": "#c0392b"}
COMPLIANT, NEEDS_COACHING = "#2e8b57", "#c0392b"
POS_EVENT = "#555555"
AXIS, GRID = "#444444", "#e3e3e3"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str
    text: str = ""  # shown beside the bar instead of the value, e.g. "3 of 4"


def nice_step(top: float) -> int:
    """An integer tick step of 1, 2 or 5 times a power of ten, giving at most five steps up to `top`."""
    if top <= 5:
        return 1
    power = 10 ** math.floor(math.log10(top / 5))
    return next(step * power for step in (1, 2, 5, 10) if top / (step * power) <= 5)


def empty_state(message: str) -> Markup:
    return Markup('<p class="empty">{}</p>').format(message)


def _svg(width: int, height: int, title: str, body: list[str], kind: str) -> Markup:
    head = (
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def column_chart(
    bars: list[Bar], *, title: str, unit: str, empty: str, label_every: int = 1, width: int = 720, height: int = 220
) -> Markup:
    """Vertical bars on an integer axis. A zero is an empty slot, still labelled, so gaps stay visible."""
    if not any(bar.value for bar in bars):
        return empty_state(empty)
    left, right, top, bottom = 52, 8, 24, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    step = nice_step(max(bar.value for bar in bars))
    ceiling = step * math.ceil(max(bar.value for bar in bars) / step)
    body = []
    for tick in range(0, ceiling + 1, step):
        y = top + plot_h * (1 - tick / ceiling)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    slot = plot_w / len(bars)
    for index, bar in enumerate(bars):
        x = left + index * slot
        if bar.value:
            h = plot_h * bar.value / ceiling
            tip = escape(f"{_isolated(bar.label)}: {bar.text or _number(bar.value)} {unit}")
            body.append(
                f'<rect x="{x + slot * 0.12:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.76:.1f}"'
                f' height="{h:.1f}" fill="{bar.colour}"><title>{tip}</title></rect>'
            )
        if index % label_every == 0:
            body.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(bar.label)}</text>'
            )
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    body.append(f'<text x="{left}" y="12" class="unit">{escape(unit)}</text>')
    return _svg(width, height, title, body, "columns")


def bar_list(
    bars: list[Bar],
    *,
    title: str,
    empty: str,
    scale: float | None = None,
    marker: float | None = None,
    width: int = 460,
    value_width: int = 116,
) -> Markup:
    """Horizontal bars, one labelled row each, on a shared scale (default the largest value). `marker`
    draws a dashed line at that value, e.g. the compliance threshold."""
    if not bars or (not any(bar.value for bar in bars) and marker is None):
        return empty_state(empty)
    row, label_w, value_w = 24, 124, value_width
    plot_w = width - label_w - value_w
    scale = scale or max(bar.value for bar in bars) or 1
    height = row * len(bars) + 6
    body = []
    for index, bar in enumerate(bars):
        y = 3 + index * row
        w = plot_w * bar.value / scale
        body.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(_clip(bar.label, 18))}</text>')
        body.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{bar.colour}">'
            f"<title>{escape(_isolated(bar.label))}: {escape(bar.text or _number(bar.value))}</title></rect>"
        )
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(bar.text or _number(bar.value))}</text>')
    if marker is not None:
        x = label_w + plot_w * marker / scale
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="{AXIS}" stroke-dasharray="4 3"/>')
    return _svg(width, height, title, body, "bars")


@dataclass(frozen=True)
class Mark:
    seconds: float  # from the transaction's start
    label: str
    colour: str
    shape: str = "circle"  # circle (POS event) or diamond (agecam's alert or flag)


def timeline(marks: list[Mark], *, title: str, width: int = 760) -> Markup:
    """A transaction's events, one row each, placed along its duration in seconds."""
    if not marks:
        return empty_state("No POS events were recorded for this transaction.")
    row, left, right = 24, 12, 340
    span = max(max(mark.seconds for mark in marks), 1.0)
    plot_w = width - left - right
    height = row * len(marks) + 30
    body = [f'<line x1="{left}" x2="{left + plot_w}" y1="{height - 22}" y2="{height - 22}" stroke="{AXIS}"/>']
    for tick in (0, span / 2, span):
        x = left + plot_w * tick / span
        body.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{tick:.1f} s</text>')
    for index, mark in enumerate(marks):
        x, y = left + plot_w * mark.seconds / span, 12 + index * row
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y:.1f}" y2="{height - 22}" stroke="{GRID}"/>')
        if mark.shape == "diamond":
            points = f"{x:.1f},{y - 7:.1f} {x + 7:.1f},{y:.1f} {x:.1f},{y + 7:.1f} {x - 7:.1f},{y:.1f}"
            body.append(f'<polygon points="{points}" fill="{mark.colour}"/>')
        else:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{mark.colour}"/>')
        text = escape(f"{mark.seconds:.1f} s  {_isolated(_clip(mark.label, 52))}")
        body.append(f'<text x="{left + plot_w + 12}" y="{y + 4:.1f}">{text}</text>')
    return _svg(width, height, title, body, "timeline")


def _number(value: float) -> str:
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _isolated(text: str) -> str:
    """A label with a bidi control (from a POS value) between FSI and PDI: an override left open in a cashier
    id then ends with it, rather than reversing the share or count that follows it in a tooltip."""
    if not BIDI.search(text):
        return text
    return "\u2068" + re.sub("[\u2066-\u2069]", "", text) + "\u2069"  # its own PDI would end ours early
