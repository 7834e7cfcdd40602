"""A year of one till for the review app: writes a real event log through the store's own code (EventLog,
PosStore, ReviewStore: the same SQL as a till), then times every page with the test client and prints
JSON with p50/p95 per page.

    python benchmarks/review_year.py --db /tmp/year.db             # about 500,000 customers, 20,000
    python benchmarks/review_year.py --db /tmp/year.db --reuse     # restricted sales, 2,000 flags
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.challenge.events import IdChecked, ItemScanned, TransactionEnd, TransactionStart
from edge.config import parse_config
from edge.review.auth import hash_password
from edge.store.eventlog import CustomerRecord, EventLog
from edge.store.pos_records import AlertRow, PosStore, TransactionRow
from edge.store.review_records import OUTCOMES, ReviewStore, record_heartbeat
from edge.vision.age_groups import AgeGroups
from edge.vision.customer import AgeEstimate

ZONE = ZoneInfo("Europe/London")
TILL = "till-1"
CASHIERS = {"ana": 0.95, "ben": 0.9, "cho": 0.8, "dev": 0.6, "eli": 0.97, "fay": 0.85, "gus": 0.5, "hal": 0.92}
OPEN_HOUR, CLOSE_HOUR = 8, 22  # the store is shut at night: those hours stay empty
HOUR_WEIGHT = [1, 1, 1.3, 1.8, 2.4, 2.0, 1.5, 1.3, 1.5, 2.2, 2.6, 2.0, 1.2, 0.8]  # 08:00 .. 21:00
GROUPS = AgeGroups([18, 25, 35, 45, 55, 65])
PASSWORD = "benchmark-password"


@dataclass(frozen=True)
class Scale:
    customers: int
    restricted: int
    flags: int
    days: int = 365
    sale_share: float = 0.7  # customers who buy something


def generate(path: Path, scale: Scale, seed: int) -> dict[str, int]:
    """Write the year, one run per day, the last one still running, into a new event log at `path`."""
    rng = random.Random(seed)
    log = EventLog(path)
    last_day = datetime.now(ZONE).date() - timedelta(days=1)
    per_day = scale.customers / scale.days
    restricted_share = scale.restricted / (scale.customers * scale.sale_share)
    flag_share = scale.flags / scale.restricted
    required_share = min(1.0, flag_share / (1 - statistics.mean(CASHIERS.values())))
    counts = {"customers": 0, "transactions": 0, "restricted": 0, "flags": 0, "alerts": 0, "pos_events": 0}
    for offset in range(scale.days):
        day = last_day - timedelta(days=scale.days - 1 - offset)
        live = offset == scale.days - 1
        customers = round(rng.gauss(per_day, per_day * 0.1))
        _write_day(log, rng, day, customers, (scale.sale_share, restricted_share, required_share), live, counts)
    counts["reviews"] = _review(log, rng)
    log.close()
    return counts


def _write_day(
    log: EventLog, rng: random.Random, day: date, customers: int, shares: tuple[float, float, float], live: bool,
    counts: dict[str, int],
) -> None:  # fmt: skip
    sale_share, restricted_share, required_share = shares
    opening = datetime(day.year, day.month, day.day, OPEN_HOUR, tzinfo=ZONE).timestamp()
    run_id = log.start_run(
        mode="live", source="/dev/video0", model_path="models/agecam-mobilenetv2-int8.onnx", model_sha256="0" * 64,
        provider="CPUExecutionProvider", version="bench", config_json="{}", started=opening - 300,
    )  # fmt: skip
    pos = PosStore(log, run_id, opening)
    arrivals = sorted(_arrival(rng) for _ in range(customers))
    records, rows = [], []
    for track, t in enumerate(arrivals, start=1):
        age = max(14.0, min(85.0, rng.gauss(40, 15)))
        estimate = AgeEstimate(age, age - 4, age + 4, rng.randint(3, 25))
        records.append(CustomerRecord(track, opening + t, opening + t + 40, estimate, GROUPS.label(age), True, True))
        if rng.random() < sale_share:
            rows += _sale(pos, rng, len(rows) + 1, track, t, estimate, restricted_share, required_share, counts)
    for start in range(0, len(records), 2000):
        log.save_customers(run_id, records[start : start + 2000])
    for start in range(0, len(rows), 2000):
        pos.save(rows[start : start + 2000])
    counts["customers"] += len(records)
    frames = (CLOSE_HOUR - OPEN_HOUR) * 3600 * 10
    if live:
        record_heartbeat(log, run_id, {"frames": frames, "dropped": 12, "fps": 9.8, "source": "ok"})
    else:
        ended = opening + (CLOSE_HOUR - OPEN_HOUR) * 3600 + 300
        log.update_run(
            run_id, frames=frames, dropped=rng.randint(0, 500), faces=frames // 3, status="stopped", ended=ended
        )


def _arrival(rng: random.Random) -> float:
    hour = rng.choices(range(len(HOUR_WEIGHT)), HOUR_WEIGHT)[0]
    return hour * 3600 + rng.random() * 3540


def _sale(
    pos: PosStore, rng: random.Random, number: int, track: int, t: float, estimate: AgeEstimate,
    restricted_share: float, required_share: float, counts: dict[str, int],
) -> list[tuple[TransactionRow, AlertRow | None]]:  # fmt: skip
    """One transaction's POS events (each committed, as live) and its rows: a restricted sale may need an
    ID check (an alert), and may end in a flag."""
    cashier = rng.choice(list(CASHIERS))
    ids = {"till_id": TILL, "cashier_id": cashier, "transaction_id": f"T{int(t)}-{number}"}
    restricted = rng.random() < restricted_share
    events = [TransactionStart(type="transaction_start", **ids)]
    events += [ItemScanned(type="item_scanned", category="bakery", **ids) for _ in range(rng.randint(1, 3))]
    # A check is needed for some restricted sales; each cashier does it as diligently as CASHIERS says,
    # and a needed check not done is a flag.
    required = restricted and rng.random() < required_share
    checked = "passed" if required and rng.random() < CASHIERS[cashier] else None
    flagged = required and checked is None
    if restricted:
        events.append(ItemScanned(type="item_scanned", category="wine", **ids))
    if checked:
        events.append(IdChecked(type="id_checked", result=checked, **ids))
    events.append(TransactionEnd(type="transaction_end", **ids))
    for index, event in enumerate(events):
        pos.record_event(event, t + 5 + index * 6, received=pos.origin + t + 5 + index * 6)
    ended = t + 5 + len(events) * 6
    association = {"track_id": track, "share": 0.9, "window": [t, t + 3], "presence": {str(track): 0.09, "0": 0.01}}
    txn = TransactionRow(
        pos.run_id, number, TILL, t + 5, ids["transaction_id"], cashier, ended, "completed", int(restricted),
        checked, required, track, estimate, association,
    )  # fmt: skip
    counts["transactions"] += 1
    counts["restricted"] += restricted
    counts["pos_events"] += len(events)
    rows: list[tuple[TransactionRow, AlertRow | None]] = [(txn, None)]
    if required:
        rows.append((txn, _alert("alert", "id_check_required", "info", t + 12, txn)))
        counts["alerts"] += 1
    if flagged:
        kind = rng.choices(["sold_without_id_check", "no_face", "sold_after_failed_id_check"], [7, 2, 1])[0]
        rows.append((txn, _alert("flag", kind, "high" if estimate.age < 18 else "medium", ended, txn)))
        counts["flags"] += 1
    return rows


def _alert(kind: str, type_: str, severity: str, t: float, txn: TransactionRow) -> AlertRow:
    return AlertRow(
        kind, type_, severity, t, 0.1 if kind == "alert" else None, TILL, txn.cashier_id, txn.track_id, txn.estimate,
        txn.association,
    )  # fmt: skip


def _review(log: EventLog, rng: random.Random) -> int:
    """About 60% of flags get an outcome from one of three reviewers (each one audit row)."""
    store = ReviewStore(log)
    flag_ids = [row[0] for row in log.db.execute("SELECT id FROM alerts WHERE kind = 'flag'")]
    reviewed = rng.sample(flag_ids, int(len(flag_ids) * 0.6))
    for flag_id in reviewed:
        store.set_outcome(flag_id, rng.choice(["rita", "sam", "tom"]), rng.choice(OUTCOMES), "bench")
    return len(reviewed)


def _client(path: Path) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from edge.review.app import create_app

    account = {"role": "reviewer", "password_hash": hash_password(PASSWORD)}
    config = parse_config({"review": {"timezone": str(ZONE), "accounts": {"rita": account}}}, "benchmark", path.parent)
    client = TestClient(create_app(config, path), base_url="http://127.0.0.1")
    client.__enter__()
    token = client.get("/login").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"name": "rita", "password": PASSWORD, "csrf": token, "next": "/"})
    return client


def pages(path: Path) -> dict[str, str]:
    """The pages to time: default periods (the last 7 days) and the whole year."""
    import sqlite3

    with sqlite3.connect(path) as db:
        first, last = db.execute("SELECT min(started_at), max(started_at) FROM runs").fetchone()
        flag = db.execute("SELECT id FROM alerts WHERE kind = 'flag' ORDER BY id LIMIT 1 OFFSET ?", (0,)).fetchone()
        middle = db.execute("SELECT id FROM alerts WHERE kind = 'flag' ORDER BY at DESC LIMIT 1").fetchone() or flag
    year = f"from={first[:10]}&to={last[:10]}"
    return {
        "overview (7 days)": "/",
        "overview (year)": f"/?{year}",
        "flags (7 days)": "/flags",
        "flags (year, page 1)": f"/flags?{year}",
        "flags (year, open, one cashier)": f"/flags?{year}&status=open&cashier=gus",
        "flags CSV (year)": f"/flags?{year}&format=csv",
        "flag detail": f"/flags/{middle[0]}",
        "compliance (year)": f"/compliance?{year}",
        "transactions (year, cashier, needed a check)": f"/transactions?{year}&cashier=gus&required=1",
        "transactions (year, cashier, all, page 1)": f"/transactions?{year}&cashier=gus",
        "tills": "/tills",
        "audit (year)": f"/audit?{year}",
    }


def time_pages(path: Path, rounds: int) -> dict[str, dict[str, float]]:
    client = _client(path)
    results = {}
    for name, url in pages(path).items():
        response = client.get(url)  # warm: templates compiled, pages cached by SQLite
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        wall, cpu = [], []
        for _ in range(rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            if client.get(url).status_code != 200:
                raise SystemExit(f"{name}: {url} failed while timing")
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        # Wall time is what a reviewer waits; CPU time (all threads) shows how much of it was this process
        # rather than other work on a shared machine.
        results[name] = {"url": url, **_percentiles(wall, "ms"), **_percentiles(cpu, "cpu_ms")}
    client.__exit__(None, None, None)
    return results


def _percentiles(values: list[float], unit: str) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {f"p50_{unit}": round(statistics.median(ordered), 1), f"p95_{unit}": round(p95, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the event log to write (and then read)")
    parser.add_argument("--reuse", action="store_true", help="time an existing --db instead of writing it")
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--restricted", type=int, default=20_000)
    parser.add_argument("--flags", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=365, help="days of data, ending yesterday")
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report: dict[str, object] = {"db": str(args.db)}
    if not args.reuse:
        if args.db.exists():
            raise SystemExit(f"{args.db} exists: remove it or pass --reuse")
        started = time.perf_counter()
        report["written"] = generate(args.db, Scale(args.customers, args.restricted, args.flags, args.days), args.seed)
        report["write_s"] = round(time.perf_counter() - started, 1)
    report["db_mib"] = round(args.db.stat().st_size / 2**20, 1)
    report["rounds"] = args.rounds
    report["load_average"] = [round(value, 1) for value in os.getloadavg()]
    report["pages"] = time_pages(args.db, args.rounds)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
