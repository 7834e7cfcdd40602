"""Helpers for the review app's tests: the test accounts' password, logging in, the scenario's day, and the
demo's settings replayed into a folder of their own."""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

PASSWORD = "correct horse battery"
ZONE = "Europe/London"
ROOT = Path(__file__).resolve().parents[1]


def demo_config(folder: Path, **sections: dict) -> Path:
    """examples/demo-config.yaml with its state in `folder` and these sections replaced: the file's path."""
    data = yaml.safe_load((ROOT / "examples" / "demo-config.yaml").read_text())
    data.update(state={"dir": str(folder / "state")}, **sections)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


def log_in(client, name: str, password: str = PASSWORD, next_page: str = "/"):
    token = csrf_of(client.get("/login").text)
    data = {"name": name, "password": password, "csrf": token, "next": next_page}
    return client.post("/login", data=data, follow_redirects=False)


def scenario_day(db: Path) -> str:
    """The scenario's local date in ZONE (it is replayed at the time the tests run)."""
    with sqlite3.connect(db) as connection:
        started = connection.execute("SELECT min(started_at) FROM runs").fetchone()[0]
    return datetime.fromisoformat(started.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE)).date().isoformat()


def one_flag(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT min(id) FROM alerts WHERE kind = 'flag'").fetchone()[0]


def contrast(first: str, second: str = "rgb(255, 255, 255)") -> float:
    """WCAG's contrast ratio of two CSS rgb() colours (the second white unless given)."""

    def luminance(colour: str) -> float:
        channels = [int(value) / 255 for value in re.findall(r"\d+", colour)[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def serve_address(process: subprocess.Popen) -> str:
    """The URL a starting `agecam serve` process logs, read from its stderr (at most 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if found := re.search(r"review app on (http://127\.0\.0\.1:\d+)", line):
            return found[1]
        assert process.poll() is None, f"agecam serve exited: {line}"
    raise AssertionError("agecam serve did not start within 30 s")


@contextlib.contextmanager
def agecam_serve(config: Path, db: Path) -> Iterator[tuple[str, list[str]]]:
    """A real `agecam serve` of `db` on a free loopback port: yields its URL, and a list that holds its log
    (stderr) once it has stopped (SIGTERM at the end)."""
    command = [sys.executable, "-m", "edge.cli", "--config", str(config), "serve", "--db", str(db), "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    try:
        yield serve_address(process), log
    finally:
        process.send_signal(signal.SIGTERM)
        log.append(process.communicate(timeout=10)[1])
