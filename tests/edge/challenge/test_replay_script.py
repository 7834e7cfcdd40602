"""`agecam replay --pos SCRIPT` on scripts as a careless or hostile engineer writes them: line ends and text that
JSON allows, bytes that are not UTF-8, a line without end, an empty script or an empty option. Each is read as
written or refused in one line (exit 11, or 2 for the command line) before any run, with bounded memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from edge.challenge.events import MAX_LINE_BYTES, load_script
from edge.errors import PosError

START = {"type": "transaction_start", "till_id": "till-1", "transaction_id": "A"}
SCAN = {"type": "item_scanned", "till_id": "till-1", "transaction_id": "A", "category": "wine"}
END = {"type": "transaction_end", "till_id": "till-1", "transaction_id": "A"}


def line(event: dict, t: float) -> str:
    return json.dumps({**event, "t": t}, ensure_ascii=False)


@pytest.fixture
def clip(assets: Path) -> Path:
    return assets / "videos" / "face-demographics-walking-and-pause.mp4"


def error_line(stderr: str) -> str:
    lines = [text for text in stderr.splitlines() if text.startswith("agecam: error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_a_line_break_that_json_allows_inside_a_string_keeps_the_event_whole(tmp_path, separator):
    """str.splitlines() cut the line there: a valid event (the endpoint takes it) was refused as bad JSON."""
    script = tmp_path / "pos.jsonl"
    name = f"Rioja{separator}2019"
    text = "\n".join([line(START, 0.5), line({**SCAN, "name": name}, 1), line(END, 2)]) + "\n"
    script.write_text(text, encoding="utf-8")
    events = load_script(script)
    assert [event.type for event in events] == ["transaction_start", "item_scanned", "transaction_end"]
    assert events[1].name == name


def test_the_line_named_is_the_one_an_editor_shows_after_a_form_feed(tmp_path):
    script = tmp_path / "pos.jsonl"
    script.write_text(line(START, 0.5) + "\n\x0c\n{broken\n")  # a page break of a printed listing: a blank line
    with pytest.raises(PosError, match=r"pos.jsonl line 3: not valid JSON"):
        load_script(script)


def test_a_line_that_is_not_utf8_is_named_with_what_to_do(tmp_path):
    script = tmp_path / "pos.jsonl"
    script.write_text(line(START, 0.5) + "\n" + line({**SCAN, "name": "Müller"}, 1) + "\n", encoding="cp1252")
    with pytest.raises(PosError, match=r"pos.jsonl line 2: not UTF-8 text \(byte \d+\): save the script as UTF-8"):
        load_script(script)


def test_a_bom_crlf_or_cr_endings_blank_lines_and_times_out_of_order_read_as_written(tmp_path):
    for ending in ("\r\n", "\r", "\n"):
        script = tmp_path / "pos.jsonl"
        lines = [line(END, 2), "", "   ", line(START, 0.5), line(SCAN, 1)]
        script.write_bytes(b"\xef\xbb\xbf" + ending.join(lines).encode() + ending.encode())
        assert [event.t for event in load_script(script)] == [0.5, 1, 2], repr(ending)


def replay_with_memory_limit(config: Path, clip: Path, script: Path | str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, whose memory is capped at 1 GiB: reading without bound fails there (a
    MemoryError) rather than taking the machine's memory."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    command = [sys.executable, "-m", "edge.cli", "--config", config, "replay", clip, "--fast", "--pos", script]
    return subprocess.run([str(arg) for arg in command], preexec_fn=limit, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("padding", [MAX_LINE_BYTES, 1_000_000])
def test_a_line_too_long_for_an_event_is_refused_before_any_run(write_config, clip, tmp_path, padding):
    """A 1 MB line of spaces is still valid JSON: it was read whole (5 bytes of memory per byte of the file)."""
    script = tmp_path / "pos.jsonl"
    script.write_text(line(START, 0.5) + "\n" + line(END, 2)[:-1] + " " * padding + "}\n")
    result = replay_with_memory_limit(write_config(), clip, script)
    assert result.returncode == 11
    assert f"pos.jsonl line 2 is over {MAX_LINE_BYTES:,} bytes: give one event a line" in error_line(result.stderr)
    assert not (tmp_path / "state").exists()


def test_an_endless_script_is_refused_with_bounded_memory(write_config, clip, tmp_path):
    """/dev/zero was read to the end of memory: a MemoryError and a traceback, or the machine's memory."""
    result = replay_with_memory_limit(write_config(), clip, "/dev/zero")
    assert result.returncode == 11 and "/dev/zero line 1 is over" in error_line(result.stderr)


def test_a_script_without_events_is_refused_before_any_run(agecam, write_config, clip, tmp_path):
    """A script truncated to nothing replayed the video without POS and exit 0: a test that passed on nothing."""
    for text in ("", "\n \n\r\n"):
        script = tmp_path / "pos.jsonl"
        script.write_text(text)
        result = agecam("--config", write_config(), "replay", clip, "--fast", "--pos", script)
        assert result.code == 11 and "pos.jsonl has no events" in error_line(result.err)
    assert not (tmp_path / "state").exists()


def test_an_empty_pos_option_is_refused_rather_than_replaying_without_pos(agecam, write_config, clip, tmp_path):
    """--pos "$SCRIPT" with the variable unset replayed the video without POS, exit 0."""
    result = agecam("--config", write_config(), "replay", clip, "--fast", "--pos", "")
    assert result.code == 2 and "--pos is empty: give a path" in error_line(result.err)
    assert not (tmp_path / "state").exists()
