"""POS events that do not fit say which field and what it takes, in a replay script (with its line) and over
HTTP alike."""

from __future__ import annotations

import json

import pytest

from edge.challenge.events import BadEvent, load_script, parse_event
from edge.errors import PosError

START = {"type": "transaction_start", "till_id": "till-1"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ts", "yesterday", "ts: must be a number (Unix seconds) or an ISO 8601 date-time"),
        ("ts", [1], "ts: must be a number (Unix seconds) or an ISO 8601 date-time"),
        ("t", "soon", "t: must be a number of seconds from the start of the video, 0 or more"),
        ("t", -1, "t: must be a number of seconds from the start of the video, 0 or more"),
    ],
)
def test_a_bad_time_says_what_it_takes(field, value, message):
    with pytest.raises(BadEvent) as error:
        parse_event({**START, field: value})
    assert str(error.value).startswith(message) and f"(got {value!r})" in str(error.value)
    assert ".float" not in str(error.value)


def test_times_that_fit_are_accepted():
    assert parse_event({**START, "ts": 1764400000.5, "t": 2}).t == 2
    assert parse_event({**START, "ts": "2026-11-22T09:00:00Z"}).ts.year == 2026


def test_a_script_names_its_file_and_line(tmp_path):
    script = tmp_path / "pos.jsonl"
    script.write_text(json.dumps({**START, "t": 0.5}) + "\n" + json.dumps({**START, "t": 1, "ts": "noon"}) + "\n")
    with pytest.raises(PosError, match=r"pos.jsonl line 2: ts: must be a number \(Unix seconds\)"):
        load_script(script)


@pytest.mark.parametrize("t", ["1e12", "Infinity"])
def test_a_script_time_past_any_date_the_log_can_write_is_refused_with_its_line(tmp_path, t):
    """Such a `t` used to load, then end the replay in an internal error while recording it, before the
    replay's open transactions got their flags."""
    script = tmp_path / "pos.jsonl"
    end = '{"type": "transaction_end", "till_id": "t", "t": ' + t + "}"  # Infinity: not what json.dumps writes
    script.write_text(json.dumps({**START, "t": 0.5}) + "\n" + end + "\n")
    with pytest.raises(PosError, match=r"pos.jsonl line 2: t: must be a number of seconds .* up to 1000000000"):
        load_script(script)


@pytest.mark.parametrize(
    ("field", "value"), [("cashier_id", "c\u00001"), ("till_id", "till\n2"), ("name", "beer\x1b[2J")]
)
def test_a_control_character_in_a_text_field_is_refused_naming_the_field(field, value):
    """A NUL used to be accepted here and then refused by the chain's PostgreSQL, so the record never got there."""
    event = {"type": "item_scanned", "till_id": "t1", "transaction_id": "x", field: value}
    with pytest.raises(BadEvent, match=rf"^{field}: a control character .* is not allowed$") as caught:
        parse_event(event)
    assert caught.value.status == 422
    assert parse_event({**event, field: "Kasse 2 · Ölweg ✓"}).model_dump()[field] == "Kasse 2 · Ölweg ✓"
