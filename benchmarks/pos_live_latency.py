"""Wall-clock alert latency of the live POS path, end to end.

Starts `agecam run --source SCENARIO/till.mp4` (a file source is paced like a camera) with the POS
endpoint on and a webhook pointing here, POSTs SCENARIO/pos.jsonl in real time, and reports the time
from each restricted scan's POST to the webhook receiving its `id_check_required` alert.

    python benchmarks/pos_live_latency.py SCENARIO --config CONFIG.yaml [--port 8799]

CONFIG's pos and alerts sections are overridden; everything else (model, policy, state dir) is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def webhook(received: dict[str, float]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if message["type"] == "id_check_required":
                received.setdefault(message["transaction_id"], time.perf_counter())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def post(port: int, event: dict) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=json.dumps(event).encode())
    urllib.request.urlopen(request, timeout=10).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    received: dict[str, float] = {}
    hook = webhook(received)
    config = yaml.safe_load(args.config.read_text()) or {}
    config["pos"] = {"enabled": True, "port": args.port}
    config["alerts"] = {"webhook": f"http://127.0.0.1:{hook.server_address[1]}/hook"}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        yaml.safe_dump(config, file)
    command = [sys.executable, "-m", "edge.cli", "--config", file.name, "--log-level", "ERROR", "run"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([*command, "--source", str(args.scenario / "till.mp4")], env=env)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    start = time.perf_counter()
    scans: dict[str, float] = {}
    restricted = {"beer", "wine", "spirits"}
    for line in (args.scenario / "pos.jsonl").read_text().splitlines():
        event = json.loads(line)
        time.sleep(max(0.0, start + event.pop("t") - time.perf_counter()))
        if event.get("category") in restricted:
            scans[event["transaction_id"]] = time.perf_counter()
        post(args.port, event)
    process.wait()
    latencies = sorted(received[txn] - scans[txn] for txn in received if txn in scans)
    print(json.dumps({
        "restricted_scans": len(scans),
        "alerts": len(latencies),
        "latency_s": {
            "median": round(statistics.median(latencies), 3),
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            "max": round(latencies[-1], 3),
        } if latencies else None,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
