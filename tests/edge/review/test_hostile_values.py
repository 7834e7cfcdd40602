"""Values that came from a POS (cashier ids, till ids) are data: they never become spreadsheet formulas,
terminal escape sequences or markup in what agecam writes for people."""

from __future__ import annotations

import csv
import html
import io
import shutil
import sqlite3
from pathlib import Path

from review_app import log_in, scenario_day

MATHTEXT = "$\\foo$"  # matplotlib's mathtext parser fails on it
FORMULA = '=HYPERLINK("http://x","y")'
ESCAPES = "\x1b[2J\x1b]0;owned\x07cashier"  # clear the screen, set the terminal's title


def _log_with_cashier(default_run, tmp_path: Path, cashier: str) -> tuple[Path, Path]:
    """A copy of the scenario's event log where every transaction, alert and flag has this cashier and till."""
    _, config, db = default_run
    copy = tmp_path / "hostile.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("UPDATE alerts SET cashier_id = ?, till_id = ?", (cashier, cashier))
        connection.execute("UPDATE transactions SET cashier_id = ?, till_id = ?", (cashier, cashier))
    return config, copy


def test_csv_cells_that_start_a_formula_are_escaped(agecam, default_run, tmp_path):
    config, db = _log_with_cashier(default_run, tmp_path, FORMULA)
    text = agecam("--config", config, "events", "--db", db, "--kind", "flag", "--format", "csv").out
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(row["cashier_id"] == "'" + FORMULA for row in rows)
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "@")]


def test_table_output_shows_control_characters_instead_of_sending_them(agecam, default_run, tmp_path):
    config, db = _log_with_cashier(default_run, tmp_path, ESCAPES)
    result = agecam("--config", config, "events", "--db", db, "--kind", "flag")
    assert result.code == 0
    assert "\x1b" not in result.out and "\x07" not in result.out
    assert "\\x1b[2J" in result.out


def test_report_renders_a_cashier_named_like_mathtext(agecam, default_run, tmp_path):
    config, db = _log_with_cashier(default_run, tmp_path, MATHTEXT)
    out = tmp_path / "report.html"
    result = agecam("--config", config, "report", "--db", db, "--out", out)
    assert result.code == 0, result.err
    assert html.escape(MATHTEXT) in out.read_text()


MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def test_markup_in_pos_values_is_shown_as_text_in_the_report_and_the_app(agecam, default_run, tmp_path, app_client):
    config, db = _log_with_cashier(default_run, tmp_path, MARKUP)
    out = tmp_path / "report.html"
    assert agecam("--config", config, "report", "--db", db, "--out", out).code == 0
    client = app_client()
    client.app.state.context.db_path = db  # the app over the hostile copy
    log_in(client, "vic")
    period = f"from={scenario_day(db)}&to={scenario_day(db)}"
    pages = [out.read_text(), client.get(f"/flags?{period}").text, client.get(f"/compliance?{period}").text]
    for index, page in enumerate(pages):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, index
