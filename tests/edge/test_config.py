"""config.yaml documents the defaults; bad files end with the key, the problem and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.config import DATA_DIR, PROJECT_CONFIG, Config, find_data_dir, load_config


def test_project_config_yaml_states_exactly_the_defaults():
    assert load_config(PROJECT_CONFIG).model_dump() == Config().model_dump()


def test_every_setting_is_in_config_yaml_under_a_comment():
    """Each setting appears in config.yaml; a run of settings is introduced by a comment."""
    lines = PROJECT_CONFIG.read_text().splitlines()
    found, section = set(), None
    for index, line in enumerate(lines):
        if header := re.fullmatch(r"(\w+):\s*", line):
            section = header[1]
        elif key := re.match(r"  (\w+):", line):
            found.add(f"{section}.{key[1]}")
            above = lines[index - 1]
            assert above.strip().startswith("#") or re.match(r"  \w+:", above), f"{section}.{key[1]} lacks a comment"
    assert found == {f"{name}.{key}" for name, values in Config().model_dump().items() for key in values}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("age_model:\n  path: models/m.onnx\nstate:\n  dir: var\n")
    config = load_config(path)
    assert config.resolve(config.age_model.path) == tmp_path / "models" / "m.onnx"
    assert config.state_dir() == tmp_path / "var"


def test_state_dir_falls_back_to_systemd_state_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "svc"))
    assert Config().state_dir() == tmp_path / "svc"


BAD_FILES = {
    "unknown key": ("detector:\n  score_treshold: 0.5\n", "unknown key 'detector.score_treshold'"),
    "unknown section": ("camera:\n  uri: 0\n", "unknown key 'camera'"),
    "wrong type": ("age_model:\n  max_batch: lots\n", "age_model.max_batch"),
    "out of range": ("detector:\n  score_threshold: 1.5\n", "detector.score_threshold"),
    "groups not ascending": ("stats:\n  age_groups: [25, 18]\n", "stats.age_groups"),
    "empty providers": ("age_model:\n  providers: []\n", "age_model.providers"),
    "bad level": ("logging:\n  level: LOUD\n", "logging.level"),
    "not a mapping": ("- just\n- a list\n", "top level must be a mapping"),
    "bad yaml": ("detector: [unclosed\n", "not valid YAML at line"),
    "tab indent": ("detector:\n\tinterval: 2\n", "not valid YAML at line 2 (found character '\\t'"),
    "duplicate key": ("detector:\n  interval: 2\n  interval: 5\n", "line 3: key 'interval' is given twice"),
    "duplicate section": ("pos:\n  enabled: true\npos:\n  port: 9000\n", "line 3: key 'pos' is given twice"),
    "empty file": ("", "the file is empty"),
    "blank file": ("\n  \n", "the file is empty"),
    "nested too deep": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "line 1: nested deeper than"),
    "infinite": ("alerts:\n  timeout_s: .inf\n", "alerts.timeout_s: Input should be a finite number"),
    "huge": ("alerts:\n  timeout_s: 1e300\n", "alerts.timeout_s: Input should be less than or equal to 1000000"),
    "yes as a number": ("policy:\n  threshold: yes\n", "policy.threshold: true/false"),
    "true in a list": ("stats:\n  age_groups: [true, 25]\n", "stats.age_groups: true/false"),
    "zone folder": ("review:\n  timezone: America\n", "review.timezone: not a time zone"),
    # Sampling stops at customer.max_samples (25): these counted no customer, or made every one uncertain.
    "stats count never reached": ("stats:\n  min_samples: 30\n", "stats.min_samples: 30 is more than customer.max"),
    "policy count never reached": ("policy:\n  min_samples: 26\n", "policy.min_samples: 26 is more than customer"),
    "customer count never reached": ("customer:\n  max_samples: 2\n", "customer.min_samples: 3 is more than"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_config_names_the_key_and_exits_2(agecam, tmp_path, case):
    text, expected = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = agecam("--config", path, "config", "check")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert str(path) in result.err and expected in result.err


def test_sample_counts_up_to_customer_max_samples_are_taken(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("customer:\n  max_samples: 40\nstats:\n  min_samples: 40\npolicy:\n  min_samples: 30\n")
    assert load_config(path).stats.min_samples == 40


def test_config_file_that_is_not_utf8(agecam, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("policy:\n  threshold: 25  # caf\u00e9\n".encode("latin-1"))
    result = agecam("--config", path, "config", "check")
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert f"{path}: not UTF-8 text" in result.err


def test_switches_still_take_yes_and_no(tmp_path):
    path = tmp_path / "switches.yaml"
    path.write_text("source:\n  loop: yes\npos:\n  enabled: on\n  port: 9000\n")
    config = load_config(path)
    assert config.source.loop is True and config.pos.enabled is True and config.pos.port == 9000


def test_missing_config_file(agecam, tmp_path):
    result = agecam("--config", tmp_path / "absent.yaml", "config", "check")
    assert result.code == 2 and "absent.yaml" in result.err and "cannot read" in result.err


def test_an_empty_config_option_is_refused_not_the_defaults(agecam, monkeypatch):
    """`--config "$UNSET"` showed (and ran) the default config: POS endpoint off, whatever the site's file says."""
    monkeypatch.delenv("AGECAM_CONFIG", raising=False)
    result = agecam("--config", "", "config", "show")
    assert result.code == 2 and result.out == ""
    expected = "agecam: error: --config is empty: give the config file's path, or leave the option out"
    assert result.err.strip() == expected


def test_good_config_checks_ok_and_shows_defaults(agecam, write_config):
    path = write_config(detector={"detection_width": 480})
    assert agecam("--config", path, "config", "check").code == 0
    shown = agecam("--config", path, "config", "show")
    assert "detection_width: 480" in shown.out and "forget_after_s: 2.0" in shown.out


def test_environment_variable_names_the_config(agecam, monkeypatch, tmp_path: Path):
    path = tmp_path / "env.yaml"
    path.write_text("tracking:\n  forget_after_s: -1\n")
    monkeypatch.setenv("AGECAM_CONFIG", str(path))
    result = agecam("config", "check")
    assert result.code == 2 and "tracking.forget_after_s" in result.err


def test_defaults_point_at_the_bundled_model_wherever_the_config_file_is(tmp_path):
    """A user's own file in another folder, and a copy of config.yaml there, both keep the bundled model."""
    bundled = DATA_DIR / "models" / "agecam-mobilenetv2-int8.onnx"
    assert bundled.is_file()
    own = tmp_path / "own.yaml"
    own.write_text("policy:\n  threshold: 30\n")
    assert load_config(own).path_setting("age_model", "path") == bundled
    copy = tmp_path / "copy.yaml"
    copy.write_text(PROJECT_CONFIG.read_text())
    assert load_config(copy).path_setting("age_model", "path") == bundled


def test_a_path_the_file_sets_resolves_against_its_folder_even_at_the_default_value(tmp_path):
    """A model of the user's own, placed beside their config under the default name, is theirs."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "agecam-mobilenetv2-int8.onnx").write_bytes(b"theirs")
    copy = tmp_path / "copy.yaml"
    copy.write_text(PROJECT_CONFIG.read_text())
    assert load_config(copy).path_setting("age_model", "path") == tmp_path / "models" / "agecam-mobilenetv2-int8.onnx"
    other = tmp_path / "other.yaml"
    other.write_text("age_model:\n  path: mine.onnx\n")
    assert load_config(other).path_setting("age_model", "path") == tmp_path / "mine.onnx"


def test_installed_data_is_found_under_the_prefix_when_not_a_checkout(tmp_path):
    checkout, prefix = tmp_path / "site-packages", tmp_path / "venv" / "share" / "agecam"
    checkout.mkdir()
    prefix.mkdir(parents=True)
    (prefix / "config.yaml").write_text("")
    assert find_data_dir([checkout, prefix]) == prefix


def test_config_in_another_folder_checks_ok_with_the_bundled_model(agecam, tmp_path):
    own = tmp_path / "elsewhere" / "till.yaml"
    own.parent.mkdir()
    own.write_text("policy:\n  threshold: 30\n")
    result = agecam("--config", own, "config", "check")
    assert result.code == 0, result.err
    assert f"age model: {DATA_DIR / 'models' / 'agecam-mobilenetv2-int8.onnx'}" in result.out


def _text_file(folder: Path) -> Path:
    (folder / "notes.onnx").write_text("not a model\n")
    return folder / "notes.onnx"


BAD_FILES_FOR_CHECK = {"a text file": _text_file, "a folder": lambda folder: folder, "missing": lambda f: f / "gone"}


def error_line(result) -> str:
    """The one `agecam: error:` line of a failed command (log lines may come before it)."""
    lines = [line for line in result.err.splitlines() if line.startswith("agecam: error:")]
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


@pytest.mark.parametrize("case", list(BAD_FILES_FOR_CHECK))
def test_config_check_loads_the_age_model(agecam, write_config, tmp_path, case):
    path = BAD_FILES_FOR_CHECK[case](tmp_path)
    result = agecam("--config", write_config(age_model={"path": str(path)}), "config", "check")
    assert result.code == 4 and result.out == ""
    assert f"age model {path}" in error_line(result)


@pytest.mark.parametrize("case", [*BAD_FILES_FOR_CHECK, "another ONNX model"])
def test_config_check_loads_the_detector_and_says_to_fix_detector_model(agecam, write_config, tmp_path, case):
    make = BAD_FILES_FOR_CHECK.get(case, lambda _: DATA_DIR / "models" / "agecam-mobilenetv2-int8.onnx")
    path = make(tmp_path)
    config = write_config(detector={"model": str(path)})
    result = agecam("--config", config, "config", "check")
    assert result.code == 5 and result.out == ""
    line = error_line(result)
    assert f"face detector {path}" in line and line.endswith(f"fix detector.model in {config}")
