"""`agecam report --out report.html`: one self-contained HTML file (plots embedded as base64 PNG) with
the age-group mix, hourly traffic, the flags timeline and ID-check compliance per cashier.

matplotlib is imported only here, inside the command, so the frame loop never pays for it.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime

from edge.errors import ConfigError
from edge.vision.age_groups import group_order

SEVERITY_COLOURS = {"info": "#4c78a8", "medium": "#f58518", "high": "#e45756"}


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _nothing(axis, text: str) -> None:
    """Say so on an empty chart, rather than show bare axes."""
    axis.text(0.5, 0.5, text, ha="center", va="center", transform=axis.transAxes, color="grey")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def plots(stats: list[dict], events: list[dict], cashiers: list[dict]) -> dict[str, str]:
    import logging

    try:
        import matplotlib
    except ImportError:  # the till runtime leaves it out: only this command needs it
        raise ConfigError(
            "agecam report draws its charts with matplotlib, which this install lacks: pip install 'agecam[report]'"
        ) from None

    matplotlib.use("Agg")
    # Labels are data (cashier ids, types): never let "$...$" in them be parsed as mathtext.
    matplotlib.rcParams["text.parse_math"] = False
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its INFO notes are noise for this command
    from matplotlib import pyplot

    groups = sorted({row["age_group"] for row in stats}, key=group_order)
    hours = sorted({row["period"] for row in stats})
    counts = {(row["period"], row["age_group"]): row["customers"] for row in stats}
    images = {}

    figure, axis = pyplot.subplots(figsize=(6, 3.2))
    axis.bar(groups, [sum(counts.get((h, g), 0) for h in hours) for g in groups], color="#4c78a8")
    axis.set(title="Age-group mix", xlabel="estimated age group", ylabel="customers")
    if not groups:
        _nothing(axis, "no customers counted in this period")
    images["Age-group mix"] = _png(figure)

    figure, axis = pyplot.subplots(figsize=(8, 3.2))
    bottom = [0] * len(hours)
    for group in groups:
        values = [counts.get((hour, group), 0) for hour in hours]
        axis.bar([hour[5:16].replace("T", " ") for hour in hours], values, bottom=bottom, label=group)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set(title="Hourly traffic (UTC)", ylabel="customers")
    if groups:  # a legend without entries is a matplotlib warning on the user's terminal
        axis.legend(fontsize=7, ncol=4)
    else:
        _nothing(axis, "no customers counted in this period")
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    images["Hourly traffic"] = _png(figure)

    figure, axis = pyplot.subplots(figsize=(8, 3.2))
    types = sorted({row["type"] for row in events}) or ["(none)"]
    for row in events:
        axis.scatter(_when(row["at"]), types.index(row["type"]), color=SEVERITY_COLOURS.get(row["severity"], "grey"))
    axis.set_yticks(range(len(types)), types, fontsize=8)
    axis.set(title="Alerts and flags over time (UTC); colour = severity (blue info, orange medium, red high)")
    axis.tick_params(axis="x", labelrotation=30, labelsize=7)
    if not events:
        _nothing(axis, "no alerts or flags in this period")
    images["Flags timeline"] = _png(figure)

    figure, axis = pyplot.subplots(figsize=(6, 3.2))
    names = [row["cashier"] for row in cashiers]
    shares = [100 * row["checked"] / row["required"] for row in cashiers]
    bars = axis.bar(names, shares, color="#54a24b")
    for bar, row in zip(bars, cashiers, strict=True):
        axis.annotate(f"{row['checked']}/{row['required']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8)  # fmt: skip
    axis.set(title="ID-check compliance per cashier", ylabel="% of required checks done", ylim=(0, 110))
    if not cashiers:
        _nothing(axis, "no sale needed an ID check in this period")
    images["ID-check compliance"] = _png(figure)
    pyplot.close("all")
    return images


def render_html(title: str, images: dict[str, str], events: list[dict], totals: dict[str, int]) -> str:
    figures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>'
        for name, data in images.items()
    )
    flags = [row for row in events if row["kind"] == "flag"]
    head = ["at", "type", "severity", "till_id", "cashier_id", "pos_transaction_id", "age", "age_low", "age_high"]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row[key]))}</td>" for key in head) + "</tr>" for row in flags
    )
    summary = " · ".join(f"{html.escape(key)}: <b>{value}</b>" for key, value in totals.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;color:#222}} figure{{display:inline-block;margin:.5em}}
table{{border-collapse:collapse;font-size:.85em}} td,th{{border:1px solid #ccc;padding:.2em .5em}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{summary}</p>{figures}
<h2>Flags ({len(flags)})</h2><table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{body}</table>
<p><small>No face images are included. Ages are camera estimates, not verified ages.</small></p></body></html>
"""


def _cell(value: object) -> str:
    return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def build_report(stats: list[dict], events: list[dict], cashiers: list[dict]) -> str:
    """The whole page from the period's hourly stats, alerts and flags, and per-cashier compliance."""
    totals = {
        "customers": sum(row["customers"] for row in stats),
        "alerts": sum(row["kind"] == "alert" for row in events),
        "flags": sum(row["kind"] == "flag" for row in events),
        "high-severity flags": sum(row["kind"] == "flag" and row["severity"] == "high" for row in events),
    }
    return render_html("agecam report", plots(stats, events, cashiers), events, totals)
