"""A --db that can never be an event log (a file in /proc, a folder) is named for what it is, in one line with
exit 6, not as a full disk: SQLite says "unable to open database file" there, and /proc reports no free
blocks, which read as "the disk is full: free space in /proc". A disk that is really full still says so."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clips import clip
from mounts import fill_disk, mounted, tmpfs

COMMANDS = {
    "replay": lambda tmp, video: ["replay", video, "--fast"],
    "events": lambda tmp, video: ["events"],
    "stats": lambda tmp, video: ["stats"],
    "report": lambda tmp, video: ["report", "--out", tmp / "report.html"],
    "purge": lambda tmp, video: ["purge", "--days", "0"],
}


def error_line(result, code: int = 6) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert result.code == code and len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


@pytest.fixture
def video(assets: Path) -> Path:
    return clip(assets, "face-demographics-walking")


def old_crop(tmp_path: Path) -> Path:
    """A crop past any retention in the state folder of write_config: a refused purge must keep it."""
    crop = tmp_path / "state" / "evidence" / "run1-txn1-track1.jpg"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\xff\xd8 crop")
    crop.touch()
    return crop


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_db_in_proc_is_a_virtual_file_not_a_full_disk(agecam, write_config, tmp_path, video, command):
    crop = old_crop(tmp_path)
    result = agecam("--config", write_config(), *COMMANDS[command](tmp_path, video), "--db", "/proc/version")
    line = error_line(result)
    assert "/proc/version" in line and "virtual file system" in line and "--db" in line, line
    assert "full" not in line and "free space" not in line and "upgrade" not in line, line
    assert crop.exists(), "nothing is deleted for a --db that is not an event log"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_db_that_is_a_folder_says_so(agecam, write_config, tmp_path, video, command):
    folder = tmp_path / "logs"
    folder.mkdir()
    crop = old_crop(tmp_path)
    result = agecam("--config", write_config(), *COMMANDS[command](tmp_path, video), "--db", folder)
    line = error_line(result)
    assert f"{folder} is a folder" in line and f"{folder}/agecam.db" in line, line
    assert "not found" not in line and "full" not in line and "make" not in line, line
    assert crop.exists() and list(folder.iterdir()) == []


def test_a_db_that_is_not_sqlite_is_refused_by_purge_before_any_crop_goes(agecam, write_config, tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("shopping list: milk, eggs, bread " * 200)
    crop = old_crop(tmp_path)
    line = error_line(agecam("--config", write_config(), "purge", "--days", "0", "--db", notes))
    assert "notes.db" in line and "not a usable agecam database" in line and "--db" in line, line
    assert crop.exists() and notes.read_text().startswith("shopping list")


@contextlib.contextmanager
def full_tmpfs(folder: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs at `folder`, filled to the last byte (needs root)."""
    with tmpfs(folder, "256k"):
        fill_disk(folder)
        yield folder


def test_a_db_on_a_really_full_disk_still_says_the_disk_is_full(agecam, write_config, tmp_path, video):
    with full_tmpfs(tmp_path / "disk") as disk:
        line = error_line(agecam("--config", write_config(), "replay", video, "--fast", "--db", disk / "agecam.db"))
        assert str(disk / "agecam.db") in line and "the disk is full" in line and "free space" in line, line
        assert not (disk / "agecam.db").exists()


# Writable file systems that report no blocks at all, as /proc does: a log there works, and is no virtual file.
WITHOUT_BLOCKS = {"ramfs": ["-t", "ramfs", "ramfs"], "tmpfs size=0": ["-t", "tmpfs", "-o", "size=0", "tmpfs"]}


@pytest.mark.parametrize("kind", list(WITHOUT_BLOCKS))
def test_a_writable_file_system_without_blocks_is_not_called_virtual(agecam, write_config, tmp_path, video, kind):
    with mounted(tmp_path / "ram", *WITHOUT_BLOCKS[kind]) as ram:
        config = write_config()
        line = error_line(agecam("--config", config, "events", "--db", ram / "agecam.db"))
        assert "event log not found" in line and "virtual" not in line, line
        (ram / "notes.db").write_text("shopping list: milk, eggs, bread " * 200)
        line = error_line(agecam("--config", config, "replay", video, "--fast", "--db", ram / "notes.db"))
        assert "not a usable agecam database" in line and "virtual" not in line, line
        crop = old_crop(tmp_path)
        subprocess.run(["mount", "-o", "remount,ro", str(ram)], check=True)  # a log that can't be written now
        result = agecam("--config", config, "purge", "--days", "0", "--db", ram / "notes.db")
        assert result.code == 0 and "virtual" not in result.err, result.err
        assert not crop.exists(), "a log that can't be written for now leaves its references, the crops still go"


@pytest.mark.parametrize("command", [*COMMANDS, "serve"])
def test_an_empty_db_option_is_refused_not_read_as_the_tills_own_log(
    agecam, capsys, write_config, tmp_path, video, command
):
    """`--db "$DB"` with DB unset: the default STATE_DIR/agecam.db was used, so a test replay went into the till's
    own event log and purge cleared that log's crops."""
    crop = old_crop(tmp_path)
    args = ["serve"] if command == "serve" else COMMANDS[command](tmp_path, video)
    with pytest.raises(SystemExit) as refused:  # argparse's own exit, as for any bad option
        agecam("--config", write_config(), *args, "--db", "")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("agecam: error:")]
    assert refused.value.code == 2 and len(lines) == 1, lines
    assert "--db" in lines[0] and "empty" in lines[0], lines
    assert crop.exists() and not (tmp_path / "state" / "agecam.db").exists()
