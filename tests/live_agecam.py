"""`agecam run` as a real process with the POS endpoint, for tests that break its storage under it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, event: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=json.dumps(event).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=15) as response:
        return json.loads(response.read())


def agecam_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", "--config", str(config), *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def live_agecam(config: Path, video: Path, port: int) -> Iterator[subprocess.Popen]:
    """`agecam run` looping `video`, once its POS endpoint answers; killed at the end if still running."""
    command = agecam_command(config, "run", "--source", str(video), "--loop")
    process = subprocess.Popen(command, env=environment(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                health(port)
                break
            assert process.poll() is None and time.monotonic() < deadline, "agecam run did not start"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("agecam: error:")]


def sale(number: int) -> list[dict]:
    common = {"till_id": "till-1", "cashier_id": "dana", "transaction_id": f"T{number}"}
    return [
        {"type": "transaction_start", **common},
        {"type": "item_scanned", "category": "wine", **common},
        {"type": "transaction_end", **common},
    ]
