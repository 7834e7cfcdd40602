"""`agecam report` over the night the clocks go back in Europe/London (2026-10-25: 01:00-02:00 happens twice),
from two real replays of the demo clip, one in each 01:30: each time in a list says which of the two it was,
and the day's traffic chart has its 25 hours, rather than one hour holding both hours' customers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge import cli

from review_app import demo_config

ROOT = Path(__file__).resolve().parents[3]
STARTS = ("2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00")  # 01:30 BST, then 01:30 GMT


@pytest.fixture(scope="module")
def fall_back(tmp_path_factory, assets) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("clock-change")
    config = demo_config(folder, review={"timezone": "Europe/London"})
    db = folder / "agecam.db"
    clip = assets / "videos" / "face-demographics-walking-and-pause.gif"
    for start in STARTS:
        args = ["--config", config, "--log-level", "WARNING", "replay", clip, "--fast", "--start", start]
        args += ["--pos", ROOT / "examples" / "demo-pos.jsonl", "--db", db]
        assert cli.main([str(arg) for arg in args]) == 0
    return config, db


def _report(agecam, fall_back, tmp_path) -> str:
    config, db = fall_back
    out = tmp_path / "report.html"
    since, until = "2026-10-24T23:00Z", "2026-10-26T00:00Z"  # the local day 2026-10-25
    assert agecam("--config", config, "report", "--db", db, "--out", out, "--since", since, "--until", until).code == 0
    return out.read_text()


def test_times_in_the_repeated_hour_say_which_one(agecam, fall_back, tmp_path):
    page = _report(agecam, fall_back, tmp_path)
    sales = page.split("<h2>Restricted sales (4)</h2>", 1)[1].split("</table>", 1)[0]
    times = re.findall(r"<td>(2026-10-25 01:30:\d\d[^<]*)</td>", sales)
    assert len(times) == 4 and {time[-3:] for time in times} == {"BST", "GMT"}, times
    assert "<td>2026-10-25 01:30:00</td>" not in page, "an ambiguous time without its zone"


def test_the_day_the_clocks_go_back_is_drawn_with_25_hours(agecam, fall_back, tmp_path):
    page = _report(agecam, fall_back, tmp_path)
    chart = page.split("<h2>Customers by hour (25 hours: the clocks changed)</h2>", 1)[1].split("</svg>", 1)[0]
    counts = dict(re.findall(r"<title>([^:<]+): (\d+) customers</title>", chart))
    assert counts == {"01 BST": "3", "01 GMT": "3"}, counts
