"""config.yaml documents the defaults; bad files end with the key, the problem and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.config import PROJECT_CONFIG, Config, load_config


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


def test_missing_config_file(agecam, tmp_path):
    result = agecam("--config", tmp_path / "absent.yaml", "config", "check")
    assert result.code == 2 and "absent.yaml" in result.err and "cannot read" in result.err


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
