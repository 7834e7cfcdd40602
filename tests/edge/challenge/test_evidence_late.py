"""A flagged customer's crop that the disk refused (full, or a folder read-only for a while) is saved once the
disk recovers, while the run still holds it in memory, and only then does the flag name it: the flag said
"no crop" for ever, although space came back seconds later. A real PosLink and event log, the evidence
folder on a real tmpfs that is filled and then freed (root only: skipped elsewhere); the frames are made here."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.challenge.events import parse_event
from edge.challenge.late_crops import MAX_HELD
from edge.challenge.link import PosLink
from edge.config import parse_config
from edge.pipeline.frame import FrameResult, SeenFace
from edge.store.eventlog import EventLog
from edge.vision.customer import AgeEstimate
from edge.vision.faces import Face

from mounts import fill_disk, tmpfs
from pos_http import live_run_row

IMAGE = np.random.default_rng(0).integers(0, 256, (100, 100, 3), np.uint8)
FACE = Face(np.array([40.0, 30.0, 20.0, 20.0]), np.array([[45, 35], [55, 35], [50, 40], [46, 45], [54, 45]]), 0.9)
YOUNG = AgeEstimate(15.0, 13.0, 17.0, 5)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs at tmp_path/disk (needs root)."""
    with tmpfs(tmp_path / "disk", "512k") as folder:
        yield folder


def sales(count: int) -> list:
    """`count` beer sales without an ID check, one a second from t=1: each a flag on the young customer."""
    events = []
    for n in range(count):
        for dt, kind, extra in ((0.0, "transaction_start", {}), (0.2, "item_scanned", {"category": "beer"}),
                                (0.5, "transaction_end", {"status": "completed"})):  # fmt: skip
            fields = {"type": kind, "till_id": "till-1", "cashier_id": "c1", "transaction_id": f"T{n}", **extra}
            events.append(parse_event({**fields, "t": 1.0 + n + dt}))
    return events


@contextlib.contextmanager
def linked(tmp_path: Path, state: Path, db: Path, count: int = 1) -> Iterator[PosLink]:
    """A run's POS hooks with evidence on, replaying `count` sales to a young customer seen on every frame."""
    settings = {"evidence": {"enabled": True}, "state": {"dir": str(state)}}
    config = parse_config(settings, "test", tmp_path)
    event_log = EventLog(db)
    origin = time.time()
    link = PosLink(config, script=sales(count))
    link.start(event_log, live_run_row(event_log, origin), origin)
    try:
        yield link
    finally:
        link.finish()
        event_log.close()


def frames(link: PosLink, until: float, start: float = 0.0) -> None:
    t = start
    while t <= until:
        link.on_frame(FrameResult(t, IMAGE, [SeenFace(1, FACE, YOUNG)], []))
        t = round(t + 0.1, 3)


def flag_crops(db: Path) -> list[str | None]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT evidence FROM alerts WHERE kind = 'flag' ORDER BY id")]


def retry_now(link: PosLink) -> None:
    """The next retry of held crops (and of held event log writes) is due: skip the wait, then a frame-less tick."""
    link.late._retry_at = 0.0
    link.store.log._retry_at = 0.0
    link.on_idle()
    link.store.log.tick()


def test_a_crop_refused_by_a_full_disk_is_saved_once_space_returns_and_the_flag_then_names_it(tmp_path, disk):
    state, db = disk / "state", tmp_path / "agecam.db"  # only the evidence folder's disk is full
    (state / "evidence").mkdir(parents=True)
    with linked(tmp_path, state, db) as link:
        filler = fill_disk(disk)
        frames(link, 2.0)
        flagged_at = time.time()
        assert flag_crops(db) == [None], "the flag is kept, and says it has no crop yet"
        assert list((state / "evidence").iterdir()) == [], "no partial crop"
        retry_now(link)
        assert flag_crops(db) == [None], "still full: still held"
        filler.unlink()
        retry_now(link)
        crops = flag_crops(db)
        assert crops[0] is not None, "saved once the disk recovered"
        crop = Path(crops[0])
        assert crop.parent == state / "evidence" and stat.S_IMODE(crop.stat().st_mode) == 0o600
        assert cv2.imread(str(crop)) is not None
        assert abs(crop.stat().st_mtime - flagged_at) < 5, "the crop's time is the flag's: retention counts from it"
        retry_now(link)
        assert [path.name for path in (state / "evidence").iterdir()] == [crop.name], "saved once"


def test_with_the_event_log_on_the_same_full_disk_the_flag_and_its_crop_are_both_stored_later(tmp_path, disk):
    state = disk / "state"
    (state / "evidence").mkdir(parents=True)
    db = state / "agecam.db"
    with linked(tmp_path, state, db) as link:
        filler = fill_disk(disk)
        frames(link, 2.0)
        assert len(link.store.log.backlog) > 0, "the flag's row is held in memory too"
        filler.unlink()
        retry_now(link)
        assert len(link.store.log.backlog) == 0
        crops = flag_crops(db)
        assert len(crops) == 1 and crops[0] is not None and Path(crops[0]).is_file()


def test_crops_still_refused_at_the_end_are_bounded_said_and_never_named(tmp_path, disk, caplog):
    """Held crops are bounded (MAX_HELD); those the disk never took are reported at the end, their flags left
    without a crop, and nothing is written afterwards."""
    state, db = disk / "state", tmp_path / "agecam.db"
    (state / "evidence").mkdir(parents=True)
    count = MAX_HELD + 2
    with caplog.at_level(logging.WARNING), linked(tmp_path, state, db, count) as link:
        fill_disk(disk)
        frames(link, count + 1.0)
        assert len(link.late.held) == MAX_HELD
    assert flag_crops(db) == [None] * count
    assert list((state / "evidence").iterdir()) == []
    assert caplog.text.count("dropped from memory unsaved") == 2, "the oldest two, past the bound"
    assert f"{MAX_HELD} evidence crop(s) held in memory could not be saved" in caplog.text


def test_an_evidence_folder_read_only_for_a_while_is_retried_too(tmp_path):
    """A read-only remount (a bind mount of the folder onto itself, remounted ro: root cannot write it either)."""
    state, db = tmp_path / "state", tmp_path / "agecam.db"
    evidence = state / "evidence"
    evidence.mkdir(parents=True)
    with linked(tmp_path, state, db) as link:
        if subprocess.run(["mount", "--bind", str(evidence), str(evidence)], check=False).returncode:
            pytest.skip("a bind mount needs root")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(evidence)], check=True)
            frames(link, 2.0)
            assert flag_crops(db) == [None]
        finally:
            subprocess.run(["umount", str(evidence)], check=True)
        retry_now(link)
        crops = flag_crops(db)
        assert crops[0] is not None and Path(crops[0]).parent == evidence and Path(crops[0]).is_file()
