"""benchmarks/risk_thresholds.py, which chose the default `policy.risk`: its rules and its edge on known sales,
and the script on a real replay of the simulated till, where 'as replayed' must agree with `agecam score`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "risk_thresholds.py"


@pytest.fixture(scope="module")
def thresholds() -> ModuleType:
    spec = importlib.util.spec_from_file_location("risk_thresholds", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sales(thresholds: ModuleType) -> list:
    Sale = thresholds.Sale
    return [
        Sale(15, "minors", 0.9, True),
        Sale(17, "minors", 0.42, True),
        Sale(16, "minors", 0.6, True),
        Sale(21, "18_24", 0.7, True),
        Sale(27, "25_29", 0.3, False),
        Sale(31, "30_plus", 0.5, True),
        Sale(40, "30_plus", 0.42, False),
        Sale(52, "30_plus", 0.1, False),
        Sale(64, "30_plus", None, False),  # no face: no probability, never reaches a risk
    ]


def test_rules_count_each_band_and_a_probability_at_the_risk_reaches_it(thresholds: ModuleType) -> None:
    table = thresholds.by_rule(_sales(thresholds), [0.5, 0.42])
    assert table["as replayed"] == {"minors": "3/3 (100.0 %)", "18_24": "1/1 (100.0 %)", "25_29": "0/1 (0.0 %)",
                                    "30_plus": "1/4 (25.0 %)"}  # fmt: skip
    assert table["risk >= 0.5"]["minors"] == "2/3 (66.7 %)" and table["risk >= 0.5"]["30_plus"] == "1/4 (25.0 %)"
    assert table["risk >= 0.42"]["minors"] == "3/3 (100.0 %)" and table["risk >= 0.42"]["30_plus"] == "2/4 (50.0 %)"


def test_edge_is_the_lowest_minors_probability_and_what_it_costs_those_aged_30_plus(thresholds: ModuleType) -> None:
    found = thresholds.edge(_sales(thresholds), lowest=2)
    assert found["largest_risk_flagging_every_minor"] == 0.42
    assert found["30_plus_flagged_there"] == "2/4 (50.0 %)"
    assert found["lowest_minors"] == [{"real_age": 17, "p_under": 0.42}, {"real_age": 16, "p_under": 0.6}]


def test_a_minor_without_a_probability_has_no_edge(thresholds: ModuleType) -> None:
    sold = [*_sales(thresholds), thresholds.Sale(14, "minors", None, True)]
    found = thresholds.edge(sold)
    assert found["largest_risk_flagging_every_minor"] is None and found["30_plus_flagged_there"] is None
    assert found["lowest_minors"][0] == {"real_age": 14, "p_under": None}
    assert thresholds.edge([s for s in sold if s.band != "minors"])["largest_risk_flagging_every_minor"] is None


def test_on_a_replay_as_replayed_agrees_with_score_and_every_minor_reaches_the_edge(default_run, scenario) -> None:
    _, _, db = default_run
    argv = [sys.executable, str(SCRIPT), str(scenario), str(db), "--risks", "0.5", "0"]
    report = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert set(report) == {str(scenario), "all"} and report["all"] == report[str(scenario)]
    part = report["all"]
    customers = json.loads((scenario / "truth.json").read_text())["customers"]
    minors = sum(c["real_age"] < 18 and c["sold_without_check"] for c in customers)
    assert minors >= 1 and part["as replayed"]["minors"].startswith(f"{minors}/{minors} ")  # score: recall 1.0
    assert part["as replayed"]["30_plus"].startswith("0/")  # score: no adult flagged
    assert part["risk >= 0"]["minors"] == part["as replayed"]["minors"]  # every sale recorded a probability
    risk = part["edge"]["largest_risk_flagging_every_minor"]
    lowest = part["edge"]["lowest_minors"]
    assert risk is not None and 0 < risk <= 1 and lowest[0]["p_under"] == risk
    assert [m["p_under"] for m in lowest] == sorted(m["p_under"] for m in lowest)


def test_an_unpaired_argument_is_refused_with_one_line_and_exit_2(scenario) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), str(scenario)], capture_output=True, text=True)
    assert result.returncode == 2 and "in pairs: SCENARIO RUN.db" in result.stderr.splitlines()[-1]
    assert result.stdout == ""
