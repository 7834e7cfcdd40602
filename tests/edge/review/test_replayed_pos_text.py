"""What `agecam events`, `stats` and `report` (and the flag page) make of a real replay of the demo clip whose
POS script carries hostile text (markup, formulas, a right-to-left override) and two sales that the POS never
ended: POS text is data wherever it is shown, an unresolved flag says why, and a period that holds no time is
refused in one line (exit 2) rather than answered with an empty list or a report of a reversed period."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import cli
from edge.store.eventlog import EventLog

from review_app import demo_config, log_in, one_flag, scenario_day

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE, never closed: it reverses what follows it on the line
TILL = f"<b>till</b>{RLO}1"
CASHIER = '=HYPERLINK("http://x","y")'
OVERRIDING = f"bob{RLO}"  # the second sale's cashier
ROOT = Path(__file__).resolve().parents[3]


def _script() -> list[dict]:
    """Two restricted sales on the demo clip, neither ended: the second supersedes the first, and the
    replay's end closes the second (both unresolved)."""
    first, second = {"till_id": TILL, "cashier_id": CASHIER}, {"till_id": TILL, "cashier_id": OVERRIDING}
    return [
        {"t": 0.2, "type": "transaction_start", "transaction_id": "U1", **first},
        {"t": 0.9, "type": "item_scanned", "sku": "1", "category": "wine", "transaction_id": "U1", **first},
        {"t": 1.5, "type": "transaction_start", "transaction_id": "U2", **second},
        {"t": 2.4, "type": "item_scanned", "sku": "2", "category": "beer", "transaction_id": "U2", **second},
    ]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, assets) -> tuple[Path, Path]:
    """The demo clip replayed with the demo settings and the script above: config and event log."""
    folder = tmp_path_factory.mktemp("hostile-pos")
    config = demo_config(folder, review={"timezone": "Europe/London"})
    script = folder / "pos.jsonl"
    script.write_text("".join(json.dumps(event) + "\n" for event in _script()))
    db = folder / "agecam.db"
    clip = assets / "videos" / "face-demographics-walking-and-pause.gif"
    args = ["--config", config, "--log-level", "WARNING", "replay", clip, "--fast", "--pos", script, "--db", db]
    assert cli.main([str(arg) for arg in args]) == 0
    return config, db


def test_a_period_that_holds_no_time_is_refused(agecam, replayed, tmp_path):
    config, db = replayed
    out = tmp_path / "report.html"
    for command in (["events"], ["stats"], ["report", "--out", out]):
        result = agecam("--config", config, *command, "--db", db, "--since", "2026-12-03", "--until", "2026-12-01")
        assert result.code == 2, command
        assert result.err.strip().splitlines() == [
            "agecam: error: --since 2026-12-03 is not before --until 2026-12-01: swap them"
        ]
    assert not out.exists(), "no report of a reversed period"


def test_a_report_bound_beyond_the_log_is_refused(agecam, replayed, tmp_path):
    config, db = replayed
    out = tmp_path / "report.html"
    late = agecam("--config", config, "report", "--db", db, "--out", out, "--since", "2999-01-01")
    early = agecam("--config", config, "report", "--db", db, "--out", out, "--until", "2000-01-01")
    assert (late.code, early.code) == (2, 2) and not out.exists()
    assert "--since 2999-01-01 is not before now or the log's latest record" in late.err
    assert "--until 2000-01-01 is not after the log's first record" in early.err


def test_table_output_shows_bidi_controls_instead_of_sending_them(agecam, replayed):
    config, db = replayed
    result = agecam("--config", config, "events", "--db", db, "--kind", "flag")
    assert result.code == 0 and RLO not in result.out
    assert "<b>till</b>\\u202e1" in result.out


def test_csv_and_json_keep_pos_text_as_data(agecam, replayed):
    config, db = replayed
    csv_text = agecam("--config", config, "events", "--db", db, "--kind", "flag", "--format", "csv").out
    assert "'=HYPERLINK" in csv_text and ",=" not in csv_text
    rows = json.loads(agecam("--config", config, "events", "--db", db, "--kind", "flag", "--format", "json").out)
    assert {row["till_id"] for row in rows} == {TILL} and {row["cashier_id"] for row in rows} == {CASHIER, OVERRIDING}


def test_the_report_isolates_pos_text_and_says_why_a_sale_is_flagged(agecam, replayed, tmp_path):
    config, db = replayed
    out = tmp_path / "report.html"
    assert agecam("--config", config, "report", "--db", db, "--out", out).code == 0
    page = out.read_text()
    assert "<b>till" not in page and "&lt;b&gt;till&lt;/b&gt;" in page
    # The till is named in a running line: an override left open there would reverse the rest of the line.
    facts = page.split('<p class="facts">', 1)[1].split("</p>", 1)[0]
    assert f"<bdi>&lt;b&gt;till&lt;/b&gt;{RLO}1</bdi>" in facts
    # In a chart's tooltip the cashier is isolated too, so the override cannot reverse the share after it.
    assert f"<title>\u2068{OVERRIDING}\u2069: 0.0% (0 of 1)</title>" in page
    flags = page.split("<h2>Flags (2)</h2>", 1)[1]
    assert flags.count("Never ended on the POS, no ID check passed") == 2
    assert "No completed sale had a restricted item in this period." in page


def test_the_flag_page_says_why_a_sale_is_unresolved(replayed, app_client):
    _, db = replayed
    client = app_client()
    client.app.state.context.db_path = db  # the app over the replay
    log_in(client, "vic")
    first = one_flag(db)
    page = client.get(f"/flags/{first}").text
    assert "Never ended on the POS, no ID check passed" in page
    assert "(unresolved: a new sale started on the till before this one ended)" in page
    assert f"till <bdi>&lt;b&gt;till&lt;/b&gt;{RLO}1</bdi>" in page
    period = f"from={scenario_day(db)}&to={scenario_day(db)}"
    coaching = client.get(f"/compliance?{period}").text.split("Needs coaching:", 1)[1].split("</p>", 1)[0]
    assert f"<bdi>{OVERRIDING}</bdi>" in coaching, "the running list of cashiers isolates each one"
    assert client.get(f"/transactions?{period}&cashier={OVERRIDING}").text.count(f"<bdi>{OVERRIDING}</bdi>") == 1


def test_a_report_of_a_log_without_records_until_the_past_names_the_problem(agecam, replayed, tmp_path):
    config, _ = replayed
    fresh = tmp_path / "fresh.db"
    EventLog(fresh).close()  # a log as agecam creates it, before any run
    out = tmp_path / "report.html"
    result = agecam("--config", config, "report", "--db", fresh, "--out", out, "--until", "2026-01-01")
    assert result.code == 2 and not out.exists()
    assert "--until 2026-01-01 is not after now" in result.err and "the log has no records yet" in result.err
    assert agecam("--config", config, "report", "--db", fresh, "--out", out).code == 0, "no bounds: an empty report"
