"""A simulated till for the fleet tests and benchmark: the real event log (SQLite, with its outbox) and the
real publisher, fed with customers and POS sales instead of a camera. Also: compare one till's event log
with the chain database, record by record.

As a program it is one till process (so a test can kill it with -9):
    python benchmarks/fleet_till.py CONFIG.yaml DB --customers N [--every S] [--run-id-file F]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.config import load_config  # noqa: E402
from edge.fleet.publisher import Publisher  # noqa: E402
from edge.store.eventlog import CustomerRecord, EventLog  # noqa: E402
from edge.store.pos_records import AlertRow, PosStore, TransactionRow  # noqa: E402
from edge.vision.customer import AgeEstimate  # noqa: E402


def write_config(path: Path, broker: str, store: str, till: str, password_file: Path, **fleet: object) -> Path:
    settings = {
        "enabled": True,
        "broker": broker,
        "store_id": store,
        "till_id": till,
        "username": "till",
        "password_file": str(password_file),
        **fleet,
    }
    path.write_text(yaml.safe_dump({"fleet": settings, "state": {"dir": str(path.parent / "state")}}))
    return path


class SimulatedTill:
    """Writes what a till writes, through the store layer, into an event log with the outbox on."""

    def __init__(self, db: Path, origin: float | None = None) -> None:
        self.log = EventLog(db, outbox=True)
        self.origin = time.time() if origin is None else origin
        self.run_id = self.log.start_run(
            mode="live",
            source="0",
            model_path="m.onnx",
            model_sha256="0" * 64,
            provider="CPUExecutionProvider",
            version="test",
            config_json="{}",
            started=self.origin,
        )
        self.pos = PosStore(self.log, self.run_id, self.origin)
        self.customers = 0

    def customer(self, sale: bool) -> None:
        """One customer ends (final record + hourly statistics); with `sale`, a POS burst for them."""
        n, t = self.customers, time.time() - self.origin
        self.customers += 1
        young = n % 3 == 0
        estimate = AgeEstimate(
            17.0 if young else 41.0, 14.0 if young else 36.0, 21.0 if young else 46.0, 6, 0.93 if young else 0.04
        )
        record = CustomerRecord(
            n, self.origin + t - 5, self.origin + t, estimate, "<18" if young else "35-44", True, True
        )
        self.log.save_customers(self.run_id, [record])
        if sale:
            self._sale(n, t, estimate, young)

    def _sale(self, n: int, t: float, estimate: AgeEstimate, young: bool) -> None:
        def txn(status: str, ended: float | None, required: bool) -> TransactionRow:
            return TransactionRow(
                self.run_id,
                n,
                "pos-1",
                t - 3,
                f"T{n}",
                f"cashier-{n % 4}",
                ended,
                status,
                1,
                None,
                required,
                n,
                estimate,
                None,
            )

        self.pos.save([(txn("open", None, False), None)])
        if young:
            alert = AlertRow(
                "alert", "id_check_required", "info", t - 2, 0.4, "pos-1", f"cashier-{n % 4}", n, estimate, None
            )
            self.pos.save([(txn("open", None, True), alert)])
            flag = AlertRow(
                "flag",
                "sold_without_id_check",
                "high",
                t,
                None,
                "pos-1",
                f"cashier-{n % 4}",
                n,
                estimate,
                {"track_id": n},
            )
            self.pos.save([(txn("completed", t, True), flag)])
        else:
            self.pos.save([(txn("completed", t, False), None)])

    def finish(self, status: str = "stopped") -> None:
        self.log.update_run(self.run_id, frames=100, dropped=0, faces=self.customers, status=status, ended=time.time())
        self.log.close()


def chain_rows(url: str, store: str, till: str) -> dict[str, set]:
    """One till's records in the chain database, as comparable sets."""
    with psycopg.connect(url) as db:
        key = (store, till)
        where = " WHERE store_id = %s AND till_id = %s"
        return {
            "messages": {r[0] for r in db.execute("SELECT msg_id FROM agecam.inbox" + where, key)},
            "inbox_rows": db.execute("SELECT count(*) FROM agecam.inbox" + where, key).fetchone()[0],
            "runs": set(db.execute("SELECT run_id, status FROM agecam.runs" + where, key)),
            "customers": set(db.execute("SELECT run_id, track_id FROM agecam.customers" + where, key)),
            "hourly": set(db.execute("SELECT run_id, age_group, customers FROM agecam.hourly_stats" + where, key)),
            "transactions": set(db.execute("SELECT run_id, number, status FROM agecam.transactions" + where, key)),
            "alerts": set(db.execute("SELECT alert_id, kind, type FROM agecam.alerts" + where, key)),
        }


def till_rows(db_path: Path) -> dict[str, set]:
    """The same sets from the till's own event log (its outbox holds every message it ever queued)."""
    db = sqlite3.connect(db_path)
    try:
        key = db.execute("SELECT key FROM outbox_key").fetchone()[0]
        ids = [r[0] for r in db.execute("SELECT id FROM outbox")]
        return {
            "messages": {f"{key}:{i}" for i in ids},
            "inbox_rows": len(ids),
            "runs": set(db.execute("SELECT id, status FROM runs")),
            "customers": set(db.execute("SELECT run_id, track_id FROM customers WHERE ended = 1")),
            "hourly": set(db.execute("SELECT run_id, age_group, customers FROM hourly_stats")),
            "transactions": set(db.execute("SELECT run_id, number, status FROM transactions")),
            "alerts": set(db.execute("SELECT id, kind, type FROM alerts")),
        }
    finally:
        db.close()


def wait_until_shipped(url: str, db_path: Path, store: str, till: str, timeout_s: float = 30) -> dict[str, set]:
    """Poll until the chain holds the till's every record (or time out), then return the chain's sets."""
    deadline = time.monotonic() + timeout_s
    expected = till_rows(db_path)
    while True:
        found = chain_rows(url, store, till)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("db")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--every", type=float, default=0.02, help="seconds between customers")
    args = parser.parse_args()
    publisher = Publisher(load_config(args.config))
    publisher.connect(timeout_s=2)
    till = SimulatedTill(Path(args.db))
    publisher.start(Path(args.db))
    print(json.dumps({"run_id": till.run_id}), flush=True)
    for n in range(args.customers):
        till.customer(sale=n % 2 == 0)
        time.sleep(args.every)
    till.finish()
    publisher.stop(flush_s=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
