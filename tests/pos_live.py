"""`agecam run` with the POS endpoint as a real process, for the restart and limit tests: start it on a
source with a config of the small till scenario, post events over loopback HTTP, wait for rows in its
real SQLite event log, and collect its log lines (stderr) without letting the pipe fill up. A faceless
clip for runs that should see nobody."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from pos_scenario import scenario_config

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveRun:
    """One `agecam run` process; its state folder (and event log) is `folder/state`."""

    def __init__(self, folder: Path, model: Path, source: str, loop: bool, **sections: dict) -> None:
        self.port = free_port()
        self.db = folder / "state" / "agecam.db"
        pos = {"enabled": True, "port": self.port, **sections.pop("pos", {})}
        self.config = scenario_config(folder, model, pos=pos, **sections)
        command = [sys.executable, "-m", "edge.cli", "--config", str(self.config), "run", "--source", source]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([*command, *(["--loop"] if loop else [])], env=env, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))

    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                return
            assert self.process.poll() is None and time.monotonic() < deadline, f"no endpoint:\n{self.log()}"
            time.sleep(0.1)

    def post(self, event: dict) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/events", data=json.dumps(event).encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def origin(self) -> float:
        """The Unix time of this run's source second 0 (its start)."""
        started = query(self.db, "SELECT started_at FROM runs ORDER BY id DESC LIMIT 1")[0][0]
        return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@contextlib.contextmanager
def live_run(folder: Path, model: Path, source: Path | str, loop: bool = False, **sections: dict) -> Iterator[LiveRun]:
    run = LiveRun(folder, model, str(source), loop, **sections)
    try:
        run.wait_ready()
        yield run
    finally:
        if run.process.poll() is None:
            run.process.kill()
        run.process.wait(timeout=30)


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as connection:
        return connection.execute(sql, params).fetchall()


def wait_for(db: Path, sql: str, *params: object, timeout: float = 20) -> list[tuple]:
    """Poll until the query returns rows; fail with what it last returned."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(sqlite3.OperationalError):  # the run may not have created the tables yet
            if rows := query(db, sql, *params):
                return rows
        assert time.monotonic() < deadline, f"timed out waiting for: {sql} {params}"
        time.sleep(0.1)


def faceless_video(path: Path, frames: int = 10) -> Path:
    """A grey clip with nobody in it, at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(frames):
        writer.write(np.full((240, 320, 3), 128, np.uint8))
    writer.release()
    return path
