"""The review app's pages over the replayed scenario's real event log, through the test client: logins and
roles, every page, the flags queue's filters, a flag's detail, the review workflow and its audit rows,
CSV exports, and the 4xx pages for bad input."""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3

import pytest

from review_app import ZONE, csrf_of, log_in, one_flag, scenario_day

PAGES = ["/", "/flags", "/compliance", "/transactions", "/tills", "/audit"]


def _period(review_db) -> str:
    day = scenario_day(review_db)
    return f"from={day}&to={day}"


def _flags(review_db) -> list[sqlite3.Row]:
    with sqlite3.connect(review_db) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM alerts WHERE kind = 'flag' ORDER BY id").fetchall()


def test_health_is_open_and_every_page_needs_a_login(app_client):
    client = app_client()
    assert client.get("/health").json() == {"status": "ok"}
    for page in [*PAGES, "/flags/1", "/flags?format=csv"]:
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert client.post("/flags/1/outcome", data={"outcome": "false_alarm"}, follow_redirects=False).status_code == 303


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(app_client):
    client = app_client()
    response = log_in(client, "rita", next_page="/flags")
    assert response.status_code == 303 and response.headers["location"] == "/flags"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("agecam_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200 and "rita" in page.text
    stolen = client.cookies.get("agecam_session")
    assert client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    client.cookies.set("agecam_session", stolen)  # the old cookie is worthless after logging out
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_forged_non_ascii_session_cookie_is_a_login_page_not_an_error(app_client):
    client = app_client()
    response = client.get("/", headers={"cookie": "agecam_session=x.\u00e9t\u00e9".encode()}, follow_redirects=False)
    assert response.status_code == 303


def test_login_never_redirects_to_another_site(app_client):
    client = app_client()
    for target in ("//evil.example/x", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"):
        assert log_in(client, "rita", next_page=target).headers["location"] == "/"


def test_failed_logins_are_logged_and_then_refused(app_client, review_config, caplog):
    client = app_client(review_config(max_failed_logins=3))
    with caplog.at_level(logging.WARNING, logger="agecam.review"):
        codes = [log_in(client, "rita", password="wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert sum("failed login for 'rita'" in record.getMessage() for record in caplog.records) == 3
    assert log_in(client, "rita").status_code == 429, "even the right password waits out the lockout"
    assert log_in(client, "nobody", password="x").status_code == 429, "the address is locked out too"


def test_every_page_renders_with_the_time_zone_and_no_external_resource(app_client, review_db):
    client = app_client(login="vic")
    for page in PAGES:
        response = client.get(f"{page}?{_period(review_db)}")
        assert response.status_code == 200, page
        assert f"Times in <strong>{ZONE}</strong>" in response.text
        assert not re.search(r'(src|href)="(https?:|//)', response.text), page
        assert "<script" not in response.text
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_overview_counts_the_period(app_client, review_db):
    page = app_client(login="vic").get(f"/?{_period(review_db)}").text
    numbers = {label.strip(): int(n) for n, label in re.findall(r'<span class="n">(\d+)</span> ([a-zA-Z -]+)', page)}
    assert numbers["customers counted"] == 6
    assert numbers["restricted sales"] == 5
    assert numbers["ID checks required"] == 3 and numbers["ID check done"] == 1, "1 ID check, not 1 ID checks"
    flags = len(_flags(review_db))
    assert numbers["flag" if flags == 1 else "flags"] == flags
    assert page.count("<svg") == 3  # flags by severity, age mix, customers by hour (one day)
    age_mix = page.split("<h2>Age mix</h2>", 1)[1].split("<svg", 1)[0]
    assert "Customers counted in each estimated age group." in age_mix, "the bars say what they count"
    empty = app_client(login="vic").get("/?from=2001-01-01&to=2001-01-01").text
    assert "No customers were counted" in empty and "No flags in this period." in empty
    assert "<svg" not in empty, "no empty chart with a meaningless axis"


def test_traffic_keeps_every_hour_of_the_day(app_client, review_db):
    day = scenario_day(review_db)
    page = app_client(login="vic").get(f"/?from={day}&to={day}").text
    chart = page.split("Customers by hour</h2>", 1)[1].split("</svg>", 1)[0]
    assert re.findall(r">(\d\d)</text>", chart) == [f"{hour:02d}" for hour in range(0, 24, 2)]
    with sqlite3.connect(review_db) as connection:  # the replay runs at the wall clock: it may span an hour's end
        busy = connection.execute("SELECT count(DISTINCT hour) FROM hourly_stats WHERE customers > 0").fetchone()[0]
    assert 1 <= busy <= 2 and len(re.findall(r"<rect ", chart)) == busy, "a bar per busy hour, the rest empty slots"
    ticks = [int(tick) for tick in re.findall(r'text-anchor="end">(-?[\d.]+)</text>', chart)]
    assert ticks == list(range(0, ticks[-1] + 1, ticks[1])) and ticks[-1] >= 6, "integer customer axis"


@pytest.mark.parametrize("field", ["till_id", "cashier_id", "type"])
def test_flags_queue_filters(app_client, review_db, field):
    client = app_client(login="vic")
    flags = _flags(review_db)
    param = {"till_id": "till", "cashier_id": "cashier", "type": "type"}[field]
    for value in {row[field] for row in flags}:
        page = client.get(f"/flags?{_period(review_db)}&{param}={value}").text
        shown = {int(n) for n in re.findall(r'<a href="/flags/(\d+)">', page)}
        assert shown == {row["id"] for row in flags if row[field] == value}
    none = client.get(f"/flags?{_period(review_db)}&{param}=nobody-has-this").text
    assert "No flags match" in none


def test_flag_detail_shows_the_transaction_customer_and_association(app_client, review_db):
    flag = _flags(review_db)[0]
    page = app_client(login="vic").get(f"/flags/{flag['id']}").text
    for text in ("Transaction started", "Item scanned: wine (restricted)", "Transaction ended: completed"):
        assert text in page
    assert "Alert: ID check required" in page and "Flag: Sold without ID check (High)" in page
    assert f"{flag['age']:.1f} years" in page and f"{flag['age_low']:.1f} to {flag['age_high']:.1f} years" in page
    assert f"<dt>Samples</dt><dd>{flag['samples']}</dd>" in page
    assert re.search(r"<td>\d+</td><td>[\d.]+</td><td>[\d.]+%</td><td>yes</td>", page)
    # A bare score such as 0.0304 told loss-prevention staff nothing: a note says what it measures.
    note = page.split('<p class="note presence">', 1)[1].split("</p>", 1)[0]
    assert "till's zone" in note and "Compare the shares" in note and "for engineers" in note
    assert '<th scope="col"></th>' not in page, "every column has a header a screen reader can read out"
    assert "Evidence crops are off" in page
    assert "only reviewers can set an outcome" in page and 'action="/flags/' not in page


def test_a_reviewer_sets_outcomes_and_each_change_is_an_audit_row(app_client, review_db):
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    page = client.get(f"/flags/{flag_id}").text
    for outcome, expected in (("false_alarm", "open"), ("confirmed_underage", "false_alarm")):
        seen = re.search(r'name="seen" value="(\d+)"', page)[1]
        form = {"csrf": csrf_of(page), "outcome": outcome, "note": f"checked CCTV: {outcome}", "expected": expected}
        form["seen"] = seen
        response = client.post(f"/flags/{flag_id}/outcome", data=form, follow_redirects=False)
        assert response.status_code == 303
        page = client.get(f"/flags/{flag_id}").text
    with sqlite3.connect(review_db) as connection:
        rows = connection.execute("SELECT reviewer, from_outcome, to_outcome, note, at FROM flag_reviews").fetchall()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("UPDATE flag_reviews SET to_outcome = 'false_alarm'")
    assert [row[:3] for row in rows] == [("rita", "open", "false_alarm"), ("rita", "false_alarm", "confirmed_underage")]
    assert "<td>False alarm</td><td>Confirmed underage</td><td>checked CCTV: confirmed_underage</td>" in page
    audit = client.get("/audit?format=csv").text
    assert "rita,outcome set" in audit and "Confirmed underage" in audit
    queue = client.get(f"/flags?{_period(review_db)}&status=confirmed_underage").text
    assert f'href="/flags/{flag_id}"' in queue


def test_a_stale_form_does_not_overwrite_another_reviewers_outcome(app_client, review_db):
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    token = csrf_of(client.get(f"/flags/{flag_id}").text)
    first = {"csrf": token, "outcome": "false_alarm", "expected": "open", "seen": "0"}
    assert client.post(f"/flags/{flag_id}/outcome", data=first, follow_redirects=False).status_code == 303
    second = {"csrf": token, "outcome": "not_a_sale", "expected": "open", "seen": "0"}
    response = client.post(f"/flags/{flag_id}/outcome", data=second)
    assert response.status_code == 409 and "False alarm" in response.text


def test_a_viewer_cannot_change_an_outcome(app_client, review_db):
    client = app_client(login="vic")
    flag_id = one_flag(review_db)
    token = csrf_of(client.get(f"/flags/{flag_id}").text)
    response = client.post(f"/flags/{flag_id}/outcome", data={"csrf": token, "outcome": "false_alarm"})
    assert response.status_code == 403 and "Only reviewers" in response.text
    assert _review_count(review_db) == 0


def test_a_post_without_the_csrf_token_is_refused(app_client, review_db):
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    for form in ({"outcome": "false_alarm"}, {"outcome": "false_alarm", "csrf": "forged"}):
        response = client.post(f"/flags/{flag_id}/outcome", data=form)
        assert response.status_code == 403 and "security token" in response.text
    assert _review_count(review_db) == 0


def _review_count(db) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM flag_reviews").fetchone()[0]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/?from=2026-13-01", 400, "is not a date"),
        ("/flags?from=2026-11-22&to=2026-11-01", 400, "before it starts"),
        ("/flags?status=maybe", 400, "status"),
        ("/flags?page=-1", 400, "page"),
        ("/flags?page=%C2%B2", 400, "page"),  # '²'.isdigit(), but int('²') is a ValueError: was a 500
        ("/flags?to=0001-01-03", 400, "out of range"),  # its default week began before year 1: was a 500
        ("/audit?to=9999-12-31", 400, "out of range"),  # the day after it is past year 9999: was a 500
        ("/flags/99999", 404, "no flag #99999"),
        ("/flags/" + "9" * 25, 404, "no page"),  # beyond SQLite's integers: was an OverflowError, a 500
        pytest.param("/flags/" + "9" * 5000, 404, "no page", id="a-5000-digit-flag-id"),  # int()'s limit: a 500
        (f"/flags/{'9' * 25}/evidence", 404, "no page"),
        ("/flags/not-a-number", 404, "no page"),
        ("/nowhere", 404, "no page"),
    ],
)
def test_bad_input_gets_a_clear_4xx_page(app_client, path, status, says):
    response = app_client(login="vic").get(path)
    assert response.status_code == status
    assert says in response.text and "Traceback" not in response.text


def test_an_outcome_for_an_id_beyond_sqlites_integers_is_a_404(app_client, review_db):
    client = app_client(login="rita")
    token = csrf_of(client.get(f"/flags/{one_flag(review_db)}").text)
    form = {"csrf": token, "outcome": "false_alarm", "seen": "0"}
    response = client.post(f"/flags/{'9' * 25}/outcome", data=form)
    assert response.status_code == 404 and _review_count(review_db) == 0


def test_an_alert_is_not_a_flag(app_client, review_db):
    with sqlite3.connect(review_db) as connection:
        alert = connection.execute("SELECT min(id) FROM alerts WHERE kind = 'alert'").fetchone()[0]
    assert app_client(login="vic").get(f"/flags/{alert}").status_code == 404


def test_oversized_or_foreign_forms_are_refused(app_client, review_db):
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    token = csrf_of(client.get(f"/flags/{flag_id}").text)
    big = client.post(f"/flags/{flag_id}/outcome", data={"csrf": token, "outcome": "false_alarm", "note": "x" * 30000})
    assert big.status_code == 413 and "larger than" in big.text
    as_json = client.post(f"/flags/{flag_id}/outcome", json={"csrf": token, "outcome": "false_alarm"})
    assert as_json.status_code == 415
    unknown = client.post(f"/flags/{flag_id}/outcome", data={"csrf": token, "outcome": "shrug"})
    assert unknown.status_code == 400 and "choose one of" in unknown.text
    assert _review_count(review_db) == 0


def test_an_internal_error_is_logged_not_shown(app_client, review_db, caplog):
    client = app_client(login="vic", raise_server_exceptions=False)
    with sqlite3.connect(review_db) as connection:
        connection.execute("DROP TABLE hourly_stats")  # the overview can no longer be read
    with caplog.at_level(logging.ERROR, logger="agecam.review"):
        response = client.get("/")
    assert response.status_code == 500 and "Traceback" not in response.text and "logged" in response.text
    assert any("internal error on GET /" in record.getMessage() for record in caplog.records)


def test_csv_exports_escape_formulas_and_use_readable_columns(app_client, review_db):
    with sqlite3.connect(review_db) as connection:
        connection.execute("UPDATE alerts SET cashier_id = '=HYPERLINK(\"http://x\")'")
        connection.execute("UPDATE transactions SET cashier_id = '=HYPERLINK(\"http://x\")'")
    client = app_client(login="vic")
    for page in ("/flags", "/compliance", "/transactions", "/tills", "/audit"):
        response = client.get(f"{page}?{_period(review_db)}&format=csv")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(response.text)))
        assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")], page
    flags = list(csv.DictReader(io.StringIO(client.get(f"/flags?{_period(review_db)}&format=csv").text)))
    assert flags[0]["Cashier"].startswith("'=HYPERLINK")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", flags[0]["Time"]), "local time, no milliseconds"
    assert flags[0]["Type"] == "Sold without ID check" and flags[0]["Outcome"] == "Open (not reviewed)"


def test_compliance_marks_cashiers_under_the_threshold_and_drills_down(app_client, review_config, review_db):
    strict = app_client(review_config(compliance_threshold=0.5), login="vic")
    rows = list(csv.DictReader(io.StringIO(strict.get(f"/compliance?{_period(review_db)}&format=csv").text)))
    coaching = {row["Cashier"]: row["Needs coaching"] for row in rows}
    shares = {row["Cashier"]: int(row["ID checks done"]) / int(row["ID checks required"]) for row in rows}
    assert coaching == {name: "yes" if share < 0.5 else "no" for name, share in shares.items()}
    page = strict.get(f"/compliance?{_period(review_db)}").text
    link = re.search(r'<a href="(/transactions\?[^"]+)">alice</a>', page)[1].replace("&amp;", "&")
    drill = list(csv.DictReader(io.StringIO(strict.get(f"{link}&format=csv").text)))
    assert drill and {row["Cashier"] for row in drill} == {"alice"}
    assert all(row["ID check required"] == "yes" for row in drill)
    assert len(drill) == next(int(row["ID checks required"]) for row in rows if row["Cashier"] == "alice")


def test_till_health_shows_each_run(app_client, review_db):
    rows = list(csv.DictReader(io.StringIO(app_client(login="vic").get("/tills?format=csv").text)))
    assert len(rows) == 1 and rows[0]["Till"] == "till-1" and rows[0]["Status"] == "Completed"
    assert float(rows[0]["fps"]) > 0 and rows[0]["Dropped frames"] == "0"


def test_evidence_crops_are_for_reviewers_and_each_view_is_logged(app_client, review_config, review_db):
    flag_id = one_flag(review_db)
    crop = review_db.parent / "evidence" / f"run1-txn1-track{flag_id}.jpg"
    crop.parent.mkdir()
    crop.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with sqlite3.connect(review_db) as connection:
        connection.execute("UPDATE alerts SET evidence = ? WHERE id = ?", (str(crop), flag_id))
    config = review_config()
    viewer = app_client(config, login="vic")
    assert "only reviewers can see it" in viewer.get(f"/flags/{flag_id}").text
    assert viewer.get(f"/flags/{flag_id}/evidence").status_code == 403
    reviewer = app_client(config, login="rita")
    assert f'src="/flags/{flag_id}/evidence"' in reviewer.get(f"/flags/{flag_id}").text
    for _ in range(2):
        response = reviewer.get(f"/flags/{flag_id}/evidence")
        assert response.status_code == 200 and response.content == crop.read_bytes()
        assert response.headers["cache-control"] == "no-store"
    with sqlite3.connect(review_db) as connection:
        views = connection.execute("SELECT alert_id, viewer FROM evidence_views").fetchall()
    assert views == [(flag_id, "rita"), (flag_id, "rita")]
    crop.unlink()
    assert "deleted after the retention period" in reviewer.get(f"/flags/{flag_id}").text
    assert reviewer.get(f"/flags/{flag_id}/evidence").status_code == 404


def test_evidence_outside_the_evidence_folder_is_never_served(app_client, review_db, tmp_path):
    flag_id = one_flag(review_db)
    secret = tmp_path / "evidence" / "secret.jpg"  # an 'evidence' folder, but not this log's
    secret.parent.mkdir()
    secret.write_bytes(b"private")
    with sqlite3.connect(review_db) as connection:
        connection.execute("UPDATE alerts SET evidence = ? WHERE id = ?", (str(secret), flag_id))
    assert app_client(login="rita").get(f"/flags/{flag_id}/evidence").status_code == 404
