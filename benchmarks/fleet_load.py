"""Load test of the chain's centre: N simulated tills publish at a realistic rate into one mosquitto, and
one or two `agecam collect` processes write into one PostgreSQL, all on this machine's loopback.

Each till sends a customer every 20 s (the final customer and its hour's statistics), a POS burst for
70% of them (the transaction opened, then completed; an alert for 10%, a flag for 5%), and a heartbeat
every 60 s: 0.175 records and 0.017 heartbeats a second. The tills are logical: G generator processes publish for them
over a few connections each (the centre's work does not depend on how they are spread over sockets).
The offered load grows step by step; each step reports what reached PostgreSQL per second, the latency
from the till's outbox to the commit (p50, p99), and the CPU of the collectors, mosquitto and PostgreSQL.
Bounded: every step lasts --step-seconds, and all traffic stays on 127.0.0.1.

    python benchmarks/fleet_load.py --tills 4000,8000,12000,16000 --collectors 1 --step-seconds 15
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from fleet_servers import Mosquitto, Postgres
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
USERS = {"till": "till-secret", "collector": "collector-secret"}
CUSTOMER_EVERY_S, HEARTBEAT_S = 20.0, 60.0
CONNECTIONS = 8  # per generator process


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Till:
    def __init__(self, index: int) -> None:
        self.store, self.till = f"s{index // 8}", f"t{index % 8}"
        self.key, self.seq, self.customers = os.urandom(8).hex(), 0, 0

    def message(self, kind: str, data: dict, now: float) -> tuple[str, str]:
        self.seq += 1
        envelope = {"v": 1, "id": f"{self.key}:{self.seq}", "store_id": self.store, "till_id": self.till}
        envelope.update(seq=self.seq, kind=kind, at=_iso(now), data=data)
        return f"agecam/{self.store}/{self.till}/{kind}", json.dumps(envelope)

    def customer(self, now: float, rng: random.Random) -> list[tuple[str, str]]:
        n, self.customers = self.customers, self.customers + 1
        at = _iso(now)
        estimate = {"age": 33.0, "age_low": 28.0, "age_high": 39.0, "samples": 8}
        messages = [
            self.message("customer", {"run_id": 1, "track_id": n, "first_seen": at, "last_seen": at, **estimate,
                                      "age_group": "25-34", "counted": True}, now),
            self.message("hourly", {"run_id": 1, "hour": at[:13] + ":00Z", "age_group": "25-34",
                                    "customers": n + 1, "age_sum": 33.0 * (n + 1)}, now),
        ]  # fmt: skip
        if rng.random() < 0.7:
            messages += self._sale(n, at, estimate, now, rng)
        return messages

    def _sale(self, n: int, at: str, estimate: dict, now: float, rng: random.Random) -> list[tuple[str, str]]:
        txn = {"run_id": 1, "number": n, "pos_transaction_id": f"T{n}", "pos_till_id": "p", "cashier_id": "c1",
               "started_at": at, "restricted_items": 1, "id_check": None, "check_required": False, "track_id": n,
               **estimate}  # fmt: skip
        messages = [
            self.message("transaction", {**txn, "ended_at": None, "status": "open"}, now),
            self.message("transaction", {**txn, "ended_at": at, "status": "completed"}, now),
        ]
        for kind, chance in (("alert", 0.10), ("flag", 0.05)):
            if rng.random() < chance:
                alert = {"run_id": 1, "alert_id": self.seq, "transaction_number": n, "kind": kind, "type": "x",
                         "severity": "info", "at": at, "t": 1.0, "latency_s": 0.3, "pos_till_id": "p",
                         "cashier_id": "c1", "track_id": n, **estimate, "association": None,
                         "has_evidence": False}  # fmt: skip
                messages.append(self.message("alert", alert, now))
        return messages

    def heartbeat(self, now: float) -> tuple[str, str]:
        body = {"v": 1, "store_id": self.store, "till_id": self.till, "at": now, "outbox": 0,
                "oldest_unshipped_s": 0.0, "status": {"fps": 10.0}}  # fmt: skip
        return f"agecam/{self.store}/{self.till}/heartbeat", json.dumps(body)


def generate(port: int, first: int, count: int, seconds: float, seed: int) -> None:
    """One generator process: tills [first, first + count) for `seconds`, then print what it sent."""
    clients = []
    for index in range(CONNECTIONS):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gen-{first}-{index}", protocol=mqtt.MQTTv5)
        client.username_pw_set("till", USERS["till"])
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append(client)
    rng, start = random.Random(seed), time.time()
    tills = [Till(first + i) for i in range(count)]
    # Poisson arrivals from the start (a uniform first arrival would offer about a third more at first).
    queue = [(start + rng.expovariate(1 / CUSTOMER_EVERY_S), i, "customer") for i in range(count)]
    queue += [(start + rng.uniform(0, HEARTBEAT_S), i, "heartbeat") for i in range(count)]
    heapq.heapify(queue)
    sent, last = 0, [None] * CONNECTIONS
    while queue and queue[0][0] < start + seconds:
        due, index, what = heapq.heappop(queue)
        time.sleep(max(0.0, due - time.time()))
        now, till = time.time(), tills[index]
        if what == "customer":
            messages = till.customer(now, rng)
            heapq.heappush(queue, (due + rng.expovariate(1 / CUSTOMER_EVERY_S), index, what))
        else:
            messages = [till.heartbeat(now)]
            heapq.heappush(queue, (due + HEARTBEAT_S, index, what))
        for topic, payload in messages:
            last[index % CONNECTIONS] = clients[index % CONNECTIONS].publish(topic, payload, qos=1)
        sent += len(messages) if what == "customer" else 0  # heartbeats update a till, they store no record
    for info in last:  # a connection sends in order: its last PUBACK means all of it reached the broker
        if info is not None:
            info.wait_for_publish(timeout=60)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    print(json.dumps({"records": sent, "late_s": round(max(0.0, time.time() - start - seconds), 2)}))


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_pids(pg: Postgres) -> list[int]:
    master = int((pg.folder / "data" / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return [master, *children]


def step(broker: Mosquitto, pg: Postgres, url: str, collectors: list, tills: int, seconds: float, generators: int):
    pids = {"collectors": [c.pid for c in collectors], "mosquitto": [broker.process.pid], "postgres": postgres_pids(pg)}
    before = {name: cpu_seconds(group) for name, group in pids.items()}
    with psycopg.connect(url, autocommit=True) as db:
        rows_before = db.execute("SELECT count(*) FROM agecam.inbox").fetchone()[0]
        writes_before = _table_writes(db)
        started = time.time()
        per = tills // generators
        command = [sys.executable, __file__, "_generate", str(broker.port), "--seconds", str(seconds)]
        procs = [
            subprocess.Popen(
                [*command, "--first", str(g * per), "--count", str(per)], stdout=subprocess.PIPE, text=True
            )
            for g in range(generators)
        ]
        reports = [json.loads(p.communicate(timeout=seconds + 60)[0]) for p in procs]
        sent = sum(r["records"] for r in reports)
        deadline = time.time() + 30  # let the collectors catch up, to tell lag from loss
        while db.execute("SELECT count(*) FROM agecam.inbox").fetchone()[0] - rows_before < sent:
            if time.time() > deadline:
                break
            time.sleep(0.2)
        drained = time.time()
        time.sleep(1.0)  # PostgreSQL's statistics reach pg_stat after a moment
        table_writes = _table_writes(db) - writes_before
        window = db.execute(
            "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM lag)),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM lag)),"
            " max(received_at) FROM (SELECT received_at, received_at - created_at AS lag FROM agecam.inbox) i"
            " WHERE received_at >= to_timestamp(%s)",
            (started,),
        ).fetchone()
    received, p50, p99, last = window
    busy = (last.timestamp() if last else drained) - started
    used = {name: cpu_seconds(group) - before[name] for name, group in pids.items()}
    return {
        "tills": tills,
        "offered_records_per_s": round(sent / seconds, 1),
        "stored_records_per_s": round(received / busy, 1),
        "postgres_rows_per_s": round(table_writes / busy, 1),
        "backlog_30s_after": sent - received,  # still queued at the broker 30 s after the step (none is lost)
        "latency_p50_ms": round(1000 * (p50 or 0), 1),
        "latency_p99_ms": round(1000 * (p99 or 0), 1),
        "cpu_cores": {name: round(value / busy, 2) for name, value in used.items()},
        "cpu_us_per_record": {name: round(1e6 * value / max(received, 1)) for name, value in used.items()},
        "generator_late_s": max(r["late_s"] for r in reports),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def _table_writes(db: psycopg.Connection) -> int:
    """Rows inserted or updated in the chain's tables so far."""
    sql = "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE schemaname = 'agecam'"
    return int(db.execute(sql).fetchone()[0])


def start_collectors(broker: Mosquitto, url: str, count: int, folder: Path) -> list[subprocess.Popen]:
    password = folder / "collector.password"
    password.write_text(USERS["collector"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    collectors = []
    for index in range(count):
        command = [sys.executable, "-m", "edge.cli", "--log-level", "WARNING", "collect", "--broker", broker.url]
        command += ["--db", url, "--username", "collector", "--password-file", str(password)]
        collectors.append(subprocess.Popen([*command, "--client-id", f"collector-{index}"], env=env))
    return collectors


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_generate":
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("port", type=int)
        parser.add_argument("--first", type=int, required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--seconds", type=float, required=True)
        args = parser.parse_args()
        generate(args.port, args.first, args.count, args.seconds, seed=args.first)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tills", default="4000,8000,12000,16000", help="offered load steps, in tills")
    parser.add_argument("--collectors", type=int, default=1)
    parser.add_argument("--generators", type=int, default=2, help="processes that publish for the tills")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--fsync", action=argparse.BooleanOptionalAction, default=True, help="PostgreSQL's fsync")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="agecam-load-"))
    broker = Mosquitto(folder / "mosquitto", USERS).start()
    pg = Postgres(fsync=args.fsync).start()
    url = pg.create_database("chain")
    collectors = start_collectors(broker, url, args.collectors, folder)
    try:
        time.sleep(3)  # the collectors migrate the schema and subscribe
        steps = [int(text) for text in args.tills.split(",")]
        results = [step(broker, pg, url, collectors, n, args.step_seconds, args.generators) for n in steps]
    finally:
        for collector in collectors:
            collector.terminate()
            collector.wait(timeout=15)
        broker.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"collectors": args.collectors, "fsync": args.fsync, "steps": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
