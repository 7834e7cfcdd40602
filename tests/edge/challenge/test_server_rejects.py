"""Refused POS requests (issue #14): a body that breaks the JSON parser is the client's fault (400, never 503
"retry"), and a flood of refusals costs one row and at most two short log lines per status and minute."""

from __future__ import annotations

import json
import logging

import pytest

from pos_http import GOOD, raw, rejects, request, serving, stored

POISON = {
    "5,000-digit number": b'{"type": "item_scanned", "till_id": "t", "ts": ' + b"9" * 5000 + b"}",
    "arrays nested 1,000 deep": b"[" * 1000 + b"]" * 1000,
    "objects nested 1,000 deep": b'{"a": ' * 1000 + b"1" + b"}" * 1000,
}


@pytest.mark.parametrize("case", list(POISON))
def test_a_body_that_breaks_the_parser_is_400_counted_and_recorded(tmp_path, case):
    with serving(tmp_path, max_body_bytes=16384) as (pos, db):
        status, reply = request(pos.port, POISON[case])
        assert status == 400 and "retry" not in reply["error"]
        assert pos.rejected == 1 and rejects(db) == [(400, 1)] and stored(db) == []
        assert request(pos.port, json.dumps(GOOD).encode())[0] == 202


def test_a_flood_of_refusals_is_one_row_and_two_short_log_lines_per_status(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="edge.challenge")
    with serving(tmp_path) as (pos, db):
        for _ in range(50):
            assert request(pos.port, json.dumps(GOOD).encode(), token="wrong")[0] == 401
        for _ in range(30):
            assert request(pos.port, json.dumps(GOOD).encode(), path="/" + "p" * 6000)[0] == 404
        huge_path = b"POST /" + b"q" * 60000 + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        assert raw(pos.port, huge_path).startswith(b"HTTP/1.1 431")
        assert request(pos.port, None, path="/health")[1] == {"status": "ok", "accepted": 0, "rejected": 81}
        assert rejects(db) == [(401, 1), (404, 1), (431, 1)], "the first of each status is written at once"
        pos.stop()  # closes the tally's windows: each row gets its count
        assert rejects(db) == [(401, 50), (404, 30), (431, 1)]
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("edge.challenge")]
    assert len(lines) <= 5, lines  # 401 and 404: the first and a summary each; 431: the first
    assert max(len(line) for line in lines) <= 300
