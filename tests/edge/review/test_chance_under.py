"""P(real age < the Challenge age) beside every estimate that loss-prevention staff read: a flag's page, the
flags and transactions lists and their CSV, and the e-mailed report. It reads '31% likely under 38' with
the age its run recorded (the scenario's policy.threshold, 38), the configured one where the run recorded
none, and '—' for a row from before p_under."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import sqlite3
from pathlib import Path

import yaml

from edge.review.listing import RISK_HEADER
from edge.review.present import risk_text

from review_app import scenario_day

CONFIGURED = 25  # the review's config; the scenario's runs recorded 38


def _with_chances(db: Path) -> dict[str, int | str]:
    """The first flag and its transaction at p_under 0.31, the second flag and its transaction from before
    p_under (NULL); returns the flags' ids and their transactions' POS ids."""
    with sqlite3.connect(db) as connection:
        query = "SELECT id, transaction_id FROM alerts WHERE kind = 'flag' ORDER BY id LIMIT 2"
        first, second = connection.execute(query).fetchall()
        for (_, txn), value in ((first, 0.31), (second, None)):
            connection.execute("UPDATE alerts SET p_under = ? WHERE transaction_id = ?", (value, txn))
            connection.execute("UPDATE transactions SET p_under = ? WHERE id = ?", (value, txn))
        pos_ids = dict(connection.execute("SELECT id, pos_transaction_id FROM transactions"))
    return {"flag": first[0], "old_flag": second[0], "txn": pos_ids[first[1]], "old_txn": pos_ids[second[1]]}


def _configured(review_config, threshold: float = CONFIGURED) -> Path:
    path = review_config()
    data = yaml.safe_load(path.read_text())
    data["policy"]["threshold"] = threshold
    path.write_text(yaml.safe_dump(data))
    return path


def _forget_recorded_thresholds(db: Path) -> None:
    """Runs whose config says nothing of the policy (as SimulatedTill's '{}'): the configured age is used."""
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE runs SET config_json = '{}'")


def test_a_flags_page_shows_the_chance_with_the_age_its_run_recorded(app_client, review_config, review_db):
    ids = _with_chances(review_db)
    client = app_client(_configured(review_config), login="vic")
    risk = re.compile(r'<dt>Chance under the Challenge age</dt><dd class="risk">([^<]*)</dd>')
    assert risk.search(client.get(f"/flags/{ids['flag']}").text)[1] == "31% likely under 38"
    assert risk.search(client.get(f"/flags/{ids['old_flag']}").text)[1] == "—", "a flag from before p_under"
    _forget_recorded_thresholds(review_db)
    assert risk.search(client.get(f"/flags/{ids['flag']}").text)[1] == f"31% likely under {CONFIGURED}"


def test_the_flags_and_transactions_lists_show_it_beside_the_estimate(app_client, review_config, review_db):
    ids = _with_chances(review_db)
    client = app_client(_configured(review_config), login="vic")
    period = f"from={scenario_day(review_db)}&to={scenario_day(review_db)}"

    def rows(page: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(client.get(f"/{page}?{period}&format=csv").text)))

    flags = {row["Flag"]: row for row in rows("flags")}
    header = list(next(iter(flags.values())))
    assert header.index(RISK_HEADER) == header.index("Age estimate (interval)") + 1
    assert flags[f"#{ids['flag']}"][RISK_HEADER] == "31% likely under 38"
    assert flags[f"#{ids['old_flag']}"][RISK_HEADER] == "—"
    transactions = {row["Transaction"]: row for row in rows("transactions")}
    assert transactions[ids["txn"]][RISK_HEADER] == "31% likely under 38"
    assert transactions[ids["old_txn"]][RISK_HEADER] == "—"
    page = client.get(f"/flags?{period}").text
    assert f'<th scope="col">{RISK_HEADER}</th>' in page and "<td>31% likely under 38</td>" in page
    _forget_recorded_thresholds(review_db)
    assert {row["Flag"]: row for row in rows("flags")}[f"#{ids['flag']}"][RISK_HEADER] == "31% likely under 25"


def _table(page: str, heading: str) -> list[dict[str, str]]:
    """The report's table under an <h2> starting with `heading`, as rows of header -> cell text."""
    section = page.split(f"<h2>{heading}", 1)[1].split("</table>", 1)[0]
    header = re.findall(r'<th scope="col">([^<]+)</th>', section)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", section)[1:]]
    return [dict(zip(header, map(html.unescape, row), strict=True)) for row in cells]


def test_the_report_shows_it_for_restricted_sales_and_flags(agecam, default_run, tmp_path):
    _, config, db = default_run
    copy = tmp_path / "agecam.db"
    shutil.copy(db, copy)
    ids = _with_chances(copy)
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(yaml.safe_load(config.read_text()) | {"policy": {"threshold": CONFIGURED}}))

    def report() -> str:
        out = tmp_path / "report.html"
        result = agecam("--config", site, "report", "--db", copy, "--out", out)
        assert result.code == 0, result.err
        return out.read_text()

    page = report()
    sales = {row["Transaction"]: row[RISK_HEADER] for row in _table(page, "Restricted sales")}
    assert sales[ids["txn"]] == "31% likely under 38" and sales[ids["old_txn"]] == "—"
    flags = {row["Transaction"]: row[RISK_HEADER] for row in _table(page, "Flags (")}
    assert flags[ids["txn"]] == "31% likely under 38" and flags[ids["old_txn"]] == "—"
    _forget_recorded_thresholds(copy)
    flags = {row["Transaction"]: row[RISK_HEADER] for row in _table(report(), "Flags (")}
    assert flags[ids["txn"]] == f"31% likely under {CONFIGURED}"


def test_a_near_certain_chance_never_reads_as_certain():
    assert risk_text({"p_under": 0.998, "threshold": 38.0}, CONFIGURED) == ">99% likely under 38"
    assert risk_text({"p_under": 0.004, "threshold": None}, CONFIGURED) == "<1% likely under 25"
    assert risk_text({"p_under": 0.5, "threshold": 17.5}, CONFIGURED) == "50% likely under 17.5"
    assert risk_text({"p_under": None, "threshold": 38.0}, CONFIGURED) == "—"
