"""The review app probed as an attacker or a careless user would: a forged X-Forwarded-For against a real
`agecam serve`, a kept `format` query, notes that the page's own textarea allows, reviews saved from a
stale or hand-made form, and odd methods."""

from __future__ import annotations

import re
import sqlite3

import httpx
import pytest

from review_app import agecam_serve, csrf_of, log_in, one_flag

LISTS = ["/flags", "/compliance", "/transactions", "/tills", "/audit"]


def _form(page: str, outcome: str, note: str = "") -> dict[str, str]:
    """What the flag page's review form sends: its hidden fields, the outcome and the note."""
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.split('class="review"')[1]))
    return {**hidden, "outcome": outcome, "note": note}


def _notes(db) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT note FROM flag_reviews ORDER BY id")]


def _failed_login(base: str, name: str, forwarded_for: str) -> int:
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/login")
        form = {"name": name, "password": "wrong", "csrf": csrf_of(page.text)}
        # Sent by hand: behind a TLS proxy the cookie is Secure, which httpx keeps off plain HTTP.
        headers = {"X-Forwarded-For": forwarded_for, "Cookie": f"agecam_login={page.cookies['agecam_login']}"}
        return client.post("/login", data=form, headers=headers).status_code


@pytest.mark.parametrize("tls", [None, "reverse_proxy"])
def test_a_forged_forwarded_for_does_not_dodge_the_address_lockout(review_config, review_db, tls):
    """Without a TLS proxy in the config, X-Forwarded-For is the client's word: uvicorn trusted it from
    127.0.0.1, so each guess could claim a new address (and the log showed the forged one). Behind the
    configured proxy it is the proxy's word, and each client address has its own count."""
    config = review_config(max_failed_logins=2, **({"tls": tls} if tls else {}))
    with agecam_serve(config, review_db) as (base, logged):
        codes = [_failed_login(base, f"guess{n}", f"203.0.113.{n}") for n in range(3)]
    log = logged[0]
    if tls:
        assert codes == [401, 401, 401] and "'guess2' from 203.0.113.2" in log
    else:
        assert codes == [401, 401, 429] and "from 127.0.0.1" in log and "203.0.113." not in log


@pytest.mark.parametrize("page", LISTS)
@pytest.mark.parametrize("value", ["html", ""])
def test_a_format_other_than_csv_in_the_url_is_the_page(app_client, page, value):
    """`?format=html` was kept in the CSV link's arguments beside format='csv': a TypeError, a 500."""
    response = app_client(login="vic").get(f"{page}?format={value}")
    assert response.status_code == 200 and "format=csv" in response.text


def test_a_note_as_long_as_the_textarea_allows_is_saved(app_client, review_db):
    """The browser counts a line break as one character against maxlength but sends it as CRLF."""
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    page = client.get(f"/flags/{flag_id}").text
    assert 'maxlength="2000"' in page
    note = ("y" * 99 + "\r\n") * 19 + "z" * 100  # 2000 characters as the textarea counts them
    assert len(note.replace("\r\n", "\n")) == 2000
    response = client.post(f"/flags/{flag_id}/outcome", data=_form(page, "false_alarm", note), follow_redirects=False)
    assert response.status_code == 303
    assert _notes(review_db) == [note.replace("\r\n", "\n")]


def test_a_full_length_note_in_a_three_byte_script_fits_the_form(app_client, review_db):
    """2000 CJK characters are 18,000 bytes percent-encoded: over the old 16 KiB limit, a 413."""
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    page = client.get(f"/flags/{flag_id}").text
    note = "検" * 2000
    response = client.post(f"/flags/{flag_id}/outcome", data=_form(page, "false_alarm", note), follow_redirects=False)
    assert response.status_code == 303 and _notes(review_db) == [note]


def test_a_form_without_what_its_page_showed_is_refused(app_client, review_db):
    """A hand-made form without `expected` or `seen` overwrote whatever another reviewer had set."""
    client = app_client(login="rita")
    flag_id = one_flag(review_db)
    page = client.get(f"/flags/{flag_id}").text
    first = client.post(f"/flags/{flag_id}/outcome", data=_form(page, "confirmed_underage", "CCTV: a minor"))
    assert first.status_code == 200
    bare = {"csrf": csrf_of(page), "outcome": "false_alarm", "note": "never saw the page"}
    response = client.post(f"/flags/{flag_id}/outcome", data=bare)
    assert response.status_code == 400 and "which review it was opened at" in response.text
    assert _notes(review_db) == ["CCTV: a minor"]


@pytest.mark.parametrize("back_to", ["false_alarm", "again"])
def test_a_stale_form_is_refused_after_a_change_and_back(app_client, review_db, back_to):
    """Reviewer A opens a flag at False alarm; B sets Confirmed underage and then False alarm again (or
    saves False alarm again with a new note). A's form still matched the outcome it saw, so it was saved
    over B's notes unseen."""
    flag_id = one_flag(review_db)
    a, b = app_client(login="rita"), app_client(login="rita")
    start = b.get(f"/flags/{flag_id}").text
    assert b.post(f"/flags/{flag_id}/outcome", data=_form(start, "false_alarm", "B: first look")).status_code == 200
    stale = a.get(f"/flags/{flag_id}").text
    steps = [("confirmed_underage", "B: the CCTV says otherwise"), ("false_alarm", "B: no, it was fine")]
    for outcome, note in steps if back_to == "false_alarm" else [("false_alarm", "B: checked the receipt")]:
        form = _form(b.get(f"/flags/{flag_id}").text, outcome, note)
        assert b.post(f"/flags/{flag_id}/outcome", data=form).status_code == 200
    response = a.post(f"/flags/{flag_id}/outcome", data=_form(stale, "not_a_sale", "A: from the old page"))
    assert response.status_code == 409 and "reload it" in response.text
    assert "A: from the old page" not in _notes(review_db)


def test_an_odd_method_gets_a_405_that_says_what_is_allowed(app_client):
    client = app_client(login="vic")
    for method, path in (("PUT", "/flags"), ("DELETE", "/flags/1"), ("OPTIONS", "/"), ("GET", "/logout")):
        response = client.request(method, path)
        assert response.status_code == 405 and response.headers.get("allow"), (method, path)
        assert response.headers["cache-control"] == "no-store"


def test_a_head_of_an_evidence_crop_is_not_logged_as_a_view(review_config, review_db):
    """The audit of who saw a customer's face logged a HEAD (a link checker, a prefetch) as a view, though
    it sends no image: only the GET that sends it is a view."""
    flag_id = one_flag(review_db)
    crop = review_db.parent / "evidence" / f"run1-txn1-track{flag_id}.jpg"
    crop.parent.mkdir()
    crop.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with sqlite3.connect(review_db) as connection:
        connection.execute("UPDATE alerts SET evidence = ? WHERE id = ?", (str(crop), flag_id))
    with agecam_serve(review_config(), review_db) as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        assert log_in(client, "rita").status_code == 303
        head = client.head(f"/flags/{flag_id}/evidence")
        get = client.get(f"/flags/{flag_id}/evidence")
    assert (head.status_code, head.content, head.headers["content-type"]) == (200, b"", "image/jpeg")
    assert get.status_code == 200 and get.content == crop.read_bytes()
    with sqlite3.connect(review_db) as connection:
        assert connection.execute("SELECT alert_id, viewer FROM evidence_views").fetchall() == [(flag_id, "rita")]
