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
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from restart_midsale import restart
from service_process import CLIP, ROOT, Service, check_database, free_port, post, poster, sales
from slow_clients import slowclients


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
