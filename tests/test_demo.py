"""`make demo` shows what the product does: its exact command lines, run here, give ID-check alerts, a flag
and a report with content."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def demo_commands(assets: Path) -> list[str]:
    """The demo target's recipe from the Makefile, with its variables filled in and the venv's agecam as this
    interpreter running this checkout."""
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) :?= (.*)$", makefile, re.M))
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    values = {
        "BIN": "BIN",
        "AGECAM_ASSETS": str(assets),
        "DEMO_CONFIG": variables["DEMO_CONFIG"],
        "DEMO_CLIP": variables["DEMO_CLIP"].replace("$(AGECAM_ASSETS)", str(assets)),
    }
    agecam = f"{shlex.quote(sys.executable)} -m edge.cli"
    lines = []
    for line in recipe.splitlines():
        line = re.sub(r"\$\((\w+)\)", lambda match: values[match[1]], line.strip().lstrip("@"))
        lines.append(line.replace("BIN/agecam", agecam))
    return lines


def test_the_demo_shows_alerts_a_flag_and_a_report(assets, tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the recipe's relative paths, from a scratch folder
    outputs = []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGECAM_ASSETS": str(assets)}  # the Makefile exports it
    for command in demo_commands(assets):
        done = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    summary = next(out for out in outputs if out.startswith("run "))
    assert re.search(
        r"\d+ alerts?, \d+ flags?; policy Challenge 40: policy.threshold from examples/demo-config", summary
    )
    with sqlite3.connect(tmp_path / "demo" / "agecam.db") as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM alerts GROUP BY kind").fetchall())
    assert kinds.get("alert", 0) >= 1 and kinds.get("flag", 0) >= 1
    assert "alert id_check_required" in summary and "flag  sold_without_id_check" in summary
    # Each chance names the Challenge age it is for: the demo's 40, not an unnamed "threshold".
    assert "P(under 40) " in summary and "P(under threshold)" not in summary
    page = (tmp_path / "demo" / "report.html").read_text()
    assert f"<h2>Flags ({kinds['flag']})</h2>" in page and "Sold without ID check" in page
    assert page.count("<svg") >= 3, "charts with content: age mix, traffic, flags by severity"
    assert "No customers were counted" not in page and "No flags in this period." not in page
    # The clip lasts seconds: its period read "05:59 to 05:59", as if empty, until it showed seconds.
    since, until = re.search(r"Period <strong>([^<]+) to ([^<]+)</strong>", page).groups()
    assert since != until, page
