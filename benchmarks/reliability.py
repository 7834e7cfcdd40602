"""Reliability checks of `agecam run` as a real process, printing JSON (issue 6's figures).

    python benchmarks/reliability.py kill9 --kills 50     kill -9 during heavy logging; no acknowledged event lost
    python benchmarks/reliability.py fuzz --cases 2000    malformed POS requests from parallel loopback clients
    python benchmarks/reliability.py recover              time to resume after an HTTP video stream drops out
    python benchmarks/reliability.py soak --minutes 30    RSS and database size over a long looping replay
    python benchmarks/reliability.py slowclients --connections 1500 --seconds 60
                                                          slow-header connections; legitimate posts and fps meanwhile
    python benchmarks/reliability.py restart --rounds 10  kill -9 mid-sale, restart, end the sale: is it flagged?

Needs AGECAM_ASSETS (clips, YuNet) and an age model: --model, else the config default.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from slow_clients import attack

ROOT = Path(__file__).resolve().parents[1]
CLIP = "videos/face-demographics-walking-and-pause.gif"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: bytes, timeout: float = 5) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read()).get("id", -1) if response.status == 202 else -response.status
    except urllib.error.HTTPError as error:
        return -error.code


class Service:
    """`agecam run` on a looping clip with the POS endpoint, in a folder of its own."""

    def __init__(self, folder: Path, model: Path | None, source: str | None = None, log: bool = False) -> None:
        self.port = free_port()
        self.db = folder / "state" / "agecam.db"
        self.log = folder / "agecam.log" if log else None  # INFO, with a status line (fps) every 10 s
        assets = Path(os.environ.get("AGECAM_ASSETS", Path.home() / ".cache" / "agecam"))
        config = {
            "source": {
                "uri": source or str(assets / CLIP),
                "loop": source is None,
                "reconnect_initial_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "state": {"dir": str(folder / "state")},
            "pos": {"enabled": True, "port": self.port},
            "logging": {"level": "INFO" if log else "WARNING"},
        }
        if model:
            config["age_model"] = {"path": str(model.resolve())}
        self.config = folder / "config.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60, nofile: int | None = None) -> None:
        """`nofile`: the process's descriptor limit (systemd's default soft limit is 1024)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "--config", str(self.config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w") if self.log else subprocess.DEVNULL,
            preexec_fn=limit,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"agecam run exited with {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError("agecam run did not start in time")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def rss_kb(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def sales(till: str, start: int) -> list[bytes]:
    """One sale of a restricted item: start, scan, ID check, end (4 events)."""
    txn = {"till_id": till, "cashier_id": "c1", "transaction_id": f"{till}-{start}"}
    events = [
        {"type": "transaction_start"},
        {"type": "item_scanned", "category": "wine"},
        {"type": "id_checked", "result": "passed"},
        {"type": "transaction_end"},
    ]
    return [json.dumps({**event, **txn}).encode() for event in events]


def poster(port: int, acknowledged: list[int], stop: threading.Event, pause_s: float = 0.0) -> None:
    number = 0
    while not stop.is_set():
        for body in sales("till-1", number):
            # The service is killed mid-request on purpose: a broken reply is simply not an acknowledgement.
            with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
                if (reply := post(port, body, timeout=2)) > 0:
                    acknowledged.append(reply)
        number += 1
        stop.wait(pause_s)


def check_database(db: Path, acknowledged: list[int]) -> dict:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        stored = {row[0] for row in connection.execute("SELECT id FROM pos_events")}
        customers = connection.execute("SELECT count(*) FROM customers").fetchone()[0]
    return {"integrity": integrity, "lost": len(set(acknowledged) - stored), "customers": customers}


def kill9(model: Path | None, kills: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    totals = {"kills": 0, "acknowledged": 0, "lost": 0, "integrity_failures": 0}
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Path(folder), model)
        for _ in range(kills):
            service.start()
            acknowledged: list[int] = []
            stop = threading.Event()
            client = threading.Thread(target=poster, args=(service.port, acknowledged, stop))
            client.start()
            time.sleep(rng.uniform(0.3, 1.5))
            service.stop(signal.SIGKILL)
            stop.set()
            client.join()
            result = check_database(service.db, acknowledged)
            totals["kills"] += 1
            totals["acknowledged"] += len(acknowledged)
            totals["lost"] += result["lost"]
            totals["integrity_failures"] += result["integrity"] != "ok"
        totals["customers_logged"] = result["customers"]
    return totals


FUZZ_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe\x00garbage",
    b'{"type": 5}',
    b'{"type": "refund", "till_id": "t"}',
    b'{"type": "item_scanned"}',
    b'{"type": "item_scanned", "till_id": []}',
    b'{"type": "item_scanned", "till_id": "t", "age_restricted": "yes"}',
    b'{"type": "id_checked", "till_id": "t", "result": "perhaps"}',
    b'{"type": "transaction_end", "till_id": {"a": 1}}',
    b'{"type": "item_scanned", "till_id": "t", "ts": "yesterday"}',
    b'{"type": "transaction_start", "till_id": "t", "surprise": 1}',
    b'{"type": "item_scanned", "till_id": "' + b"x" * 70000 + b'"}',
    b"{" * 5000,
]


def fuzz_once(port: int, rng: random.Random) -> int:
    body = rng.choice(FUZZ_BODIES)
    if rng.random() < 0.3:  # random bytes flipped into a good event
        good = bytearray(sales("till-f", 0)[1])
        for _ in range(rng.randint(1, 6)):
            good[rng.randrange(len(good))] = rng.randrange(256)
        body = bytes(good)
    reply = post(port, body)
    return 202 if reply > 0 else -reply


def fuzz(model: Path | None, cases: int, threads: int = 8, seed: int = 0) -> dict:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Path(folder), model)
        service.start()

        def worker(index: int) -> None:
            rng = random.Random(seed * 100 + index)
            for _ in range(cases // threads):
                status = fuzz_once(service.port, rng)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

        workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        alive = service.process.poll() is None
        good = post(service.port, sales("till-ok", 0)[0])
        code = service.stop()
        result = check_database(service.db, [good] if good > 0 else [])
    tried = sum(statuses.values())
    rejected_4xx = sum(count for status, count in statuses.items() if 400 <= status < 500)
    return {
        "cases": tried,
        "rejected_4xx": rejected_4xx,
        "accepted": statuses.get(202, 0),
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "alive_after": alive,
        "good_event_after": good > 0,
        "exit_code": code,
        "integrity": result["integrity"],
    }


@contextlib.contextmanager
def http_video_server(folder: Path, port: int):
    """A plain HTTP server for the clips: a network camera that can be unplugged and plugged back."""
    import functools
    import http.server

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def recover(outages: list[float]) -> dict:
    """Capture-level recovery with the default backoff: seconds from the stream's return until it is live again."""
    sys.path.insert(0, str(ROOT))
    from edge.config import SourceConfig
    from edge.vision.source import FrameGrabber, SourceSpec

    assets = Path(os.environ.get("AGECAM_ASSETS", Path.home() / ".cache" / "agecam"))
    port, results = free_port(), []
    for outage in outages:
        with http_video_server(assets / "videos", port):
            url = f"http://127.0.0.1:{port}/{Path(CLIP).name}"
            grabber = FrameGrabber(SourceSpec("stream", url), SourceConfig(queue_size=256))
            grabber.start()
            while grabber.state == "live":  # it reads the clip, then loses it when the server goes
                time.sleep(0.01)
        time.sleep(outage)
        state_during, retries = grabber.state, grabber.reconnects
        with http_video_server(assets / "videos", port):
            back = time.monotonic()
            while grabber.state != "live" and time.monotonic() - back < 60:
                time.sleep(0.01)
            recovered = round(time.monotonic() - back, 2)
        grabber.close()
        results.append(
            {
                "outage_s": outage,
                "state_during": state_during,
                "retries_during": retries,
                "recovered_after_s": recovered,
            }
        )
    return {"backoff": "0.5 s doubling to 10 s (defaults)", "outages": results}


def soak(model: Path | None, minutes: float, sample_every_s: float = 30.0) -> dict:
    samples = []
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Path(folder), model)
        service.start()
        acknowledged: list[int] = []
        stop = threading.Event()
        client = threading.Thread(target=poster, args=(service.port, acknowledged, stop, 5.0))
        client.start()
        start = time.monotonic()
        while time.monotonic() - start < minutes * 60:
            time.sleep(sample_every_s)
            size = sum(path.stat().st_size for path in service.db.parent.glob("agecam.db*"))
            with contextlib.closing(sqlite3.connect(service.db)) as connection:
                customers = connection.execute("SELECT count(*) FROM customers").fetchone()[0]
            samples.append(
                {
                    "minute": round((time.monotonic() - start) / 60, 2),
                    "rss_kb": service.rss_kb(),
                    "db_bytes": size,
                    "customers": customers,
                    "pos_events": len(acknowledged),
                }
            )
        stop.set()
        client.join()
        code = service.stop()
        result = check_database(service.db, acknowledged)
    first, last = samples[0], samples[-1]
    return {
        "minutes": minutes,
        "rss_kb_start": first["rss_kb"],
        "rss_kb_end": last["rss_kb"],
        "rss_drift_kb": last["rss_kb"] - first["rss_kb"],
        "db_bytes_start": first["db_bytes"],
        "db_bytes_end": last["db_bytes"],
        "customers_end": result["customers"],
        "exit_code": code,
        "lost_events": result["lost"],
        "integrity": result["integrity"],
        "samples": samples,
    }


def status_fps(log: Path) -> list[tuple[float, float]]:
    """(Unix time, fps over the 10 s before it) from the run's status lines."""
    samples = []
    for line in log.read_text().splitlines():
        if " status: " in line and " fps," in line:
            when = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            samples.append((when, float(line.split(" status: ")[1].split(" fps")[0])))
    return samples


def fps_between(samples: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [fps for when, fps in samples if when - 10 >= start and when <= end]


def slowclients(
    model: Path | None, connections: int, seconds: float, baseline_s: float = 30, nofile: int = 1024
) -> dict:
    """A quiet phase, then `connections` slow-header connections for `seconds`; a POS posts throughout."""
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Path(folder), model, log=True)
        service.start(nofile=nofile)
        pid = service.process.pid
        start = time.time()
        quiet = attack(service.port, pid, 0, baseline_s)
        middle = time.time()
        during = attack(service.port, pid, connections, seconds)
        end = time.time()
        time.sleep(2)
        after = post(service.port, sales("till-after", 0)[0])
        alive = service.process.poll() is None
        code = service.stop()
        samples = status_fps(service.log)
        with contextlib.closing(sqlite3.connect(service.db)) as connection:
            rows = connection.execute("SELECT http_status, count(*), sum(count) FROM pos_rejects GROUP BY 1").fetchall()
        log_lines = len(service.log.read_text().splitlines())
    return {
        "descriptor_limit": nofile,
        "attack_s": seconds,
        "before": {**quiet, "fps": fps_between(samples, start, middle)},
        "during": {**during, "fps": fps_between(samples, middle, end)},
        "alive_after": alive,
        "good_event_after": after > 0,
        "exit_code": code,
        "pos_rejects": {str(status): {"rows": n, "requests": total} for status, n, total in rows},
        "log_lines": log_lines,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["kill9", "fuzz", "recover", "soak", "slowclients", "restart"])
    parser.add_argument("--model", type=Path, help="age model (default: the config's)")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--outages", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--connections", type=int, default=1500, help="slowclients: connections held open")
    parser.add_argument("--seconds", type=float, default=60, help="slowclients: length of the attack")
    parser.add_argument("--rounds", type=int, default=10, help="restart: kill -9 mid-sale this many times")
    args = parser.parse_args()
    if args.check == "kill9":
        report = kill9(args.model, args.kills)
    elif args.check == "fuzz":
        report = fuzz(args.model, args.cases)
    elif args.check == "slowclients":
        report = slowclients(args.model, args.connections, args.seconds)
    elif args.check == "recover":
        report = recover(args.outages)
    elif args.check == "restart":
        report = restart(args.model, args.rounds)
    else:
        report = soak(args.model, args.minutes)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
