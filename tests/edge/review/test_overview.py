"""Traffic in the store's time zone across its clock changes; charts keep empty slots on integer axes."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from edge.review.inputs import Period
from edge.review.overview import traffic_charts
from edge.review.svg import Bar, column_chart, nice_step
from edge.store.eventlog import CustomerRecord, EventLog
from edge.store.queries import open_log
from edge.store.review_queries import customers_by_hour
from edge.vision.customer import AgeEstimate


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Asia/Kolkata"])
def test_traffic_is_counted_in_local_hours_and_days_across_clock_changes(tmp_path, zone):
    """Customers every 7 hours over London's and New York's spring clock changes: each one lands in its
    local hour of day and local date, and every day of the period has a slot."""
    path, tz = tmp_path / "log.db", ZoneInfo(zone)
    moments = [datetime(2026, 3, 7, tzinfo=UTC).timestamp() + 1800 + 3600 * 7 * i for i in range(100)]
    log = EventLog(path)
    run = log.start_run(
        mode="replay", source="x", model_path="m", model_sha256="0", provider="CPU", version="t", config_json="{}",
        started=moments[0],
    )  # fmt: skip
    estimate = AgeEstimate(30, 26, 34, 5)
    log.save_customers(run, [CustomerRecord(i, t, t + 5, estimate, "25-34", True, True) for i, t in enumerate(moments)])
    log.close()
    period = Period(date(2026, 3, 8), date(2026, 3, 31), tz)
    db = open_log(path)
    try:
        charts = traffic_charts(period, customers_by_hour(db, period.span()))
    finally:
        db.close()
    # Statistics are kept per UTC hour: an hour counts under the local hour it starts in (a half-hour
    # zone's 00:30-01:30 shows as 00).
    local = [datetime.fromtimestamp(t - t % 3600, UTC).astimezone(tz) for t in moments]
    inside = [moment for moment in local if period.first <= moment.date() <= period.last]
    by_hour, by_day = Counter(m.hour for m in inside), Counter(m.date() for m in inside)
    assert _bar_values(charts["Customers by hour of day"]) == {f"{h:02d}": n for h, n in by_hour.items()}
    days = _bar_values(charts["Customers by day"])
    assert days == {f"{d:%m-%d}": n for d, n in by_day.items()}
    labels = re.findall(r">(\d\d-\d\d)</text>", charts["Customers by day"])
    assert labels[0] == "03-08" and len(labels) == -(-period.days // 2), "every other day labelled, none missing"


def _bar_values(chart: str) -> dict[str, int]:
    return {label: int(n) for label, n in re.findall(r"<title>([^:<]+): (\d+) customers</title>", chart)}


def test_integer_ticks_and_empty_slots():
    assert [nice_step(top) for top in (1, 5, 6, 11, 49, 51, 240, 2600)] == [1, 1, 2, 5, 10, 20, 50, 1000]
    chart = column_chart(
        [Bar("a", 0, "#000"), Bar("b", 3, "#000"), Bar("c", 0, "#000")], title="t", unit="u", empty="none"
    )
    assert chart.count("<rect") == 1 and all(label in chart for label in (">a<", ">b<", ">c<"))
    assert re.findall(r'text-anchor="end">([^<]+)<', chart) == ["0", "1", "2", "3"]
    assert "none" in column_chart([Bar("a", 0, "#000")], title="t", unit="u", empty="none") and "<svg" not in (
        column_chart([Bar("a", 0, "#000")], title="t", unit="u", empty="none")
    )
