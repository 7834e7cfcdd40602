"""Shared fixtures. Tests use the real assets in $AGECAM_ASSETS (CI: ../shared), the real YuNet,
real ONNX Runtime sessions and real SQLite files; no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from edge import cli
from edge.assets import DETECTOR_ASSET, assets_dir, manifest, status

from onnx_models import brightness_model, save


def pytest_configure(config: pytest.Config) -> None:
    folder = assets_dir()
    bad = [name for name, asset in manifest().items() if status(asset, folder) != "ok"]
    if bad:
        pytest.exit(
            f"assets missing or bad in {folder}: {bad}. Set AGECAM_ASSETS (CI: ../shared) "
            "or run 'agecam assets fetch'.",
            returncode=4,
        )


@pytest.fixture(scope="session")
def assets() -> Path:
    return assets_dir()


@pytest.fixture(scope="session")
def detector_path(assets: Path) -> Path:
    return assets / DETECTOR_ASSET


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 px contract-honouring model whose age is a function of crop brightness (tests/onnx_models.py)."""
    return save(brightness_model(), tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture
def write_config(tmp_path: Path, tiny_model: Path) -> Callable[..., Path]:
    """Write a config file using the tiny model and a state folder in tmp_path; sections override."""

    def write(**sections: dict) -> Path:
        data: dict = {"age_model": {"path": str(tiny_model)}, "state": {"dir": str(tmp_path / "state")}}
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def agecam(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the agecam CLI in-process, returning exit code, stdout and stderr."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = cli.main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def agecam_as_another_user() -> Callable[..., subprocess.CompletedProcess]:
    """Run `agecam ARGS` as root without the capabilities that override file modes, so that files and folders
    given to another user (`os.chown`) are closed to it, as to an operator or a service user.
    (Running as nobody instead needs the checkout and its venv readable by all, which a CI clone is not.)"""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv, to drop the override of file modes")
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        command = [*drop, sys.executable, "-m", "edge.cli", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True)

    return run
