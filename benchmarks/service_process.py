"""`agecam run` as a real process for the reliability checks: a service in a folder of its own, a POS client
posting sales to it, and the database check after it stops."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

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
