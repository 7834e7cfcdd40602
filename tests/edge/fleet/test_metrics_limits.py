"""The till's metrics port under hostile clients, on a real `agecam run` (POS endpoint on, a looping clip, real
loopback sockets): clients that open connections and never finish a request must not take the till's threads
or descriptors, so its camera still reopens, its POS events are still acknowledged, and Prometheus still
scrapes once they are gone."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from edge.fleet import scrape
from edge.fleet.scrape import MAX_SCRAPERS, SCRAPE_TIMEOUT_S

from pos_live import LiveRun, faceless_video, free_port

TILL_FDS = 256  # the till's descriptor limit (a unit's default is 1,024; smaller to keep the test short)
SLOW_CLIENTS = 300


def slow_client(port: int) -> socket.socket | None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:  # the till has stopped: the test says so below
        return None
    with contextlib.suppress(OSError):  # closed at once when every slot is taken
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
    return sock


def test_slow_clients_on_the_metrics_port_cannot_stop_the_till(tmp_path, tiny_model):
    metrics_port = free_port()
    clip = faceless_video(tmp_path / "grey.mp4", frames=30)  # 3 s, looping: reopened again and again
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(TILL_FDS, hard), hard))  # inherited by the till only
    try:
        run = LiveRun(tmp_path, tiny_model, str(clip), True, metrics={"port": metrics_port})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    clients: list[socket.socket] = []
    try:
        run.wait_ready()
        clients = [client for _ in range(SLOW_CLIENTS) if (client := slow_client(metrics_port))]
        time.sleep(SCRAPE_TIMEOUT_S + 2)  # past a reopening of the clip, and past the slow clients' deadline
        threads = len(os.listdir(f"/proc/{run.process.pid}/task"))
        assert run.process.poll() is None, run.log()
        assert threads < 40 + 2 * MAX_SCRAPERS, f"{threads} threads"
        assert run.post({"type": "transaction_start", "till_id": "t", "transaction_id": "T1"}) == 202
        clients[0].settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert clients[0].recv(100) == b""  # cut at its deadline (no reply, nothing to answer)
        for client in clients:
            client.close()
        clients = []
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert "agecam_frames_total" in scrape
        assert run.stop() == 0, run.log()
    finally:
        for client in clients:
            client.close()
        if run.process.poll() is None:
            run.process.kill()
        run.process.wait(timeout=30)


class Broken:
    def collect(self) -> list:
        raise RuntimeError("the outbox is locked")


def test_a_collectors_error_is_a_500_and_logged_not_a_silent_close(caplog):
    """The handler's errors were all silenced (for clients cut at their deadline): a collector that raised gave
    the scraper a closed connection without a reply and left nothing in the log."""
    registry = CollectorRegistry()
    registry.register(Broken())
    server = scrape.serve("127.0.0.1", 0, registry)
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
        assert refused.value.code == 500
        assert "the outbox is locked" in caplog.text
    finally:
        server.shutdown()
        server.server_close()
