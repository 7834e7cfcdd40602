"""The webhook goes through the proxy the environment names (https_proxy, http_proxy, no_proxy), as it did
through urllib: a till that reaches the chain's alert receiver only through a proxy kept its alerts."""

from __future__ import annotations

import logging
import socket
import time

from webhook_receiver import deliver, raw_receiver


def ok(connection: socket.socket, _: bytes) -> None:
    connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")


def refuse(connection: socket.socket, _: bytes) -> None:
    connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


def test_an_http_webhook_goes_through_http_proxy_with_its_credentials(monkeypatch):
    with raw_receiver(ok) as (port, requests):
        monkeypatch.setenv("http_proxy", f"http://till:pr%23xy@127.0.0.1:{port}")
        monkeypatch.delenv("no_proxy", raising=False)
        # The receiver's name resolves nowhere here: only the proxy can deliver it.
        notifier = deliver("http://alerts.invalid:8080/hook?till=4", count=1)
    assert notifier.sent == 1, requests
    assert requests[0].startswith(b"POST http://alerts.invalid:8080/hook?till=4 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dGlsbDpwciN4eQ==\r\n" in requests[0]  # till:pr#xy


def test_an_https_webhook_is_tunnelled_through_https_proxy(monkeypatch):
    with raw_receiver(refuse) as (port, requests):
        monkeypatch.setenv("https_proxy", f"127.0.0.1:{port}")  # without a scheme, as often written
        monkeypatch.delenv("no_proxy", raising=False)
        notifier = deliver("https://ops:hook-pass@alerts.invalid/hook", count=1)
    assert notifier.failed == 1
    assert requests[0].startswith(b"CONNECT alerts.invalid:443 HTTP/1.")
    assert b"hook-pass" not in requests[0] and b"Authorization" not in requests[0], "only the tunnel sees them"


def test_a_proxy_that_dribbles_its_connect_reply_fails_each_alert_at_the_timeout(monkeypatch):
    """The tunnel's reply was read in connect(), before the deadline started: a proxy sending a header line
    every 0.3 s held the alert thread for as long as it went on (12 s an alert here)."""

    def dribble(connection: socket.socket, _: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 Connection established\r\n")
        for _ in range(40):
            connection.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)

    with raw_receiver(dribble) as (port, requests):
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("no_proxy", raising=False)
        started = time.monotonic()
        notifier = deliver("https://alerts.invalid/hook", count=2)
    assert (notifier.failed, notifier.sent) == (2, 0) and len(requests) == 2
    assert time.monotonic() - started < 3.5, "two alerts of 1 s each"


def test_no_proxy_sends_the_webhook_direct(monkeypatch):
    closed = socket.create_server(("127.0.0.1", 0))
    proxy = closed.getsockname()[1]
    closed.close()  # nothing listens there: a delivery through the proxy would fail
    with raw_receiver(ok) as (port, requests):
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy}")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        notifier = deliver(f"http://127.0.0.1:{port}/hook", count=1)
    assert notifier.sent == 1 and requests[0].startswith(b"POST /hook HTTP/1.1\r\n")


def test_a_proxy_url_with_a_bad_port_fails_each_alert_without_quoting_it(monkeypatch, caplog):
    monkeypatch.setenv("http_proxy", "http://till:secret@proxy:80a")
    monkeypatch.delenv("no_proxy", raising=False)
    with caplog.at_level(logging.WARNING):
        notifier = deliver("http://alerts.invalid/hook", count=1)
    assert notifier.failed == 1 and "the proxy URL in the environment is not valid" in caplog.text
    assert "secret" not in caplog.text


def test_a_proxy_without_a_port_is_on_the_port_urllib_used(monkeypatch):
    """The webhook went through urllib, which opened an https tunnel on a port-less proxy's port 443 (80 for
    http): a till whose https_proxy names no port kept reaching it there."""
    from edge.challenge.webhook import _connection, target

    monkeypatch.setenv("https_proxy", "proxy.invalid")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid")
    monkeypatch.delenv("no_proxy", raising=False)
    tunnel, _, _ = _connection(target("https://alerts.invalid/hook"), 1.0)
    plain, _, _ = _connection(target("http://alerts.invalid/hook"), 1.0)
    assert (tunnel.host, tunnel.port) == ("proxy.invalid", 443)
    assert (plain.host, plain.port) == ("proxy.invalid", 80)
