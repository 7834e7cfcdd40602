"""The POS endpoint under hostile clients, over real loopback sockets (issue #14): slow clients cost neither
threads nor descriptors and lose their place to a POS, a request must arrive whole in time, and a refused
request's body is never taken for the next request."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time

import pytest

from edge.challenge import server

from pos_http import GOOD, TOKEN, post_body, raw, rejects, request, send, serving, stored

SLOW_HEAD = b"POST /events HTTP/1.1\r\nHost: t\r\nContent-Type: appl"  # and then nothing more


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_slow_clients_take_no_threads_or_descriptors_and_a_pos_is_still_served(tmp_path, caplog):
    with serving(tmp_path, max_connections=16, request_timeout_s=2.0) as (pos, db):
        assert request(pos.port, json.dumps(GOOD).encode())[0] == 202  # the commit thread exists from here
        threads, fds = threading.active_count(), open_fds()
        slow = []
        for _ in range(300):
            client = socket.create_connection(("127.0.0.1", pos.port), timeout=5)
            client.sendall(SLOW_HEAD)
            slow.append(client)
        time.sleep(0.3)
        assert threading.active_count() == threads, "a thread per connection"
        assert open_fds() - fds - len(slow) <= 16 + 2, "the server holds more descriptors than its cap"
        started = time.monotonic()
        assert request(pos.port, json.dumps(GOOD).encode())[0] == 202
        assert time.monotonic() - started < 1.0
        with socket.create_connection(("127.0.0.1", pos.port), timeout=5) as split:  # the body a packet behind
            body = json.dumps(GOOD).encode()
            split.sendall(post_body(body)[: -len(body)])
            time.sleep(0.01)
            split.sendall(body)
            assert split.recv(4096).startswith(b"HTTP/1.1 202")
        assert "closed for a complete request at the connection limit" in caplog.text, "the POS took a slow one's place"
        for client in slow:  # each was closed at once at the cap, or for a POS, or timed out with a 408
            with client:
                client.settimeout(4)
                try:
                    reply = client.recv(4096)
                except ConnectionResetError:
                    reply = b""
                assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:40]
        assert len(stored(db)) == 3
        started = time.monotonic()
        pos.stop()
        assert time.monotonic() - started < 2.0


def test_a_body_shorter_than_its_length_gets_408_and_the_connection_closes(tmp_path):
    with serving(tmp_path, request_timeout_s=1.0) as (pos, db):
        started = time.monotonic()
        reply = raw(pos.port, post_body(b"x" * 100)[:-90])  # 10 of the 100 bytes promised
        assert reply.startswith(b"HTTP/1.1 408") and b"Connection: close" in reply
        assert 0.9 < time.monotonic() - started < 3.0, "raw() returned before the close, or the close came late"
        assert pos.rejected == 1 and rejects(db) == [(408, 1)]


def test_an_idle_keep_alive_connection_closes_quietly(tmp_path):
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        reply = raw(pos.port, post_body(json.dumps(GOOD).encode()))
        assert reply.count(b"HTTP/1.1 ") == 1 and reply.startswith(b"HTTP/1.1 202")
        assert pos.rejected == 0 and rejects(db) == []


@pytest.mark.parametrize(("case", "status"), [("wrong token", 401), ("wrong path", 404)])
def test_a_refused_requests_body_is_never_taken_for_the_next_request(tmp_path, case, status):
    smuggled = post_body(json.dumps(GOOD).encode())
    outer = post_body(smuggled, token="wrong" if case == "wrong token" else TOKEN)
    if case == "wrong path":
        outer = outer.replace(b"POST /events", b"POST /other", 1)
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        reply = raw(pos.port, outer)
        assert reply.startswith(f"HTTP/1.1 {status}".encode()) and reply.count(b"HTTP/1.1 ") == 1, reply
        assert stored(db) == []
        connection = http.client.HTTPConnection("127.0.0.1", pos.port, timeout=5)
        with contextlib.closing(connection):  # the POS's authenticated retry on the same connection
            body = json.dumps(GOOD).encode()
            first = send(connection, body, token="wrong") if status == 401 else send(connection, body, path="/x")
            assert first[0] == status
            assert send(connection, body)[0] == 202
        assert len(stored(db)) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"Transfer-Encoding: gzip\r\n", 411),  # h11 answered 501, which the README did not list
        (b"Transfer-Encoding: gzip, chunked\r\n", 411),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 411),
        (b"X-Long: " + b"a" * 20000 + b"\r\n", 431),
    ],
)
def test_transfer_codings_and_huge_headers_are_refused_and_the_connection_closes(tmp_path, headers, status):
    with serving(tmp_path) as (pos, db):
        reply = raw(pos.port, post_body(b"5\r\nhello\r\n0\r\n\r\n", extra=headers))
        assert reply.startswith(f"HTTP/1.1 {status}".encode()) and b"Connection: close" in reply
        assert stored(db) == [] and rejects(db) == [(status, 1)]


def padded(size: int) -> bytes:
    """A good POST /events whose head (request line and headers, through the empty line) is `size` bytes."""
    short = post_body(json.dumps(GOOD).encode(), extra=b"X-Pad: \r\n")
    head = short.index(b"\r\n\r\n") + 4
    return short.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (size - head), 1)


@pytest.mark.parametrize(("size", "status"), [(8000, 202), (8192, 202), (8193, 431), (8704, 431), (12000, 431)])
def test_the_header_limit_is_exactly_8_kib(tmp_path, size, status):
    """A head that arrived whole within h11's buffer limit plus one read (4 KiB) was accepted: ~8.5 KB got 202."""
    data = padded(size)
    assert data.index(b"\r\n\r\n") + 4 == size
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        reply = raw(pos.port, data)
        assert reply.startswith(f"HTTP/1.1 {status}".encode()), reply[:80]
        assert len(stored(db)) == (status == 202)
        if status == 431:
            assert b"Connection: close" in reply and rejects(db) == [(431, 1)]


def test_a_long_head_pipelined_behind_a_request_is_measured_alone(tmp_path):
    """The limit is per request: the first request's bytes, still buffered, do not count against the second."""
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        reply = raw(pos.port, padded(8192) + padded(8192) + padded(8193))
        assert [answer[:3] for answer in reply.split(b"HTTP/1.1 ")[1:]] == [b"202", b"202", b"431"]
        assert len(stored(db)) == 2


def test_events_waiting_for_a_frame_are_bounded_and_none_acknowledged_is_lost(tmp_path, monkeypatch):
    """No frame comes while the camera reconnects, so nothing takes the acknowledged events: they grew the till's
    memory without bound (~1.7 KB each, a POS flood ~1.5 MB/s). Past the bound an event is refused, unstored."""
    monkeypatch.setattr(server, "MAX_WAITING", 20)
    with serving(tmp_path) as (pos, db):
        connection = http.client.HTTPConnection("127.0.0.1", pos.port, timeout=10)
        replies = [send(connection, json.dumps(GOOD).encode()) for _ in range(25)]
        assert [status for status, _ in replies] == [202] * 20 + [503] * 5
        assert "wait for the frame loop" in replies[-1][1]["error"]
        acknowledged = [reply["id"] for status, reply in replies if status == 202]
        assert [row[0] for row in stored(db)] == acknowledged, "only acknowledged events are stored"
        assert pos.events.qsize() == 20
        while not pos.events.empty():  # the camera is back: a frame takes them all
            pos.events.get_nowait()
        assert send(connection, json.dumps(GOOD).encode())[0] == 202
        connection.close()


@pytest.mark.parametrize("path", ["/events", "/health"])
def test_a_head_request_gets_its_404_without_a_body_and_pipelined_events_behind_it_are_applied(tmp_path, path):
    """h11 refuses a body in the reply to HEAD: the 404 was never sent and the connection was dropped
    unanswered, with the events pipelined behind it (HTTP/1.1 lets a POS send several at once)."""
    events = [json.dumps({**GOOD, "sku": str(n)}).encode() for n in range(3)]
    head = f"HEAD {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    with serving(tmp_path, request_timeout_s=1) as (pos, db):
        reply = raw(pos.port, head + b"".join(post_body(body) for body in events))  # read until the idle close
        answers = reply.split(b"HTTP/1.1 ")[1:]
        assert [answer[:3] for answer in answers] == [b"404", b"202", b"202", b"202"]
        assert answers[0].endswith(b"\r\n\r\n")  # the headers only
        assert [json.loads(answer.split(b"\r\n\r\n")[1])["id"] for answer in answers[1:]] == [1, 2, 3]
        assert [json.loads(row[4])["sku"] for row in stored(db)] == ["0", "1", "2"]  # in the order sent
