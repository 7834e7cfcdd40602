"""`reliability.py restart`: kill -9 between a sale's restricted scan and its end, restart, end the sale;
the sale must come out completed and flagged."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import tempfile
import time
from pathlib import Path

import yaml
from service_process import Service, check_database, post


def sale_flag(db: Path, pos_id: str) -> tuple[str, str] | None:
    """The sale's status and its flag's type, once it has a flag."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        return connection.execute(
            "SELECT t.status, a.type FROM transactions t JOIN alerts a ON a.transaction_id = t.id"
            " WHERE t.pos_transaction_id = ? AND a.kind = 'flag'",
            (pos_id,),
        ).fetchone()


def unapplied(db: Path) -> int:
    """POS events of the last run that its policy never applied (the restart applies them)."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        return connection.execute(
            "SELECT (SELECT count(*) FROM pos_events e WHERE e.run_id = r.id) - coalesce(r.pos_applied, 0)"
            " FROM runs r ORDER BY r.id DESC LIMIT 1"
        ).fetchone()[0]


def restart_round(service: Service, index: int, pause_s: float, timeout_s: float) -> dict:
    """transaction_start and a restricted item_scanned, kill -9 after `pause_s`, restart, transaction_end."""
    txn = {"till_id": "till-r", "cashier_id": "c1", "transaction_id": f"R{index}"}
    sale = [{"type": "transaction_start", **txn}, {"type": "item_scanned", "category": "wine", **txn}]
    acknowledged = [post(service.port, json.dumps(event).encode()) > 0 for event in sale]
    time.sleep(pause_s)
    service.stop(signal.SIGKILL)
    left = unapplied(service.db)
    killed = time.monotonic()
    service.start()
    restart_s = time.monotonic() - killed
    acknowledged.append(post(service.port, json.dumps({"type": "transaction_end", **txn}).encode()) > 0)
    sent, found = time.monotonic(), None
    while found is None and time.monotonic() - sent < timeout_s:
        found = sale_flag(service.db, txn["transaction_id"])
        time.sleep(0.05)
    return {
        "acknowledged": all(acknowledged),
        "unapplied_at_kill": left,
        "restart_s": round(restart_s, 2),
        "flag_after_end_s": round(time.monotonic() - sent, 2) if found else None,
        "status": found[0] if found else None,
        "flag": found[1] if found else None,
    }


def restart(model: Path | None, rounds: int, seed: int = 0, timeout_s: float = 15.0) -> dict:
    """A sale cut by kill -9 between its restricted scan and its end must come out completed and flagged
    after the restart. Odd rounds kill at once, before the main loop applies the events; even ones after
    a random pause. Every restricted sale without an ID check is flagged here (threshold 100):
    sold_without_id_check with a face in the zone, no_face without one."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Path(folder), model)
        config = yaml.safe_load(service.config.read_text())
        service.config.write_text(yaml.safe_dump({**config, "policy": {"threshold": 100}}))
        service.start()
        results = [
            restart_round(service, index, 0.0 if index % 2 else rng.uniform(0.1, 1.0), timeout_s)
            for index in range(rounds)
        ]
        code = service.stop()
        integrity = check_database(service.db, [])["integrity"]
    flagged = [result for result in results if result["status"] == "completed" and result["flag"]]
    latencies = sorted(result["flag_after_end_s"] for result in flagged)
    return {
        "rounds": rounds,
        "flagged": len(flagged),
        "kills_with_unapplied_events": sum(result["unapplied_at_kill"] > 0 for result in results),
        "flag_types": {kind: sum(r["flag"] == kind for r in flagged) for kind in sorted({r["flag"] for r in flagged})},
        "restart_s_median": sorted(result["restart_s"] for result in results)[rounds // 2],
        "flag_after_end_s_max": latencies[-1] if latencies else None,
        "exit_code": code,
        "integrity": integrity,
        "rounds_detail": results,
    }
