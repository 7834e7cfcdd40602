"""Config files as a careless deploy or a hostile hand leaves them: each ends with one line naming the file,
where and what to do, exit 2, no traceback, within seconds and bounded memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def agecam_process(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """In a child process with 2 GiB of address space: a regression that blocks or reads without end fails
    the test (the timeout, the limit) rather than the machine."""
    command = [sys.executable, "-m", "edge.cli", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=limit_memory, env=env)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_fifo_or_device_at_the_config_path_is_refused_at_once(tmp_path):
    """A FIFO blocked `config check` (and a reload) forever; /dev/zero read until memory ran out."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    for path, kind in ((fifo, "a FIFO"), (tmp_path / "zero.yaml", "a device"), (tmp_path, "a folder")):
        result = agecam_process("--config", path, "config", "show", timeout=30)
        assert result.returncode == 2
        assert one_error_line(result.stderr) == (
            f"agecam: error: {path}: is {kind}, not a config file: give the path of the YAML file"
        )


def test_a_config_file_over_256_kib_is_refused_before_it_is_parsed(tmp_path):
    """A 1 MiB flow list took PyYAML over 20 s (300 MB: gigabytes of memory); no config comes near it."""
    path = config_file(tmp_path, "pos:\n  restricted_categories: [" + "b, " * 350_000 + "]\n")
    result = agecam_process("--config", path, "config", "show")
    assert result.returncode == 2
    assert one_error_line(result.stderr).startswith(f"agecam: error: {path}: larger than 256 KiB, far more than")


# YAML that PyYAML reads into Python values with errors of Python's own (ValueError): a traceback, exit 1.
UNREADABLE_VALUES = {
    "impossible date": ("review:\n  timezone: 2026-02-30\n", "line 2: '2026-02-30' cannot be read as a date (day is"),
    "tagged number": ("policy:\n  threshold: !!int twenty\n", "line 2: 'twenty' cannot be read as a number: fix it"),
    "5000 digits": ("customer:\n  max_samples: " + "9" * 5000 + "\n", "line 2: '9999"),
}


@pytest.mark.parametrize("case", list(UNREADABLE_VALUES))
def test_a_value_yaml_cannot_build_is_one_line_with_its_line_number(agecam, tmp_path, case):
    text, expected = UNREADABLE_VALUES[case]
    path = config_file(tmp_path, text)
    result = agecam("--config", path, "config", "show")
    assert result.code == 2 and one_error_line(result.err).startswith(f"agecam: error: {path}: {expected}")


# Refused with the line and what to do, where pydantic named the key `1` or `True` or took the value silently.
REFUSED_YAML = {
    "account named by digits": (
        "review:\n  accounts:\n    1234: {role: viewer, password_hash: x}\n",
        "line 3: the key '1234' reads as a number, not a name: quote it",
    ),
    "yes as a key": ("pos:\n  yes: 1\n", "line 2: the key 'yes' reads as true/false, not a name: quote it"),
    "merge key": ("pos:\n  <<: {port: 9000}\n  port: 9001\n", "line 2: merge keys (<<) are not allowed"),
    "control character": ("pos:\n  port: 9000\n  token: a\x07b\n", "line 3: the character U+0007 is not allowed"),
}


@pytest.mark.parametrize("case", list(REFUSED_YAML))
def test_yaml_that_hides_what_it_says_is_refused_with_its_line(agecam, tmp_path, case):
    text, expected = REFUSED_YAML[case]
    path = config_file(tmp_path, text)
    result = agecam("--config", path, "config", "show")
    assert result.code == 2 and result.out == ""
    assert one_error_line(result.err).startswith(f"agecam: error: {path}: {expected}")


# Each passed `config check` and then ended a run with a traceback where it was used (or failed each alert).
BAD_SETTINGS = {
    "NUL in the state folder": ('state:\n  dir: "var\\0"\n', "state.dir: a NUL character (\\0) is not allowed"),
    "NUL in the model path": ('age_model:\n  path: "m\\0.onnx"\n', "age_model.path: a NUL character"),
    "NUL in an alert command": ('alerts:\n  command: [notify, "a\\0"]\n', "alerts.command: a NUL character"),
    "newline in a webhook": ('alerts:\n  webhook: "http://hq/\\n"\n', "alerts.webhook: a control character"),
    "newline in a path": ('metrics:\n  textfile: "/var/lib/x\\n.prom"\n', "metrics.textfile: a control character"),
    "huge stable window": ("customer:\n  stable_window: 100000000000000000000\n", "customer.stable_window: Input"),
    "section left empty": ("pos:\n#  enabled: true\n", "pos: the section is empty: give its settings, or {} for"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_setting_no_run_could_use_is_refused_when_loaded(agecam, tmp_path, case):
    text, expected = BAD_SETTINGS[case]
    path = config_file(tmp_path, text)
    result = agecam("--config", path, "config", "show")
    assert result.code == 2 and one_error_line(result.err).startswith(f"agecam: error: {path}: {expected}")


def test_an_alert_command_may_still_hold_a_newline(tmp_path):
    """A shell script in a block scalar is a fair alert command; only paths and URLs refuse control characters."""
    path = config_file(tmp_path, "alerts:\n  command:\n    - sh\n    - -c\n    - |\n      cat >/dev/null\n      true\n")
    assert load_config(path).alerts.command == ["sh", "-c", "cat >/dev/null\ntrue\n"]


def test_a_path_with_a_no_break_space_or_an_emoji_still_loads(tmp_path):
    """Only control characters and line breaks are refused: str.isprintable() also refused a no-break space and
    a zero-width joiner, both fair in a Linux file name, as 'a control character (a newline, a tab)'."""
    path = tmp_path / "config.yaml"
    emoji = "/opt/\\U0001f468\\u200d\\U0001f469.onnx"  # a man, a zero-width joiner, a woman
    path.write_text(f'state:\n  dir: "/srv/agecam\\u00a0data"\nage_model:\n  path: "{emoji}"\n')
    config = load_config(path)
    assert config.state.dir == "/srv/agecam\u00a0data"
    assert config.age_model.path == "/opt/\U0001f468\u200d\U0001f469.onnx"


def test_a_line_separator_in_a_path_is_still_refused(tmp_path):
    path = config_file(tmp_path, 'metrics:\n  textfile: "/var/lib/x\\u2028.prom"\n')
    with pytest.raises(ConfigError, match=r"metrics\.textfile: a control character"):
        load_config(path)


def test_a_path_or_key_with_a_newline_stays_on_one_error_line(agecam, tmp_path):
    """The newline went into the message as it was: two lines in the journal, the second without `agecam:`."""
    folder = tmp_path / "a\nb"
    folder.mkdir()
    path = folder / "config.yaml"
    path.write_text('"pos\\nx": 1\n')
    result = agecam("--config", path, "config", "show")
    assert result.code == 2 and result.err.count("\n") == 1
    shown = str(path).replace("\n", "\\n")
    assert result.err.startswith(f"agecam: error: {shown}: unknown key 'pos\\nx': remove it or check its spelling")


def test_a_home_folder_of_no_user_is_one_line(agecam):
    """`--config ~nouser/config.yaml` ended with pathlib's RuntimeError (exit 1)."""
    result = agecam("--config", "~agecam-no-such-user/config.yaml", "config", "show")
    assert result.code == 2
    assert one_error_line(result.err) == (
        "agecam: error: ~agecam-no-such-user/config.yaml: no such user's home folder: give the config file's path"
    )


# A run's record leaves the token, the accounts' hashes, an alert command's arguments and a URL's password
# out; its error line, which goes to the journal, showed them in full.
SECRETS = {
    "token of digits": ("pos:\n  token: 7301946\n", "pos.token: Input should be a valid string: write it in quotes"),
    "token with a space": ('pos:\n  token: "s3cret "\n', "pos.token: the token must not start or end with spaces"),
    "password as its hash": (
        "review:\n  accounts:\n    alice: {role: viewer, password_hash: s3cret}\n",
        "review.accounts.alice.password_hash: not a password hash: make one with `agecam serve --hash-password`",
    ),
    "command": ('alerts:\n  command: [curl, -u, "alice:s3cret\\0"]\n', "alerts.command: a NUL character (\\0)"),
    "camera password": ('source:\n  uri: "rtsp://admin:s3cret@cam/\\n"\n', "source.uri: a control character"),
    "webhook password": ('alerts:\n  webhook: "ftp://u:s3cret@hq/"\n', "alerts.webhook: the webhook must be"),
}


@pytest.mark.parametrize("case", list(SECRETS))
def test_a_secret_in_a_bad_setting_is_not_written_into_the_error(agecam, tmp_path, case):
    text, expected = SECRETS[case]
    path = config_file(tmp_path, text)
    result = agecam("--config", path, "config", "show")
    line = one_error_line(result.err)
    assert result.code == 2 and line.startswith(f"agecam: error: {path}: {expected}")
    assert "s3cret" not in result.err and "7301946" not in result.err


def test_a_camera_index_written_as_a_number_says_to_quote_it(agecam, tmp_path):
    path = config_file(tmp_path, "source:\n  uri: 1\n")
    result = agecam("--config", path, "config", "show")
    assert result.code == 2
    assert one_error_line(result.err).endswith("source.uri: Input should be a valid string (got 1): write it in quotes")
