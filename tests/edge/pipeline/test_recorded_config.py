"""A run's row keeps its config for review, without the secrets in it: the event log is copied for review and
replays, and the POS token, a webhook's password and an alert command's arguments stayed readable in it."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import load_config, parse_config
from edge.errors import SourceError
from edge.pipeline import runner
from edge.vision.source import SourceSpec, open_capture, parse_source

HASH = "scrypt$16384$8$1$c2FsdHNhbHQ=$aGFzaGhhc2g="


def a_clip(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 5.0, (160, 120))
    for index in range(3):
        writer.write(np.full((120, 160, 3), 60 * index, np.uint8))
    writer.release()
    return path


def test_a_run_records_its_config_without_secrets(write_config, tmp_path):
    config = load_config(
        write_config(
            pos={"enabled": True, "port": 0, "token": "till-secret-7731"},
            alerts={
                "webhook": "https://ops:hook-pass-5519@alerts.example:8443/agecam?till=4",
                "command": ["/usr/bin/curl", "-u", "ops:curl-pass-2286", "https://x.example"],
            },
            policy={"threshold": 21},
            review={"accounts": {"manager": {"role": "reviewer", "password_hash": HASH}}},
        )
    )
    runner.run_source(config, SourceSpec("file", str(a_clip(tmp_path / "clip.mp4"))))
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "agecam.db")) as connection:
        (stored,) = connection.execute("SELECT config_json FROM runs").fetchone()
    for secret in ("till-secret-7731", "hook-pass-5519", "curl-pass-2286", HASH):
        assert secret not in stored
    recorded = json.loads(stored)
    assert recorded["policy"]["threshold"] == 21  # what the review app reads from it
    assert recorded["alerts"]["webhook"] == "https://ops:(not recorded)@alerts.example:8443/agecam?till=4"
    assert recorded["alerts"]["command"] == ["/usr/bin/curl", "(not recorded)"]
    assert recorded["pos"]["token"] == "(not recorded)"
    assert config.pos.token == "till-secret-7731"  # the running config keeps it


def test_a_webhook_url_that_does_not_parse_is_left_out_not_a_crash_at_the_runs_start():
    # The config takes any http:// text; urlsplit refused this one (ValueError) as each run started.
    config = parse_config({"alerts": {"webhook": "http://ops:hook-pass-5519@[::1/hook"}}, "test", Path("."))
    recorded = json.loads(config.recorded_json())
    assert recorded["alerts"]["webhook"] == "(not recorded)"


def test_a_camera_urls_password_is_left_out():
    config = parse_config({"source": {"uri": "rtsp://admin:cam-pass-4417@10.0.0.5:554/stream1"}}, "test", Path("."))
    recorded = json.loads(config.recorded_json())
    assert recorded["source"]["uri"] == "rtsp://admin:(not recorded)@10.0.0.5:554/stream1"
    assert json.loads(parse_config({}, "test", Path(".")).recorded_json())["source"]["uri"] == "0"


def test_a_stream_password_stays_out_of_messages_and_the_runs_row():
    """The run's row takes str(spec) as its source, which the review app's till health shows to viewers."""
    spec = parse_source("rtsp://admin:cam-pass-4417@127.0.0.1:9/stream1")  # nothing listens on port 9
    assert str(spec) == "rtsp://admin:(not recorded)@127.0.0.1:9/stream1"
    assert "cam-pass-4417" in spec.value, "the capture itself still gets the password"
    with pytest.raises(SourceError) as error:
        open_capture(spec)
    assert "cam-pass-4417" not in str(error.value) and "127.0.0.1:9" in str(error.value)
