"""`agecam serve`: password hashes, the address policy, one-line errors with their exit codes, and a real
server process that answers /health, wants a login for the rest, and stops cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
import yaml

from edge.config import load_config
from edge.review.auth import verify_password

from review_app import serve_address


def _config(tmp_path, **review: object):
    data = {"review": review}
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def review_db(tmp_path, default_run):
    copy = tmp_path / "agecam.db"
    shutil.copy(default_run[2], copy)
    return copy


@pytest.fixture(scope="module")
def account_hash() -> str:
    from edge.review.auth import hash_password

    return hash_password("s3cret-password")


def test_hash_password_reads_stdin_and_prints_a_hash_the_config_accepts(agecam, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-password\n"))
    result = agecam("--config", _config(tmp_path), "serve", "--hash-password")
    assert result.code == 0
    stored = result.out.strip()
    assert verify_password("s3cret-password", stored) and not verify_password("other", stored)
    path = _config(tmp_path, accounts={"rita": {"role": "reviewer", "password_hash": stored}})
    assert load_config(path).review.accounts["rita"].role == "reviewer"


def test_a_short_password_is_refused(agecam, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    result = agecam("--config", _config(tmp_path), "serve", "--hash-password")
    assert result.code == 2 and "shorter than 8" in result.err


def _one_line(result) -> str:
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    return result.err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_another_address_is_refused_unless_the_config_names_it_with_tls(agecam, tmp_path, account_hash, host):
    accounts = {"rita": {"role": "reviewer", "password_hash": account_hash}}
    config = _config(tmp_path, accounts=accounts)
    result = agecam("--config", config, "serve", "--host", host, "--db", tmp_path / "x.db")
    assert result.code == 2 and f"refusing to serve on {host}" in _one_line(result)
    named = _config(tmp_path, accounts=accounts, host="192.168.1.20", tls="reverse_proxy")
    other = agecam("--config", named, "serve", "--host", "10.0.0.1", "--db", tmp_path / "x.db")
    assert other.code == 2 and "refusing to serve on 10.0.0.1" in _one_line(other)


def test_a_config_with_a_public_host_must_say_how_tls_is_provided(agecam, tmp_path):
    result = agecam("--config", _config(tmp_path, host="0.0.0.0"), "config", "check")
    assert result.code == 2 and "review" in result.err and "tls: reverse_proxy" in _one_line(result)


def test_no_accounts_missing_log_and_a_taken_port_are_one_line_errors(agecam, tmp_path, account_hash, review_db):
    assert agecam("--config", _config(tmp_path), "serve", "--db", review_db).code == 2
    accounts = {"rita": {"role": "reviewer", "password_hash": account_hash}}
    config = _config(tmp_path, accounts=accounts)
    missing = agecam("--config", config, "serve", "--db", tmp_path / "none.db")
    assert missing.code == 6 and "not found" in _one_line(missing)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = agecam("--config", config, "serve", "--db", review_db, "--port", str(taken.getsockname()[1]))
    assert busy.code == 2 and "cannot listen" in _one_line(busy)


def test_a_served_app_answers_health_needs_a_login_and_stops_on_sigterm(tmp_path, account_hash, review_db):
    accounts = {"rita": {"role": "reviewer", "password_hash": account_hash}}
    command = [sys.executable, "-m", "edge.cli", "--config", str(_config(tmp_path, accounts=accounts))]
    process = subprocess.Popen(
        [*command, "serve", "--db", str(review_db), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    try:
        base = serve_address(process)
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            assert json.load(response) == {"status": "ok"}
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
        connection.request("GET", "/flags")
        response = connection.getresponse()
        assert response.status == 303 and response.getheader("location").startswith("/login")
        connection.close()
    except BaseException:
        process.kill()
        raise
    finally:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
