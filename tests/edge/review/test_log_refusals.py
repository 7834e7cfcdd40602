"""The review app and the read-only commands when the event log or the request is not what they expect: a
log in a folder named with URI characters, a log that refuses writes (read-only) against a real `agecam
serve`, a page past the end of a list, and cells that a spreadsheet would run in the CSV exports."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from review_app import agecam_serve, csrf_of, log_in, one_flag, scenario_day


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file refuses writes: immutable for root (who writes through file modes), else mode 0444."""
    root = os.geteuid() == 0
    if root and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    if not root:
        path.chmod(0o444)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


@pytest.mark.parametrize("folder", ["store #12", "till?2", "100%25"])
def test_a_log_in_a_folder_named_with_uri_characters_is_read(agecam, default_run, review_config, tmp_path, folder):
    """The read-only URI took '#' and '?' as its end and '%25' as '%': every read command and page opened
    another file (created empty beside it: 'store ') and said the log had schema 0."""
    _, config, db = default_run
    log = tmp_path / folder / "agecam.db"
    log.parent.mkdir()
    shutil.copy(db, log)
    served = review_config()
    before = sorted(tmp_path.iterdir())
    events = [agecam("--config", config, "events", "--db", path, "--format", "json") for path in (log, db)]
    assert events[0].code == 0 and events[0].json() == events[1].json()
    assert agecam("--config", config, "stats", "--db", log).code == 0
    assert agecam("--config", config, "report", "--db", log, "--out", tmp_path / "r.html").code == 0
    with agecam_serve(served, log) as (base, _), httpx.Client(base_url=base, timeout=10) as client:
        assert log_in(client, "vic").status_code == 303
        assert client.get(f"/flags/{one_flag(log)}").status_code == 200
    assert sorted(path for path in tmp_path.iterdir() if path.name != "r.html") == before, "no stray file"


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """The folder as a read-only bind mount (a backup's mount; root only)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_log_in_a_read_only_folder_is_read(agecam, default_run, tmp_path):
    """SQLite makes a WAL log's -shm file beside it to read it: in a read-only folder (a backup on a read-only
    mount) every read command said 'not an agecam event log'. With a -wal file there, one line says what to
    do."""
    _, config, db = default_run
    folder = tmp_path / "backup"
    folder.mkdir()
    shutil.copy(db, folder / "agecam.db")
    with read_only_folder(folder):
        events = [
            agecam("--config", config, "events", "--db", path, "--format", "json")
            for path in (folder / "agecam.db", db)
        ]
        assert events[0].code == 0, events[0].err
        assert events[0].json() == events[1].json()
        assert (
            agecam("--config", config, "report", "--db", folder / "agecam.db", "--out", tmp_path / "r.html").code == 0
        )
    (folder / "agecam.db-wal").write_bytes(b"")
    with read_only_folder(folder):
        refused = agecam("--config", config, "stats", "--db", folder / "agecam.db")
    assert refused.code == 6 and len(refused.err.splitlines()) == 1
    assert "copy agecam.db and agecam.db-wal to a writable folder" in refused.err


def test_a_live_tills_log_in_a_folder_closed_to_this_user_is_refused_not_read_as_immutable(
    default_run, tmp_path, agecam_as_another_user
):
    """A folder only closed to this user (an operator reading a till's 0755 state folder) is not a read-only
    mount: the till may write the log meanwhile, and an immutable reader sees stale or torn pages. The first
    version of the read-only-folder fix read it as immutable all the same."""
    folder = tmp_path / "till-state"
    folder.mkdir(mode=0o755)
    shutil.copy(default_run[2], folder / "agecam.db")
    os.chown(folder, pwd.getpwnam("nobody").pw_uid, -1)  # the till's own user's folder
    result = agecam_as_another_user("events", "--db", folder / "agecam.db")
    assert result.returncode == 6 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "run as the till's user" in result.stderr


def test_an_outcome_the_read_only_log_refuses_is_a_503_that_says_why(review_config, review_db):
    """Saving a review on a read-only log was a 500 'something went wrong on our side' and a traceback."""
    flag_id = one_flag(review_db)
    with (
        read_only(review_db),
        agecam_serve(review_config(), review_db) as (base, logged),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        assert log_in(client, "rita").status_code == 303
        page = client.get(f"/flags/{flag_id}")
        assert page.status_code == 200, "a read-only log can still be read"
        form = {"csrf": csrf_of(page.text), "seen": "0", "outcome": "false_alarm", "note": "n"}
        saved = client.post(f"/flags/{flag_id}/outcome", data=form)
    assert saved.status_code == 503 and saved.headers["retry-after"]
    assert "nothing was saved" in saved.text and "read-only" in saved.text and "writable" in saved.text
    assert "Traceback" not in logged[0] and "refused by the event log" in logged[0]


@pytest.mark.parametrize("path", ["/flags", "/transactions", "/tills", "/audit"])
def test_a_page_past_the_end_of_a_list_goes_to_its_last_page(app_client, review_db, path):
    """A stale link past the end (flags reviewed since, a narrower filter) showed '6 transactions' beside
    'No transactions match', with a 'previous' link to another empty page."""
    client = app_client(login="vic")
    period = f"from={scenario_day(review_db)}&to={scenario_day(review_db)}"
    past = client.get(f"{path}?{period}&page=500", follow_redirects=False)
    assert past.status_code == 303 and past.headers["location"] == f"?{period}&page=1"
    assert client.get(f"{path}?{period}&page=500").text == client.get(f"{path}?{period}").text


def test_a_note_that_starts_with_nul_then_a_formula_is_escaped_in_the_audit_csv(app_client, review_db):
    """ASVS 5.0 (1.2.10) lists NUL with = + - @ tab as a cell start to escape; a note could begin with one."""
    client, flag_id = app_client(login="rita"), one_flag(review_db)
    form = {"csrf": csrf_of(client.get(f"/flags/{flag_id}").text), "seen": "0", "outcome": "false_alarm"}
    note = '\x00=HYPERLINK("http://x","y")'
    assert client.post(f"/flags/{flag_id}/outcome", data={**form, "note": note}, follow_redirects=False).is_redirect
    rows = list(csv.DictReader(io.StringIO(client.get("/audit?format=csv").text)))
    assert [row["Note"] for row in rows] == ["'" + note]
