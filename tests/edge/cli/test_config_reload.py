"""A SIGHUP reload of a live `agecam run` whose config file was broken in the ways a deploy or a hostile hand
breaks it: the till logs one line per reload and keeps its previous config, its POS endpoint and its open
sale. Before, a value PyYAML could not build ended the process (exit 1 and a traceback), and a FIFO at the
config path left it stopped, camera and endpoint down, waiting for a writer."""

from __future__ import annotations

import os
import signal

from pos_live import faceless_video, live_run, query, wait_for

BROKEN = {
    "date": "review:\n  timezone: 2026-02-30\n",
    "digits": "customer:\n  max_samples: " + "9" * 5000 + "\n",
    "section": "pos:\n#  port: 9000\n",
}


def test_a_reload_onto_a_broken_config_file_keeps_the_till_on_its_previous_config(tmp_path, tiny_model):
    video = faceless_video(tmp_path / "grey.mp4")
    sale = {"till_id": "till-r", "transaction_id": "r-1"}
    with live_run(tmp_path, tiny_model, video, loop=True) as run:
        good = run.config.read_text()
        assert run.post({"type": "transaction_start", **sale}) == 202
        assert run.post({"type": "item_scanned", "category": "wine", **sale}) == 202
        wait_for(run.db, "SELECT id FROM transactions WHERE restricted_items = 1")
        for number, (name, text) in enumerate([*BROKEN.items(), ("fifo", None)], start=2):
            run.config.unlink()
            if text is None:
                os.mkfifo(run.config)
            else:
                run.config.write_text(text)
            run.process.send_signal(signal.SIGHUP)
            wait_for(run.db, "SELECT id FROM runs WHERE id = ? AND status = 'running'", number, timeout=30)
            run.wait_ready()
            assert run.process.poll() is None, f"{name}: {run.log()}"
        run.config.unlink()
        run.config.write_text(good)
        assert run.post({"type": "transaction_end", **sale}) == 202
        wait_for(run.db, "SELECT id FROM alerts WHERE kind = 'flag'")
        assert run.stop() == 0, run.log()
    kept = [line for line in run.log().splitlines() if "keeping the previous configuration" in line]
    assert len(kept) == 4 and "Traceback" not in run.log(), run.log()
    assert all(str(run.config) in line for line in kept)
    assert "line 2: '2026-02-30' cannot be read as a date" in kept[0]
    assert "pos: the section is empty" in kept[2] and "is a FIFO, not a config file" in kept[3]
    assert query(run.db, "SELECT DISTINCT status FROM runs") == [("stopped",)]
    assert query(run.db, "SELECT run_id, status FROM transactions") == [(1, "completed")]
