"""Alerts and flags reach the configured webhook and command; a failing or slow receiver is logged and
counted but never holds up or stops the loop."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.challenge.alerts import AlertSender
from edge.config import AlertsConfig

from pos_scenario import replay, scenario_config


@contextlib.contextmanager
def receiver(delay_s: float = 0.0, status: int = 200):
    """A real webhook receiver on a free port, recording each JSON body."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            time.sleep(delay_s)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_replay_sends_every_alert_and_flag_to_the_webhook_and_the_command(tmp_path, scenario, tiny_model):
    sink = tmp_path / "command-got.jsonl"
    command = [sys.executable, "-c", f"import sys; open({str(sink)!r}, 'a').write(sys.stdin.read() + '\\n')"]
    with receiver() as (url, received):
        config = scenario_config(tmp_path, tiny_model, alerts={"webhook": url, "command": command})
        assert replay(config, scenario, tmp_path / "run.db") == 0
    by_command = [json.loads(line) for line in sink.read_text().splitlines()]
    assert received and by_command == received
    kinds = {(message["kind"], message["type"]) for message in received}
    assert kinds == {("alert", "id_check_required"), ("flag", "sold_without_id_check")}
    assert all(message["till_id"] == "till-1" and message["age"] is not None for message in received)


@pytest.mark.parametrize("problem", ["refused", "http 500", "command fails"])
def test_failing_receivers_are_counted_and_delivery_goes_on(problem):
    with receiver(status=500) as (url, _):
        settings = {
            "refused": AlertsConfig(webhook="http://127.0.0.1:9/never", timeout_s=1),
            "http 500": AlertsConfig(webhook=url, timeout_s=1),
            "command fails": AlertsConfig(command=[sys.executable, "-c", "import sys; sys.exit(3)"], timeout_s=5),
        }[problem]
        notifier = AlertSender(settings)
        notifier.start()
        for number in range(3):
            notifier.send({"id": number})
        notifier.close(timeout=20)
    assert (notifier.failed, notifier.sent) == (3, 0)


def test_a_slow_webhook_does_not_hold_up_the_caller():
    with receiver(delay_s=0.5) as (url, received):
        notifier = AlertSender(AlertsConfig(webhook=url, timeout_s=5))
        notifier.start()
        started = time.perf_counter()
        for number in range(3):
            notifier.send({"id": number})
        assert time.perf_counter() - started < 0.1
        notifier.close(timeout=20)
    assert notifier.sent == 3 and [message["id"] for message in received] == [0, 1, 2]


def test_a_receiver_that_does_not_answer_http_is_a_failure_and_delivery_goes_on():
    """A webhook pointed at the wrong port (an SSH server, say) answers bytes that are not HTTP: each alert
    is a counted failure, and the sender stays up for the next (it used to die on the first)."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            for _ in range(3):
                connection, _ = server.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        threading.Thread(target=answer, daemon=True).start()
        notifier = AlertSender(AlertsConfig(webhook=f"http://127.0.0.1:{server.getsockname()[1]}/hook", timeout_s=2))
        notifier.start()
        for number in range(3):
            notifier.send({"id": number})
        notifier.close(timeout=20)
    assert (notifier.failed, notifier.sent) == (3, 0) and notifier.queue.empty()


def test_alerts_still_queued_at_the_stop_are_counted_and_logged(caplog):
    """close() gave up after its timeout in silence: the daemon thread's queued alerts vanished with the
    process, neither sent nor counted as failed."""
    with receiver(delay_s=1.0) as (url, _), caplog.at_level(logging.WARNING):
        notifier = AlertSender(AlertsConfig(webhook=url, timeout_s=5))
        notifier.start()
        for number in range(5):
            notifier.send({"id": number})
        notifier.close(timeout=0.5)
        notifier.join(5)
    assert not notifier.is_alive() and notifier.sent + notifier.failed == 5 and notifier.failed >= 3
    assert f"{notifier.failed} alert(s) not delivered by the stop" in caplog.text
