"""A period's overview, shared by the review app and `agecam report`: totals, flags by severity and by
outcome, the age mix, traffic with every hour (or day) of the period shown, and ID-check compliance."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from markupsafe import Markup

from edge.review.inputs import Period
from edge.review.present import SEVERITIES, name, parse
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
    span = period.span()
    by_hour = review_queries.customers_by_hour(db, span)
    counts = flag_queries.alert_counts(db, span)
    flags = [row for row in counts if row["kind"] == "flag"]
    severities = Counter()
    outcomes = dict.fromkeys([OPEN, *OUTCOMES], 0)
    for row in flags:
        severities[row["severity"]] += row["n"]
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["n"]
    charts = {
        "Flags by severity": severity_chart(severities),
        "Age mix": age_chart(review_queries.age_mix(db, span)),
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
    local = [(parse(hour).astimezone(period.zone), count) for hour, count in by_hour]
    hours = Counter()
    for moment, count in local:
        hours[moment.hour] += count
    empty = "No customers were counted in this period."
    hour_bars = [Bar(f"{hour:02d}", hours[hour], CUSTOMERS) for hour in range(24)]
    if period.days == 1:
        chart = column_chart(hour_bars, title="Customers by hour", unit="customers", empty=empty, label_every=2)
        return {"Customers by hour": chart}
    charts = {
        "Customers by hour of day": column_chart(
            hour_bars, title="Customers by hour of day, all days", unit="customers", empty=empty, label_every=2
        )
    }
    monthly = period.days > 92
    key = "%Y-%m" if monthly else "%Y-%m-%d"
    slots = Counter()
    for moment, count in local:
        slots[moment.strftime(key)] += count
    labels = _slots(period, monthly)
    bars = [Bar(label[5:] if not monthly else label, slots[label], CUSTOMERS) for label in labels]
    title = "Customers by month" if monthly else "Customers by day"
    every = max(1, math.ceil(len(bars) / 16))
    charts[title] = column_chart(bars, title=title, unit="customers", empty=empty, label_every=every)
    return charts


def _slots(period: Period, monthly: bool) -> list[str]:
    days = [period.first + timedelta(days=offset) for offset in range(period.days)]
    if not monthly:
        return [day.isoformat() for day in days]
    return sorted({day.strftime("%Y-%m") for day in days})


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
            f"{100 * row['share']:.0f}% ({row['checked']} of {row['required']})",
        )
        for row in rows
    ]
    return bar_list(
        bars,
        title=f"ID checks done per cashier; the dashed line is the {100 * threshold:.0f}% threshold",
        empty="No transaction needed an ID check in this period.",
        scale=100,
        marker=100 * threshold,
    )
