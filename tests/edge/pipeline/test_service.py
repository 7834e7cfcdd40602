"""Service behaviour: systemd notifications over a real datagram socket, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from edge.config import load_config
from edge.pipeline import runner
from edge.pipeline.sd_notify import SystemdNotifier
from edge.vision.source import SourceSpec

from clips import clip


@pytest.fixture
def notify_socket(tmp_path):
    """A stand-in for systemd: a datagram socket whose messages a thread collects as they arrive."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=collect)
    reader.start()
    yield messages, str(tmp_path / "notify")
    done.set()
    reader.join()
    sock.close()


def test_a_full_notify_socket_never_blocks_the_loop(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "stalled"))  # nobody reads: the queue fills up
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "stalled")})
    start = time.monotonic()
    for _ in range(2000):
        notifier.watchdog()
    assert time.monotonic() - start < 2
    sock.close()


def test_notifier_is_silent_without_systemd():
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.ping_interval_s() is None
    notifier.ready("x")  # must not raise


def test_live_run_tells_systemd_ready_watchdog_status_and_stopping(notify_socket, write_config, assets, monkeypatch):
    messages, path = notify_socket
    monkeypatch.setattr(runner, "STATUS_EVERY_S", 0.3)
    config = load_config(write_config(source={"reconnect_initial_s": 0.05}))
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.ping_interval_s() == pytest.approx(0.1)
    stop = runner.StopSignal()
    threading.Timer(2.0, stop.set).start()
    # The clip opened as a stream: it ends and is reopened, like a camera that drops out.
    result = runner.run_source(
        config, SourceSpec("stream", str(clip(assets, "face-demographics-walking"))), stop=stop, notifier=notifier
    )
    time.sleep(0.3)  # let the collector drain the socket
    assert result.status == "stopped"
    assert messages[0].startswith("READY=1\nSTATUS=running:")
    assert sum(m == "WATCHDOG=1" for m in messages) >= 10
    statuses = [m for m in messages if m.startswith("STATUS=") and "fps" in m]
    assert statuses and "customers" in statuses[0] and "source" in statuses[0]
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"
    assert result.reconnects >= 1
    assert not result.capture_alive, "the capture thread is joined before run_source returns"


def test_sigterm_finishes_the_frame_flushes_and_exits_0(write_config, assets, tmp_path):
    video = clip(assets, "head-pose-face-detection-female-and-male")
    config = write_config(source={"uri": str(video)})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "--config", str(config), "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "state" / "agecam.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (db.exists() and _frames_seen(db)):
        time.sleep(0.2)
    time.sleep(1.0)  # mid-clip: the clip plays at 12.5 fps for 4.5 s
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=10)
    assert code == 0, process.stderr.read()
    assert time.monotonic() - sent < 5
    row = sqlite3.connect(db).execute("SELECT status, frames, ended_at FROM runs").fetchone()
    assert row[0] == "stopped" and 0 < row[1] < 56 and row[2]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _frames_seen(db) -> bool:
    try:
        return sqlite3.connect(db).execute("SELECT count(*) FROM customers").fetchone()[0] > 0
    except sqlite3.Error:
        return False
