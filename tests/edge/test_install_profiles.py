"""Install profiles: the base install has no ONNX Runtime (the cpu and gpu extras add it) and no matplotlib
(only the trainer's plots use it); a command that needs an extra says which in one line. And ONNX Runtime
sends and stores nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def agecam_without(modules: list[str], *args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """agecam in a process where importing these modules fails, as in an install without their extra."""
    code = (
        "import sys\n"
        f"for name in {modules!r}: sys.modules[name] = None\n"
        "from edge.cli import main\n"
        f"sys.exit(main({[str(arg) for arg in args]!r}))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)


def test_without_onnx_runtime_help_works_and_the_model_names_the_extras(write_config):
    assert agecam_without(["onnxruntime"], "--help").returncode == 0
    result = agecam_without(["onnxruntime"], "--config", write_config(), "config", "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "agecam: error: ONNX Runtime is not installed, and the age model needs it: pip install 'agecam[cpu]' "
        "(or 'agecam[gpu]' on a till with an NVIDIA GPU)"
    ]


def test_the_report_and_events_need_no_matplotlib(default_run, tmp_path):
    _, config, db = default_run
    result = agecam_without(["matplotlib"], "--config", config, "report", "--db", db, "--out", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert "<svg" in (tmp_path / "r.html").read_text()
    assert agecam_without(["matplotlib"], "--config", config, "events", "--db", db).returncode == 0


def test_onnx_runtime_writes_no_telemetry_under_the_users_home(write_config, tmp_path):
    """Its telemetry keeps a device id and queued events in ~/.cache/Microsoft; agecam switches it off."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env_without = {key: value for key, value in os.environ.items() if key != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--config", str(write_config()), "config", "check"],
        env={**env_without, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [path for path in home.rglob("*") if path.is_file()] == []
