"""The live POS endpoint over real HTTP: acknowledged only once committed, bad requests answered with a
4xx and a JSON error, counted and recorded, and the service carries on."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from edge.challenge.server import PosServer
from edge.config import PosConfig

from pos_http import GOOD, request, serving, stored


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path) as (pos, db):
        yield pos, db


def test_an_event_is_acknowledged_only_once_it_is_committed(server):
    pos, db = server
    status, reply = request(pos.port, json.dumps(GOOD).encode())
    assert status == 202 and reply["status"] == "accepted"
    rows = stored(db)  # a separate connection sees it at once: the commit came before the reply
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == [(reply["id"], "item_scanned", "till-1", "c7")]
    event, t = pos.events.get_nowait()
    assert event.category == "wine" and t >= 0


BAD = {
    "malformed JSON": (b'{"type": "item_scanned", ', 400, "not valid JSON"),
    "not an object": (b"[1, 2]", 400, "JSON object"),
    "unknown type": (json.dumps({**GOOD, "type": "refund"}).encode(), 422, "'type' must be one of"),
    "missing field": (json.dumps({"type": "id_checked", "till_id": "t"}).encode(), 422, "result"),
    "missing till": (json.dumps({"type": "transaction_start"}).encode(), 422, "till_id"),
    "wrong type": (json.dumps({**GOOD, "till_id": 5}).encode(), 422, "till_id"),
    "string for boolean": (json.dumps({**GOOD, "age_restricted": "yes"}).encode(), 422, "age_restricted"),
    "bad result": (json.dumps({"type": "id_checked", "till_id": "t", "result": "maybe"}).encode(), 422, "result"),
    "unknown field": (json.dumps({**GOOD, "age_restrited": True}).encode(), 422, "age_restrited"),
    "oversized": (json.dumps({**GOOD, "name": "x" * 5000}).encode(), 413, "exceeds 4096"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_events_get_a_4xx_are_counted_and_the_service_carries_on(server, case):
    pos, db = server
    body, expected_status, words = BAD[case]
    status, reply = request(pos.port, body)
    assert status == expected_status and words in reply["error"]
    assert pos.rejected == 1 and stored(db) == []
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT http_status FROM pos_rejects").fetchall() == [(expected_status,)]
    assert request(pos.port, json.dumps(GOOD).encode())[0] == 202
    assert request(pos.port, None, path="/health")[1] == {"status": "ok", "accepted": 1, "rejected": 1}


def test_token_and_path_are_checked(server):
    pos, db = server
    assert request(pos.port, json.dumps(GOOD).encode(), token=None)[0] == 401
    assert request(pos.port, json.dumps(GOOD).encode(), token="wrong")[0] == 401
    assert request(pos.port, json.dumps(GOOD).encode(), path="/other")[0] == 404
    assert pos.rejected == 3 and stored(db) == []


def test_a_port_in_use_is_a_config_error():
    first = PosServer(PosConfig(port=0))
    try:
        with pytest.raises(Exception, match=r"pos.port") as error:
            PosServer(PosConfig(port=first.port))
        assert error.value.exit_code == 2
    finally:
        first.sock.close()
