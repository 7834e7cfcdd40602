"""A period's overview, shared by the review app and `agecam report`: totals, flags by severity and by
outcome, the age mix, traffic with every hour (or day) of the period shown, and ID-check compliance."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from markupsafe import Markup

from edge.review.inputs import Period
from edge.review.present import SEVERITIES, name, percent, repeated
from edge.review.svg import COMPLIANT, CUSTOMERS, NEEDS_COACHING, SEVERITY, Bar, bar_list, column_chart
from edge.review.tables import group_order
from edge.store import flag_queries, review_queries
from edge.store.review_records import OPEN, OUTCOMES


@dataclass(frozen=True)
class Overview:
    customers: int
    sales: dict[str, int]  # restricted_sales, checks_required, checks_done
    alerts: int
    flags: int
    severities: dict[str, int]
    outcomes: dict[str, int]  # every outcome, open first, zero included
    charts: dict[str, Markup]


def build(db: sqlite3.Connection, period: Period) -> Overview:
    span, traffic = period.span(), period.traffic_span()
    by_hour = review_queries.customers_by_hour(db, traffic)
    counts = flag_queries.alert_counts(db, span)
    flags = [row for row in counts if row["kind"] == "flag"]
    severities = Counter()
    outcomes = dict.fromkeys([OPEN, *OUTCOMES], 0)
    for row in flags:
        severities[row["severity"]] += row["n"]
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["n"]
    charts = {
        "Flags by severity": severity_chart(severities),
        "Age mix": age_chart(review_queries.age_mix(db, traffic)),
        **traffic_charts(period, by_hour),
    }
    return Overview(
        customers=sum(count for _, count in by_hour),
        sales=review_queries.sales_summary(db, span),
        alerts=sum(row["n"] for row in counts if row["kind"] == "alert"),
        flags=sum(row["n"] for row in flags),
        severities=dict(severities),
        outcomes=outcomes,
        charts=charts,
    )


def severity_chart(severities: Counter) -> Markup:
    """Flags are high or medium (both always shown, zero too); any other severity only when present."""
    keys = ["high", "medium", *sorted(set(severities) - {"high", "medium"})]
    bars = [Bar(name(SEVERITIES, key), severities.get(key, 0), SEVERITY.get(key, "#999999")) for key in keys]
    return bar_list(bars, title="Flags by severity", empty="No flags in this period.")


def age_chart(rows: list[dict]) -> Markup:
    bars = [Bar(row["age_group"], row["customers"], CUSTOMERS) for row in sorted(rows, key=_group_key)]
    return bar_list(bars, title="Customers by estimated age group", empty="No customers were counted in this period.")


def _group_key(row: dict) -> int:
    try:
        return group_order(row["age_group"])
    except ValueError:  # a label from another config's groups
        return 999


def traffic_charts(period: Period, by_hour: list[tuple[str, int]]) -> dict[str, Markup]:
    """Customers per local hour of a single day; for longer periods per hour of day and per day (per
    month beyond three months). Every slot of the period is drawn, so hours without customers show."""
    hours, days = _local_counts(period, by_hour)
    empty = "No customers were counted in this period."
    hour_bars = [Bar(f"{hour:02d}", hours[hour], CUSTOMERS) for hour in range(24)]
    if period.days == 1:
        title, bars = "Customers by hour", _clock_change_bars(period, by_hour) or hour_bars
        if len(bars) != 24:
            title += f" ({len(bars)} hours: the clocks changed)"
        return {title: column_chart(bars, title=title, unit="customers", empty=empty, label_every=2)}
    charts = {
        "Customers by hour of day": column_chart(
            hour_bars, title="Customers by hour of day, all days", unit="customers", empty=empty, label_every=2
        )
    }
    all_days = [period.first + timedelta(days=offset) for offset in range(period.days)]
    if period.days > 92:
        months = Counter()
        for day, count in days.items():
            months[f"{day:%Y-%m}"] += count
        labels = sorted({f"{day:%Y-%m}" for day in all_days})
        bars, title = [Bar(label, months[label], CUSTOMERS) for label in labels], "Customers by month"
        if period.first.day != 1 or (period.last + timedelta(days=1)).day != 1:
            title += " (the first or last month is only partly in the period)"
    else:
        bars, title = [Bar(f"{day:%m-%d}", days[day], CUSTOMERS) for day in all_days], "Customers by day"
    every = max(1, math.ceil(len(bars) / 16))
    charts[title] = column_chart(bars, title=title, unit="customers", empty=empty, label_every=every)
    return charts


def _clock_change_bars(period: Period, by_hour: list[tuple[str, int]]) -> list[Bar] | None:
    """On a day the clocks change (23 or 25 hours), one bar per hour as it happened: counted per local hour of
    day, the repeated hour would show two hours' customers and the skipped one a gap. None on other days."""
    start = datetime.combine(period.first, time(0), period.zone).astimezone(UTC)
    end = datetime.combine(period.first + timedelta(days=1), time(0), period.zone).astimezone(UTC)
    if end - start == timedelta(hours=24):
        return None
    counts = {hour[:13]: count for hour, count in by_hour}
    moment, bars = start.replace(minute=0, second=0, microsecond=0), []
    moment += timedelta(hours=1) if moment < start else timedelta(0)  # each UTC hour goes to the day it starts in
    while moment < end:
        local = moment.astimezone(period.zone)
        label = f"{local:%H} {local:%Z}" if repeated(local) else f"{local:%H}"
        bars.append(Bar(label, counts.get(f"{moment:%Y-%m-%dT%H}", 0), CUSTOMERS))
        moment += timedelta(hours=1)
    return bars


def _local_counts(period: Period, by_hour: list[tuple[str, int]]) -> tuple[Counter, Counter]:
    """Customers per local hour of day and per local date. A year has thousands of hours: no strftime."""
    hours: Counter = Counter()
    days: Counter = Counter()
    for hour, count in by_hour:
        moment = datetime.fromisoformat(hour[:13] + ":00+00:00").astimezone(period.zone)
        hours[moment.hour] += count
        days[moment.date()] += count
    return hours, days


def compliance_rows(rows: list[dict], threshold: float) -> list[dict]:
    """Each cashier's required and done checks, their share, and whether they need coaching."""
    return [
        {**row, "share": row["checked"] / row["required"], "coaching": row["checked"] / row["required"] < threshold}
        for row in rows
        if row["required"]
    ]


def compliance_chart(rows: list[dict], threshold: float) -> Markup:
    bars = [
        Bar(
            str(row["cashier"]),
            100 * row["share"],
            NEEDS_COACHING if row["coaching"] else COMPLIANT,
            f"{100 * row['share']:.1f}% ({row['checked']:,} of {row['required']:,})",
        )
        for row in rows
    ]
    return bar_list(
        bars,
        title=f"ID checks done per cashier; the dashed line is the {percent(threshold)} threshold",
        empty="No transaction needed an ID check in this period.",
        scale=100,
        marker=100 * threshold,
        width=500,
        value_width=170,
    )
