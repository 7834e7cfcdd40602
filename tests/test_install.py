"""`pip install .` (not editable) ships the default config and the bundled model, and agecam finds them
there: a config file of the user's own, in any folder, runs with the bundled model."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = "agecam-mobilenetv2-int8.onnx"
SOURCES = ["pyproject.toml", "README.md", "config.yaml", "models", "edge", "train", "export"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (a build writes build/ and *.egg-info beside them)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=300)
    return next(out.glob("agecam-*.whl"))


def test_the_wheel_carries_the_default_config_and_the_bundled_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "agecam-0.1.0.data/data/share/agecam"
    assert {
        f"{data}/config.yaml",
        f"{data}/models/{MODEL}",
        f"{data}/models/MODEL_CARD.md",
        "edge/assets.json",
    } <= names
    packed = zipfile.ZipFile(wheel).read(f"{data}/models/{MODEL}")
    assert packed == (ROOT / "models" / MODEL).read_bytes()


def test_an_installed_agecam_finds_its_model_from_any_folder(wheel, tmp_path):
    """Installed into a fresh venv (the dependencies come from this one), away from the checkout."""
    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False)
    python = prefix / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    own = tmp_path / "site" / "till.yaml"
    own.parent.mkdir()
    own.write_text("policy:\n  threshold: 30\n")
    # Only the dependencies from here: never this checkout's edge/ (no PYTHONPATH to it, cwd elsewhere).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    done = subprocess.run(
        [str(python), "-m", "edge.cli", "--config", str(own), "config", "check"],
        cwd=own.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"age model: {prefix / 'share' / 'agecam' / 'models' / MODEL}" in done.stdout
    shown = subprocess.run(
        [str(python), "-m", "edge.cli", "config", "show"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "threshold: 25" in shown.stdout


def test_make_bench_fetches_the_assets_first(tmp_path):
    """`make bench` on a fresh checkout ended 'video not found' (exit 3): it never fetched the demo clip."""
    bin_ = tmp_path / "venv" / "bin"
    # Under `make test` (CI) the parent make's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines.
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-o", str(bin_ / ".runtime"), f"VENV={tmp_path / 'venv'}", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"{bin_}/agecam assets fetch", f"{bin_}/agecam bench edge --json"]


def test_install_sh_leaves_the_assets_readable_by_the_service_user():
    """install.sh runs as root and the service as agecam: assets left 0600 failed every start."""
    script = (ROOT / "systemd" / "install.sh").read_text()
    body = script.split("install_assets() {")[1].split("\n}\n")[0]
    assert body.index("assets fetch") < body.index('chmod -R a+rX "$PREFIX/assets"')
