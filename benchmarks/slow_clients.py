"""A slow-client (slowloris) attack on a POS endpoint on loopback, with a legitimate POS posting meanwhile.

`attack(port, pid, count, seconds)` holds `count` connections that dribble one header byte a second each,
reopening those the server drops, for a bounded time; meanwhile a POS posts a valid event every half
second. It reports what the attacker saw, what the POS got (statuses, latency), and the server process's
peak threads and open descriptors; traffic goes to 127.0.0.1 only. `slowclients(...)` runs it against a real
`agecam run` (`reliability.py slowclients`), a quiet phase first, and adds the run's fps from its status lines.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from service_process import Service, post, sales

HEAD = b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: "
TICK_S = 0.25
BYTE_EVERY_S = 1.0
GOOD = {"type": "transaction_start", "till_id": "till-legit", "cashier_id": "c1"}


class SlowClients:
    """Non-blocking sockets on one thread: open, dribble, notice drops, reopen."""

    def __init__(self, port: int, count: int) -> None:
        self.address, self.count = ("127.0.0.1", port), count
        self.sockets: dict[socket.socket, list[float | int]] = {}  # socket -> [bytes sent, last send]
        self.opened = self.dropped = self.replies = self.connect_errors = 0

    def run(self, seconds: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and not stop.is_set():
                self._top_up()
                self._dribble()
                time.sleep(TICK_S)
        finally:
            for sock in self.sockets:
                sock.close()

    def _top_up(self) -> None:
        while len(self.sockets) < self.count:
            sock = socket.socket()
            sock.setblocking(False)
            if sock.connect_ex(self.address) not in (0, 115):  # 115: EINPROGRESS
                self.connect_errors += 1
                sock.close()
                return
            self.sockets[sock] = [0, 0.0]
            self.opened += 1

    def _dribble(self) -> None:
        now = time.monotonic()
        for sock, state in list(self.sockets.items()):
            if self._closed(sock):
                self.dropped += 1
                del self.sockets[sock]
                sock.close()
                continue
            sent, last = state
            if now - last < BYTE_EVERY_S:
                continue
            byte = HEAD[sent : sent + 1] or b"a"
            with contextlib.suppress(BlockingIOError, OSError):  # still connecting, or gone (seen next tick)
                sock.send(byte)
                state[0], state[1] = int(sent) + 1, now

    def _closed(self, sock: socket.socket) -> bool:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:
            self.replies += 1  # a 408; the close follows
            return False
        return True


def legit_poster(port: int, results: list[tuple[int, float]], stop: threading.Event, every_s: float = 0.5) -> None:
    """POST a valid event every `every_s`: (status or 0 for a failure, seconds) each."""
    body = json.dumps(GOOD).encode()
    while not stop.is_set():
        started = time.monotonic()
        try:
            reply = post(port, body, timeout=10)  # the stored event's id, or minus the HTTP status
            status = 202 if reply > 0 else -reply
        except OSError:
            status = 0
        results.append((status, time.monotonic() - started))
        stop.wait(max(0.0, every_s - (time.monotonic() - started)))


def process_usage(pid: int) -> tuple[int, int]:
    """(threads, open descriptors) of a process."""
    threads = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    return threads, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def summarise_posts(results: list[tuple[int, float]]) -> dict:
    latencies = sorted(seconds * 1000 for status, seconds in results if status == 202)
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status or "failed")] = statuses.get(str(status or "failed"), 0) + 1
    return {
        "posts": len(results),
        "accepted": len(latencies),
        "by_status": statuses,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


def attack(port: int, pid: int, count: int, seconds: float) -> dict:
    """The attack and a legitimate POS side by side, sampling the server's threads and descriptors each second."""
    stop, posts = threading.Event(), []
    clients = SlowClients(port, count)
    threads = [
        threading.Thread(target=clients.run, args=(seconds, stop)),
        threading.Thread(target=legit_poster, args=(port, posts, stop)),
    ]
    peak = process_usage(pid)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1.0)
        usage = process_usage(pid)
        peak = (max(peak[0], usage[0]), max(peak[1], usage[1]))
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "attacker": {
            "connections": count,
            "opened": clients.opened,
            "dropped_by_server": clients.dropped,
            "408_replies": clients.replies,
            "connect_errors": clients.connect_errors,
        },
        "server_peak": {"threads": peak[0], "open_fds": peak[1]},
        "legit_posts": summarise_posts(posts),
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
