"""benchmarks/review_year.py at a small scale: it writes a log through the store's code, every page it
times answers 200, and it reports p50/p95 per page."""

from __future__ import annotations

import json
import sqlite3

import review_year


def test_the_year_benchmark_writes_a_log_and_times_every_page(tmp_path, capsys):
    db = tmp_path / "year.db"
    args = ["--db", str(db), "--customers", "3000", "--restricted", "150", "--flags", "20", "--days", "10"]
    assert review_year.main([*args, "--rounds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    written = report["written"]
    assert 2500 < written["customers"] < 3500 and 100 < written["restricted"] < 220 and written["flags"] > 5
    assert set(report["pages"]) == set(review_year.pages(db))
    assert all(page["p95_ms"] >= page["p50_ms"] > 0 for page in report["pages"].values())
    with sqlite3.connect(db) as connection:
        statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        pos_events = connection.execute("SELECT count(*) FROM pos_events").fetchone()[0]
    assert statuses == {"stopped": 9, "running": 1} and pos_events >= 3 * written["transactions"]
