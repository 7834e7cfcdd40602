"""`agecam score SCENARIO --db RUN.db`: a replay's alerts and flags against the scenario's ground truth.

Transactions are matched by the POS transaction id. Reported: recall of flags for minors sold alcohol
without a passed ID check, the flag share among such sales to customers aged 18-24 and 25+ (and 25+ split
into 25-29 and 30+), alert recall and latency (video seconds from the restricted scan), and how often the
customer association picked the right person.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from edge.errors import PosError, StateError
from edge.scenario.plan import END_S, POS, START_S, TRUTH, VIDEO
from edge.store.eventlog import unix

SALE_FLAGS = ("sold_without_id_check", "sold_after_failed_id_check")


# What score() reads of each customer in truth.json.
CUSTOMER_KEYS = (
    "transaction_id",
    "cashier_id",
    "real_age",
    "alcohol",
    "sold_without_check",
    "enter",
    "arrive",
    "leave",
)


def load_truth(scenario: Path) -> list[dict]:
    path = scenario / TRUTH
    if path.exists() and not path.is_file():  # /dev/zero was read until a MemoryError (a traceback), a FIFO forever
        raise PosError(f"{path} is not a regular file: give the folder that 'agecam simulate' wrote")
    try:
        customers = json.loads(path.read_text())["customers"]
    except (OSError, ValueError, KeyError, TypeError) as error:  # TypeError: valid JSON that is not an object
        raise PosError(f"{path}: not a scenario's ground truth ({error}): run 'agecam simulate'") from None
    # A hand-edited or foreign file fails here, on one line, rather than as a traceback inside score().
    if not isinstance(customers, list) or not all(
        isinstance(customer, dict) and all(key in customer for key in CUSTOMER_KEYS) for customer in customers
    ):
        raise PosError(f"{path}: customers are not a scenario's ({', '.join(CUSTOMER_KEYS)}): run 'agecam simulate'")
    # A value of the wrong type or range was a traceback deep inside score() or check_same_scenario().
    for index, customer in enumerate(customers):
        if key := _bad_key(customer):
            value = repr(customer[key])[:40]
            raise PosError(
                f"{path}: customer {index + 1} has {key} {value}, which no scenario has: run 'agecam simulate'"
            )
    if len({customer["transaction_id"] for customer in customers}) < len(customers):
        raise PosError(f"{path}: a transaction_id appears twice, which no scenario has: run 'agecam simulate'")
    return customers


def _bad_key(customer: dict) -> str | None:
    """The first key of a truth.json customer that score() cannot use (wrong type, or an age out of range)."""
    kinds = {"transaction_id": str, "cashier_id": str, "alcohol": bool, "sold_without_check": bool}
    for key, kind in kinds.items():
        if not isinstance(customer[key], kind):
            return key
    for key in ("real_age", "enter", "arrive", "leave"):
        if not _finite(customer[key]):
            return key
    low, high = AGE_BANDS["minors"][0], AGE_BANDS["30_plus"][1]
    return None if low <= customer["real_age"] < high else "real_age"


def check_same_scenario(truth: list[dict], run: dict[str, dict], scenario: Path, db: Path) -> None:
    """PosError unless `run` replayed this scenario's POS script: every scenario's transactions are named
    T0001, T0002..., so the names alone would score another scenario's replay without a word. Each POS
    transaction's cashier and length (transaction_start to transaction_end, in script seconds) must match.
    StateError for a run with values agecam never writes (a damaged or edited log), on which score() fails."""
    fix = f"replay {scenario / VIDEO} with --pos {scenario / POS} and score that run"
    if set(run) != {customer["transaction_id"] for customer in truth}:
        raise PosError(f"the run has {len(run)} POS transactions where {scenario} has {len(truth)} customers: {fix}")
    for customer in truth:
        name = customer["transaction_id"]
        txn = run[name]["txn"] or {}
        ended = txn.get("ended_at") and _seconds(txn, f"{db}: transaction {name}")
        _check_latencies(run[name]["alerts"], f"{db}: transaction {name}")
        length = customer["leave"] - END_S - (customer["arrive"] + START_S)  # as pos_script times them
        if txn.get("cashier_id") != customer["cashier_id"] or (ended and abs(ended - length) > 0.05):
            raise PosError(f"transaction {name} of the run is not {scenario}'s: {fix}")


def _seconds(txn: dict, where: str) -> float:
    try:
        return unix(txn["ended_at"]) - unix(txn["started_at"])
    except (TypeError, ValueError, AttributeError):
        times = f"{txn['started_at']!r} to {txn['ended_at']!r}"
        raise StateError(f"{where} has times {times}, which agecam never writes: replay the scenario again") from None


def _check_latencies(alerts: list[dict], where: str) -> None:
    for alert in alerts:
        value = alert["latency_s"]
        if alert["type"] == "id_check_required" and not _finite(value):
            raise StateError(f"{where} has an alert with latency_s {value!r}, which agecam never writes: replay again")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


# Customers aged 25+ split further: false flags fall with age, and 25-29 is where Challenge 25 errs most.
ADULT_BANDS = {"25_29": (25, 30), "30_plus": (30, 200)}
# Every customer's band by real age, as the benchmarks on replayed scenarios group them.
AGE_BANDS = {"minors": (0, 18), "18_24": (18, 25), **ADULT_BANDS}


def age_band(age: float) -> str:
    return next(name for name, (low, high) in AGE_BANDS.items() if low <= age < high)


def score(truth: list[dict], run: dict[str, dict]) -> dict:
    groups = {"minor": (0, 18), "young": (18, 25), "adult": (25, 200)}
    sold = {name: [0, 0] for name in [*groups, *ADULT_BANDS]}  # sold without a passed check: [customers, flagged]
    latencies, alerted_minors, minors_buying, associated, restricted = [], 0, 0, 0, 0
    no_face = 0
    for customer in truth:
        found = run.get(customer["transaction_id"], {"alerts": [], "txn": None, "track": None})
        types = {alert["type"] for alert in found["alerts"]}
        no_face += "no_face" in types
        group = next(name for name, (low, high) in groups.items() if low <= customer["real_age"] < high)
        bands = [name for name, (low, high) in ADULT_BANDS.items() if low <= customer["real_age"] < high]
        if customer["sold_without_check"]:
            for name in [group, *bands]:
                sold[name][0] += 1
                sold[name][1] += bool(types & set(SALE_FLAGS))
        if not customer["alcohol"]:
            continue
        restricted += 1
        associated += _right_person(found["track"], customer)
        alerts = [alert for alert in found["alerts"] if alert["type"] == "id_check_required"]
        latencies += [alert["latency_s"] for alert in alerts]
        if customer["real_age"] < 18:
            minors_buying += 1
            alerted_minors += bool(alerts)
    return {
        "customers": len(truth),
        "minors_sold_without_check": sold["minor"][0],
        "minor_flag_recall": _share(sold["minor"][1], sold["minor"][0]),
        "young_sold_without_check": sold["young"][0],
        "young_flag_share": _share(sold["young"][1], sold["young"][0]),
        "adults_sold_without_check": sold["adult"][0],
        "adult_false_flag_share": _share(sold["adult"][1], sold["adult"][0]),
        **{key: value for band in ADULT_BANDS for key, value in _band(band, sold[band]).items()},
        "no_face_flags": no_face,
        "minors_buying_alcohol": minors_buying,
        "minor_alert_recall": _share(alerted_minors, minors_buying),
        "alerts": len(latencies),
        "alert_latency_s": _latency(latencies),
        "association_accuracy": _share(associated, restricted),
    }


def _band(band: str, counts: list[int]) -> dict[str, object]:
    """adults_25_29_sold_without_check / adult_25_29_false_flag_share, and the same for 30_plus."""
    customers, flagged = counts
    share = _share(flagged, customers)
    return {f"adults_{band}_sold_without_check": customers, f"adult_{band}_false_flag_share": share}


def _right_person(track: tuple[float, float] | None, customer: dict) -> bool:
    """The associated track was first seen while this customer walked in and lasted past their arrival."""
    if track is None:
        return False
    return customer["enter"] - 0.5 <= track[0] <= customer["leave"] and track[1] >= customer["arrive"]


def _latency(values: list[float]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "median": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def format_score(result: dict) -> str:
    """The score as lines for people (`--json` gives the dict itself)."""
    latency = result["alert_latency_s"]
    timing = (
        f"latency after the scan: median {latency['median']:.2f} s, 95% within {latency['p95']:.2f} s, "
        f"longest {latency['max']:.2f} s"
        if latency
        else "no latency to report"
    )
    r = result
    rows = [
        ("customers", str(r["customers"])),
        ("minors sold without check", f"{r['minors_sold_without_check']}, flagged {_percent(r['minor_flag_recall'])}"),
        ("18-24 sold without check", f"{r['young_sold_without_check']}, flagged {_percent(r['young_flag_share'])}"),
        (
            "25+ sold without check",
            f"{r['adults_sold_without_check']}, flagged {_percent(r['adult_false_flag_share'])}",
        ),
        ("no-face flags", str(r["no_face_flags"])),
        ("minors buying alcohol", f"{r['minors_buying_alcohol']}, alerted {_percent(r['minor_alert_recall'])}"),
        ("ID-check alerts", f"{r['alerts']}, {timing}"),
        ("right customer associated", _percent(r["association_accuracy"])),
    ]
    return "\n".join(f"{name:<27} {value}" for name, value in rows)
