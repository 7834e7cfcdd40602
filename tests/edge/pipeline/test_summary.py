"""The replay summary a person reads: counts in words, age groups in age order, no empty headings, and
each alert and flag on its own line."""

from __future__ import annotations

from edge.pipeline.summary import format_summary


def summary(customers: list[dict], stats: list[dict], pos: dict | None = None) -> dict:
    base = {
        "run_id": 7,
        "status": "completed",
        "source": "clip.mp4",
        "db": "run.db",
        "frames": 1,
        "dropped_frames": 0,
        "faces": 1,
        "age_inferences": 1,
        "fps": 10.0,
        "model": {"provider": "CPUExecutionProvider"},
        "customers": customers,
        "stats": stats,
        "stage_ms": {"detect": 12.0},
    }
    return {**base, "pos": pos} if pos else base


def customer(track_id: int, age: float, group: str) -> dict:
    return {
        "track_id": track_id,
        "age": age,
        "age_low": age - 3,
        "age_high": age + 3,
        "age_group": group,
        "samples": 1,
        "first_seen": "2026-11-22T09:00:00Z",
        "last_seen": "2026-11-22T09:00:05Z",
    }


def pos(threshold: float, rows: list[dict]) -> dict:
    flags = sum(row["kind"] == "flag" for row in rows)
    counts = {"events": 1, "rejected": 0, "alerts": len(rows) - flags, "flags": flags}
    return {**counts, "notifications_sent": 0, "notifications_failed": 0, "threshold": threshold, "config": "site.yaml"}


def test_counts_are_in_words_and_groups_in_age_order():
    hour = "2026-11-22T09:00Z"
    stats = [
        {"hour": hour, "age_group": group, "customers": 1, "mean_age": age}
        for group, age in (("18-24", 20.0), ("25-34", 30.0), ("<18", 15.0))
    ]
    text = format_summary(summary([customer(1, 15, "<18")], stats))
    assert "1 frame (0 dropped), 1 face, 1 age inference," in text and "1 customer:" in text and "1 sample," in text
    groups = [line.split()[1] for line in text.splitlines() if line.startswith(f"    {hour}")]
    assert groups == ["<18", "18-24", "25-34"]


def test_no_customers_is_one_line_without_empty_headings():
    text = format_summary(summary([], []))
    assert "no customers:" in text and "customers:" not in text.replace("no customers:", "")
    assert "customers per hour" not in text


def test_alerts_and_flags_are_listed_with_type_till_cashier_and_age():
    rows = [
        {"kind": "alert", "type": "id_check_required", "severity": "info", "t": 1.0, "till_id": "till-2",
         "cashier_id": "dana", "transaction": "T9", "age": 16.04, "age_low": 14.0, "age_high": 19.0,
         "p_under": 0.931},
        {"kind": "flag", "type": "no_face", "severity": "medium", "t": 3.5, "till_id": "till-2",
         "cashier_id": None, "transaction": "T10", "age": None, "age_low": None, "age_high": None},
    ]  # fmt: skip
    text = format_summary(summary([], [], {**pos(25, rows), "alerts_and_flags": rows}))
    assert "1 event (0 rejected), 1 alert, 1 flag; policy Challenge 25\n" in text
    alert, flag = (line for line in text.splitlines() if line.startswith("    alert") or line.startswith("    flag"))
    assert "id_check_required" in alert and "till till-2" in alert and "cashier dana" in alert and "age 16.0" in alert
    assert alert.endswith("age 16.0 [14.0-19.0] P(under 25) 0.93"), "the probability beside the estimate, for 25"
    assert "no_face" in flag and "cashier (none)" in flag and "no face" in flag


def test_a_threshold_other_than_25_says_where_it_came_from():
    text = format_summary(summary([], [], {**pos(40, []), "alerts_and_flags": []}))
    assert "0 alerts, 0 flags; policy Challenge 40: policy.threshold from site.yaml (the default is 25)" in text


def test_each_customers_chance_names_the_challenge_age_it_is_for():
    # 'P(under threshold) 0.95' did not say under what: a reader took it for 18, or for the store's 25.
    text = format_summary({**summary([{**customer(1, 21.9, "18-24"), "p_under": 0.947}], []), "threshold": 40})
    assert "age  21.9 [18.9-24.9] P(under 40) 0.95 group 18-24" in text
    assert "threshold" not in text
