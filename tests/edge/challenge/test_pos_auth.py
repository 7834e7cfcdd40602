"""Who may post (issue #14): no open endpoint without a token unless the network is declared trusted, no empty
token, and tokens compared as the bytes sent."""

from __future__ import annotations

import json

import pytest

from pos_http import GOOD, post_body, raw, rejects, serving, stored


def error_line(result) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


@pytest.mark.parametrize(
    ("pos", "words"),
    [
        ("host: 0.0.0.0", "pos.trusted_network"),
        ("host: 192.168.1.20", "pos.token"),
        ("host: till.local", "pos.token"),
        ('token: ""', "pos.token: the token is empty"),
        ('token: "   "', "pos.token: the token is empty"),
        ('token: " s3cret"', "pos.token"),
    ],
)
def test_an_open_endpoint_or_an_empty_token_is_refused_with_exit_2(agecam, tmp_path, pos, words):
    path = tmp_path / "config.yaml"
    path.write_text(f"pos:\n  {pos}\n")
    result = agecam("--config", path, "config", "check")
    assert result.code == 2 and words in error_line(result) and str(path) in result.err


@pytest.mark.parametrize(
    "pos",
    ["host: 0.0.0.0\n  token: s3cret", "host: 0.0.0.0\n  trusted_network: true", "host: '::1'", "host: localhost"],
)
def test_a_token_or_a_trusted_network_or_loopback_is_accepted(agecam, tmp_path, pos):
    path = tmp_path / "config.yaml"
    path.write_text(f"pos:\n  {pos}\n")
    assert agecam("--config", path, "config", "check").code == 0


@pytest.mark.parametrize("header", [b"Bearer ", b"Bearer", b"bearer  ", b"s3cret", b"Basic s3cret"])
def test_an_empty_or_malformed_bearer_never_authenticates(tmp_path, header):
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        request = post_body(json.dumps(GOOD).encode()).replace(b"Bearer s3cret", header)
        assert raw(pos.port, request).startswith(b"HTTP/1.1 401")
        assert stored(db) == []


def test_a_non_ascii_token_sent_as_utf8_matches(tmp_path):
    token = "s3crét-ключ"
    with serving(tmp_path, token=token, request_timeout_s=0.5) as (pos, db):
        good = post_body(json.dumps(GOOD).encode()).replace(b"s3cret", token.encode("utf-8"))
        assert raw(pos.port, good).startswith(b"HTTP/1.1 202")
        wrong = good.replace("ключ".encode(), "клюк".encode())
        assert raw(pos.port, wrong).startswith(b"HTTP/1.1 401")
        assert len(stored(db)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        b"Authorization: Bearer wrong\r\nAuthorization: Bearer s3cret\r\n",  # the last one won: 202
        b"Authorization: Bearer s3cret\r\nAuthorization: Bearer wrong\r\n",
        b"Authorization: Bearer s3cret\r\nauthorization: Bearer s3cret\r\n",
    ],
)
def test_two_authorization_headers_are_refused_with_400_and_the_connection_closes(tmp_path, headers):
    """A proxy that prepends its own header, or a header injected upstream, must not leave it to chance
    which one is checked: neither is, and the request is refused as ambiguous."""
    with serving(tmp_path, request_timeout_s=0.5) as (pos, db):
        request = post_body(json.dumps(GOOD).encode()).replace(b"Authorization: Bearer s3cret\r\n", headers)
        reply = raw(pos.port, request)
        assert reply.startswith(b"HTTP/1.1 400") and b"Connection: close" in reply, reply[:80]
        assert b"Authorization" in reply.split(b"\r\n\r\n")[1]
        assert stored(db) == [] and rejects(db) == [(400, 1)]
