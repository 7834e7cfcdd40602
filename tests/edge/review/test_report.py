"""`agecam report` on the replayed scenario: one self-contained page for e-mail that says what period,
till, time zone and generation time it covers, keeps empty hours, draws integer axes and honest empty
states, colours by one meaning per chart family, and lists the restricted sales with readable columns."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest
import yaml

from edge.review.svg import COMPLIANT, CUSTOMERS, NEEDS_COACHING, SEVERITY

from review_app import contrast

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DB_COLUMNS = ("till_id", "cashier_id", "pos_transaction_id", "age_low", "age_high", "check_required", "at")


def _report(agecam, default_run, tmp_path, *options: str, **review: object) -> str:
    _, config, db = default_run
    data = yaml.safe_load(config.read_text())
    data["review"] = {"timezone": "America/New_York", **review}
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(data))
    out = tmp_path / "report.html"
    result = agecam("--config", site, "report", "--db", db, "--out", out, *options)
    assert result.code == 0, result.err
    return out.read_text()


def _chart(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>", 1)[1].split("</svg>", 1)[0]


def test_report_is_self_contained_and_says_what_it_covers(agecam, default_run, tmp_path):
    page = _report(agecam, default_run, tmp_path)
    assert "<svg" in page and "<script" not in page and "<img" not in page
    assert not re.search(r'(src|href)="(https?:|//|file:|/)', page), "nothing is loaded or linked from elsewhere"
    facts = page.split('<p class="facts">', 1)[1].split("</p>", 1)[0]
    # The replayed scenario lasts about half a minute: within one minute its period shows seconds too.
    moment = r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?"
    assert re.search(f"Period <strong>{moment} to {moment}</strong>", facts)
    assert "times in <strong>America/New_York</strong>" in facts and "<strong><bdi>till-1</bdi></strong>" in facts
    assert re.search(r"generated \d{4}-\d\d-\d\d \d\d:\d\d", facts)


def test_a_period_within_one_minute_shows_its_seconds(agecam, default_run, tmp_path):
    # After a short replay the period read "05:59 to 05:59", as if it were empty.
    page = _report(agecam, default_run, tmp_path, "--since", "2026-12-03T05:59:29Z", "--until", "2026-12-03T05:59:34Z")
    assert "Period <strong>2026-12-03 00:59:29 to 2026-12-03 00:59:34</strong>" in page
    assert "<title>agecam report: 2026-12-03 00:59:29 to 2026-12-03 00:59:34</title>" in page


def test_report_leads_with_what_needs_action(agecam, default_run, tmp_path):
    # The flags a manager acts on came last, after the traffic chart, and compliance came after traffic too.
    page = _report(agecam, default_run, tmp_path)
    headings = re.findall(r"<h2>([^<(]+)", page)
    order = ["Flags by severity", "Flags by outcome", "Flags ", "ID-check compliance per cashier", "Restricted sales "]
    order += ["Age mix", "Customers by hour"]
    assert headings == order
    assert page.index('<section class="cards">') < page.index("<h2>Flags by severity</h2>")
    assert "Customers counted in each estimated age group." in page.split("<h2>Age mix</h2>", 1)[1].split("<svg", 1)[0]


def test_report_uses_readable_columns_and_times(agecam, default_run, tmp_path):
    page = _report(agecam, default_run, tmp_path)
    headers = re.findall(r'<th scope="col">([^<]+)</th>', page)
    assert "Age estimate (interval)" in headers and "Transaction" in headers
    assert not set(headers) & set(DB_COLUMNS)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{3}", page), "no millisecond ISO times"
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", page), "no ISO 'T' times"


def test_report_lists_the_restricted_sales_and_flags(agecam, default_run, tmp_path):
    _, _, db = default_run
    with sqlite3.connect(db) as connection:
        sales = connection.execute(
            "SELECT pos_transaction_id FROM transactions WHERE restricted_items > 0 AND status = 'completed'"
        ).fetchall()
        flags = connection.execute("SELECT count(*) FROM alerts WHERE kind = 'flag'").fetchone()[0]
    page = _report(agecam, default_run, tmp_path)
    listed = page.split(f"<h2>Restricted sales ({len(sales)})</h2>", 1)[1].split("</table>", 1)[0]
    assert [f"<td>{txn}</td>" in listed for (txn,) in sales] == [True] * len(sales)
    assert f"<h2>Flags ({flags})</h2>" in page
    assert "Sold without ID check" in page and "Open (not reviewed)" in page


def test_report_keeps_empty_hours_on_an_integer_axis(agecam, default_run, tmp_path):
    chart = _chart(_report(agecam, default_run, tmp_path), "Customers by hour")
    assert re.findall(r">(\d\d)</text>", chart) == [f"{hour:02d}" for hour in range(0, 24, 2)]
    ticks = [tick for tick in re.findall(r'text-anchor="end">([^<]+)</text>', chart)]
    assert all(tick.isdigit() for tick in ticks) and ticks[0] == "0"
    assert set(re.findall(r'<rect [^>]*fill="([^"]+)"', chart)) == {CUSTOMERS}


def test_report_colours_compliance_by_the_threshold_and_severity_by_severity(agecam, default_run, tmp_path):
    page = _report(agecam, default_run, tmp_path, compliance_threshold=0.4)
    compliance = _chart(page, "ID-check compliance per cashier")
    bars = re.findall(r'fill="([^"]+)"><title>([^:]+): ([\d.]+)%', compliance)
    assert bars and all(colour == (COMPLIANT if float(share) >= 40 else NEEDS_COACHING) for colour, _, share in bars)
    assert "Marked for coaching below 40%" in page
    severities = set(re.findall(r'<rect [^>]*fill="([^"]+)"', _chart(page, "Flags by severity")))
    assert severities and severities <= set(SEVERITY.values())


def test_an_empty_period_says_so_instead_of_drawing_empty_charts(agecam, default_run, tmp_path):
    page = _report(agecam, default_run, tmp_path, "--since", "2001-01-01", "--until", "2001-01-02")
    assert "<svg" not in page
    for message in ("No customers were counted", "No flags in this period.", "No completed sale had a restricted item"):
        assert message in page
    assert "No transaction needed an ID check in this period." in page
    assert "none with transactions in the period" in page


def test_a_threshold_between_whole_percents_reads_the_same_everywhere(agecam, default_run, tmp_path):
    page = _report(agecam, default_run, tmp_path, compliance_threshold=0.925)
    # Rounded, the text said 93% and the chart 92%: a cashier at 92.7% passed a threshold shown as 93%.
    assert "Marked for coaching below 92.5% of" in page
    assert "the dashed line is the 92.5% threshold" in page
    assert "below 93%" not in page and "the 92% threshold" not in page


def _edited(default_run, tmp_path, statement: str) -> tuple:
    """default_run with a copy of its event log changed by one SQL statement."""
    folder, config, db = default_run
    copy = tmp_path / "edited.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute(statement)
    return folder, config, copy


def _cards(page: str) -> list[tuple[int, str]]:
    """The headline cards as (number, the words after it up to a comma or bracket)."""
    cards = page.split('<section class="cards">', 1)[1].split("</section>", 1)[0]
    found = re.findall(r'<span class="n">([\d,]+)</span> ([^<,(]+)', cards)
    return [(int(n.replace(",", "")), words.strip()) for n, words in found]


def test_headline_cards_say_one_flag_and_two_flags(agecam, default_run, tmp_path):
    # "1 flags, 1 not reviewed": the first line a manager reads looked like an unfilled template.
    first_flag_only = "DELETE FROM alerts WHERE kind = 'flag' AND id > (SELECT min(id) FROM alerts WHERE kind = 'flag')"
    page = _report(agecam, _edited(default_run, tmp_path, first_flag_only), tmp_path)
    cards = _cards(page)
    assert (1, "flag") in cards
    plurals = {"customers", "sales", "checks", "alerts", "flags"}
    for n, words in cards:
        assert bool(set(words.split()) & plurals) == (n != 1), f"{n} {words}"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_the_report_in_a_browser_fits_the_screen_prints_whole_and_is_legible(agecam, default_run, tmp_path):
    from playwright.sync_api import sync_playwright

    one_medium = "UPDATE alerts SET severity = 'medium' WHERE id = (SELECT min(id) FROM alerts WHERE kind = 'flag')"
    _report(agecam, _edited(default_run, tmp_path, one_medium), tmp_path)
    url = (tmp_path / "report.html").as_uri()
    clipped = "[...document.querySelectorAll('div.scroll')].filter(d => d.scrollWidth > d.clientWidth).length"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        assert requests == [url], "no font, style or image from elsewhere"
        assert page.locator("html").get_attribute("lang") == "en"
        # Unwrapped headers made the flags and sales tables wider than a 1280 px screen: the chance under the
        # Challenge age and the outcome were behind a scroll bar.
        assert page.evaluate(clipped) == 0, "every table fits a 1280 px screen"
        assert page.locator('td.severity[data-value="Medium"]').count() >= 1
        for cell in page.locator("td.severity").all():
            colour = cell.evaluate("e => getComputedStyle(e).color")
            assert contrast(colour) >= 4.5, f"{cell.inner_text()} in {colour} (WCAG AA)"
        # Bars are graphics: 3:1 on white (WCAG 1.4.11). The medium orange was 2.9:1.
        bars = "[...document.querySelectorAll('svg.chart rect')].map(e => getComputedStyle(e).fill)"
        fills = set(page.evaluate(bars))
        assert SEVERITY["medium"] in {_hex(fill) for fill in fills}, "the medium bar is drawn"
        assert [fill for fill in fills if contrast(fill) < 3] == []
        page.set_viewport_size({"width": 700, "height": 900})
        page.emulate_media(media="print")
        overflow = "[...document.querySelectorAll('div.scroll')].map(d => getComputedStyle(d).overflowX)"
        assert set(page.evaluate(overflow)) == {"visible"}, "on paper a scroll box would cut its last columns off"
        browser.close()


def _hex(colour: str) -> str:
    return "#" + "".join(f"{int(value):02x}" for value in re.findall(r"\d+", colour)[:3])
