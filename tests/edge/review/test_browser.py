"""The review app in a real browser: Playwright drives Debian's chromium against a uvicorn server over a
copy of the replayed scenario's event log. Set AGECAM_SCREENSHOTS=DIR to keep screenshots of each page
at 1280 and 390 px wide."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edge.config import load_config

from review_app import PASSWORD, ZONE, contrast, scenario_day

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The tables whose columns go past their scroll box, by their first header.
CLIPPED = """[...document.querySelectorAll('div.scroll')].filter(d => d.scrollWidth > d.clientWidth)
    .map(d => d.querySelector('th').textContent)"""
# The fills of a flag's timeline markers (POS events, agecam's alerts and flags).
MARKS = "[...document.querySelectorAll('svg.timeline circle, svg.timeline polygon')].map(e => getComputedStyle(e).fill)"
# Where the words of the transactions page's checkbox label are drawn.
CHECKBOX_WORDS = """(() => {
    const box = document.querySelector('input[name=required]'), range = document.createRange();
    range.setStartAfter(box);
    range.setEnd(box.parentElement, box.parentElement.childNodes.length);
    const r = range.getBoundingClientRect();
    return {left: r.left, top: r.top, bottom: r.bottom};
})()"""
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium); .ci/run installs it"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, default_run, password_hash) -> Iterator[tuple[str, Path]]:
    """uvicorn serving the app on a free loopback port, in a thread; yields its URL and database."""
    import uvicorn

    from edge.review.app import create_app

    folder = tmp_path_factory.mktemp("browser")
    db = folder / "agecam.db"
    shutil.copy(default_run[2], db)
    accounts = {
        name: {"role": role, "password_hash": password_hash} for name, role in (("rita", "reviewer"), ("vic", "viewer"))
    }
    data = yaml.safe_load(default_run[1].read_text()) | {"review": {"timezone": ZONE, "accounts": accounts}}
    (folder / "config.yaml").write_text(yaml.safe_dump(data))
    app = create_app(load_config(folder / "config.yaml"), db)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", db
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def _log_in(page, base: str, name: str, target: str = "/") -> None:
    page.goto(base + target)
    assert "/login" in page.url, "a page without a login sends the browser to log in"
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()


def _shoot(page, name: str) -> None:
    folder = os.environ.get("AGECAM_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"agecam-review-{name}.png"), full_page=True)


def test_a_reviewer_filters_opens_reviews_exports_and_logs_out(server, browser, tmp_path):
    base, db = server
    day = scenario_day(db)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    _log_in(page, base, "rita", f"/flags?from={day}&to={day}")
    assert page.url.startswith(f"{base}/flags")
    with sqlite3.connect(db) as connection:
        expected = {
            row[0] for row in connection.execute("SELECT id FROM alerts WHERE kind = 'flag' AND cashier_id = 'bob'")
        }
    page.select_option("select[name=cashier]", "bob")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    shown = {int(text.lstrip("#")) for text in page.locator("table a[href^='/flags/']").all_inner_texts()}
    assert shown == expected and "cashier=bob" in page.url
    assert page.evaluate(CLIPPED) == [], "the flags table fits a 1280 px screen: no column behind a scroll bar"
    _shoot(page, "flags-1280")
    flag_id = min(shown)
    with sqlite3.connect(db) as connection:  # the run recorded policy.threshold 38 (the scenario's scale)
        connection.execute("UPDATE alerts SET p_under = 0.31, severity = 'medium' WHERE id = ?", (flag_id,))
    page.click(f"a[href='/flags/{flag_id}']")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith(f"Flag #{flag_id}")
    assert page.locator("dd.risk").inner_text() == "31% likely under 38", "the chance beside the estimate"
    assert page.locator("td", has_text="(restricted)").count() >= 1, "the timeline's table shows the restricted scan"
    # Timeline markers are graphics: 3:1 on white (WCAG 1.4.11). The medium flag's orange was 2.9:1.
    marks = page.evaluate(MARKS)
    assert "Medium" in page.locator("svg.timeline").inner_html() and marks
    assert [fill for fill in marks if contrast(fill) < 3] == []
    page.select_option("select[name=outcome]", "confirmed_underage")
    page.fill("textarea[name=note]", "CCTV shows no ID was asked for")
    page.click("form.review button[type=submit]")
    page.wait_for_load_state()
    audit_row = page.locator("table.audit tbody tr").first
    assert audit_row.locator("td").all_inner_texts()[1:] == [
        "rita", "Open (not reviewed)", "Confirmed underage", "CCTV shows no ID was asked for",
    ]  # fmt: skip
    assert page.locator("strong.outcome").inner_text() == "Confirmed underage"
    _shoot(page, "flag-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    _shoot(page, "flag-390")
    page.goto(f"{base}/?from={day}&to={day}")
    _shoot(page, "overview-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    _shoot(page, "overview-1280")

    page.goto(f"{base}/flags?from={day}&to={day}")
    with page.expect_download() as download:
        page.click("a.csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert {row["Flag"] for row in rows} >= {f"#{flag_id}"}
    assert next(row for row in rows if row["Flag"] == f"#{flag_id}")["Outcome"] == "Confirmed underage"
    assert next(row for row in rows if row["Flag"] == f"#{flag_id}")["Chance under the Challenge age"] == (
        "31% likely under 38"
    )

    page.goto(f"{base}/transactions?from={day}&to={day}")
    assert page.locator("table tbody tr").count() >= 1
    # The checkbox stood above its words, as the date fields stand above theirs: it belongs before them, in line.
    box, words = page.locator("input[name=required]").bounding_box(), page.evaluate(CHECKBOX_WORDS)
    assert box["x"] + box["width"] <= words["left"], "the checkbox comes before its words"
    assert box["y"] < words["bottom"] and box["y"] + box["height"] > words["top"], "on the same line as them"
    assert page.evaluate(CLIPPED) == [], "the transactions table fits a 1280 px screen"

    page.click("header .logout button")
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    page.goto(f"{base}/flags")
    assert "/login" in page.url
    context.close()


def test_a_viewer_cannot_change_an_outcome_and_a_post_without_csrf_is_refused(server, browser):
    base, db = server
    with sqlite3.connect(db) as connection:
        query = "SELECT min(id) FROM alerts WHERE kind = 'flag' AND cashier_id != 'bob'"  # not the one reviewed above
        flag_id = connection.execute(query).fetchone()[0]
    viewer = browser.new_context()
    page = viewer.new_page()
    _log_in(page, base, "vic", f"/flags/{flag_id}")
    assert page.locator("form.review").count() == 0
    assert page.get_by_text("only reviewers can set an outcome").count() == 1
    token = page.locator("header input[name=csrf]").get_attribute("value")
    forged = page.request.post(f"{base}/flags/{flag_id}/outcome", form={"csrf": token, "outcome": "false_alarm"})
    assert forged.status == 403
    viewer.close()

    reviewer = browser.new_context()
    page = reviewer.new_page()
    _log_in(page, base, "rita", f"/flags/{flag_id}")
    refused = page.request.post(f"{base}/flags/{flag_id}/outcome", form={"outcome": "false_alarm"})
    assert refused.status == 403 and "security token" in refused.text()
    reviewer.close()
    with sqlite3.connect(db) as connection:
        changes = connection.execute("SELECT count(*) FROM flag_reviews WHERE alert_id = ?", (flag_id,)).fetchone()[0]
    assert changes == 0
