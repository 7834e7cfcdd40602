"""The state folder removed, or the event log replaced, under a live run (issue #14, item 6): no event is
acknowledged from then on (503), /health says why, and agecam ends with exit 6 and one line, so that
systemd restarts it with a new event log."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
import urllib.error

import pytest

from edge.challenge.server import PosServer, monotonic_clock
from edge.config import PosConfig
from edge.store.eventlog import EventLog
from edge.store.pos_records import PosStore

from live_agecam import error_lines, free_port, health, live_agecam, post, sale
from pos_scenario import scenario_config


def remove_state(state) -> str:
    shutil.rmtree(state)
    return "removed"


def replace_log(state) -> str:
    db = state / "agecam.db"
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(state / "copy")) as copy:
        source.backup(copy)  # a restored backup, say: a whole other file now at the path
    (state / "copy").replace(db)
    return "replaced"


@pytest.mark.parametrize("change", [remove_state, replace_log])
def test_no_event_is_acknowledged_once_the_event_log_is_gone_and_the_run_exits_6(
    tmp_path, scenario, tiny_model, change
):
    port = free_port()
    config = scenario_config(tmp_path, tiny_model, pos={"enabled": True, "port": port})
    with live_agecam(config, scenario / "till.mp4", port) as process:
        assert [post(port, event)[0] for event in sale(1)] == [202, 202, 202]
        word = change(tmp_path / "state")
        replies = []
        with contextlib.suppress(OSError, urllib.error.URLError):  # the endpoint closes when agecam exits
            for number in range(2, 12):
                replies += [post(port, event) for event in sale(number)]
        # The main loop may notice first and end the run (the endpoint then refuses connections): either
        # way nothing is acknowledged into the lost file.
        assert {status for status, _ in replies} <= {503}, "nothing acknowledged into a lost file"
        assert all(f"was {word}" in reply["error"] for _, reply in replies)
        code = process.wait(timeout=30)
        stderr = process.stderr.read()
    lines = error_lines(stderr)
    assert code == 6 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert f"was {word} while agecam was running" in lines[0] and "agecam.db" in lines[0]


def test_the_main_loop_notices_a_removed_log_without_any_pos_event(tmp_path, scenario, tiny_model):
    port = free_port()
    config = scenario_config(tmp_path, tiny_model, pos={"enabled": True, "port": port})
    with live_agecam(config, scenario / "till.mp4", port) as process:
        shutil.rmtree(tmp_path / "state")
        started = time.monotonic()
        code = process.wait(timeout=30)
        stderr = process.stderr.read()
    assert code == 6 and time.monotonic() - started < 10
    assert len(error_lines(stderr)) == 1 and "was removed while agecam was running" in stderr


def test_health_says_failed_and_events_get_503_once_the_file_is_removed(tmp_path):
    main = EventLog(tmp_path / "agecam.db")
    run_id = main.start_run(
        mode="live", source="0", model_path="m", model_sha256="s", provider="CPU", version="0", config_json="{}",
        started=time.time(),
    )  # fmt: skip
    pos = PosServer(PosConfig(port=0))
    pos.start(PosStore(main.sibling(durable=True), run_id, time.time()), monotonic_clock(time.time()))
    try:
        assert post(pos.port, sale(1)[0])[0] == 202
        (tmp_path / "agecam.db").unlink()
        status, reply = post(pos.port, sale(1)[1])
        assert status == 503 and "was removed while agecam was running" in reply["error"]
        assert health(pos.port)["status"] == "failed"
        main.tick()
        assert main.health.gone and main.unwritten() == main.health.gone
        assert main.write([(None, lambda: 1)]) is None, "the main loop writes nothing more into the lost file"
    finally:
        pos.stop()
        pos.store.log.close()
        main.close()
