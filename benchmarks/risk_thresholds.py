"""What `policy.mode: risk` would flag at each `policy.risk`, from one replay of a simulated till: every sale
without a passed ID check is decided again from the P(real age < threshold) its transaction recorded (the
customer's fused probability when the sale was decided), beside what the replay's own policy flagged. Used to
choose the default risk on scenarios built from `valid` faces (docs/training.md, "Choosing the policy mode").

    python benchmarks/risk_thresholds.py SCENARIO RUN.db [SCENARIO RUN.db ...] [--risks 0.5 0.3 0.2] > risk.json

SCENARIO is an `agecam simulate` folder (truth.json), RUN.db the event log of `agecam replay --pos` on it.
Customers are counted by real age: minors (< 18), 18-24, 25-29 and 30+.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge.scenario.score import SALE_FLAGS, load_truth
from edge.store.queries import scenario_run

BANDS = {"minors": (0, 18), "18_24": (18, 25), "25_29": (25, 30), "30_plus": (30, 200)}


def decisions(scenario: Path, db: Path, risks: list[float]) -> dict[str, dict[str, list[int]]]:
    """Per rule ('as replayed', 'risk >= r'), per age band: [sold without a check, flagged]."""
    run = scenario_run(db, None)
    rules = ["as replayed", *(f"risk >= {r:g}" for r in risks)]
    counts = {rule: {band: [0, 0] for band in BANDS} for rule in rules}
    for customer in load_truth(scenario):
        if not customer["sold_without_check"]:
            continue
        band = next(name for name, (low, high) in BANDS.items() if low <= customer["real_age"] < high)
        found = run.get(customer["transaction_id"], {"alerts": [], "txn": None})
        p_under = (found["txn"] or {}).get("p_under")
        flagged = [bool({alert["type"] for alert in found["alerts"]} & set(SALE_FLAGS))]
        flagged += [p_under is not None and p_under >= r for r in risks]
        for rule, hit in zip(rules, flagged, strict=True):
            counts[rule][band][0] += 1
            counts[rule][band][1] += hit
    return counts


def merged(parts: list[dict[str, dict[str, list[int]]]]) -> dict[str, dict[str, str]]:
    """Several scenarios added up, as 'flagged/sold (share)'."""
    out = {}
    for rule in parts[0]:
        out[rule] = {}
        for band in BANDS:
            sold = sum(part[rule][band][0] for part in parts)
            hit = sum(part[rule][band][1] for part in parts)
            out[rule][band] = f"{hit}/{sold}" + (f" ({100 * hit / sold:.1f} %)" if sold else "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="SCENARIO RUN.db")
    parser.add_argument("--risks", nargs="+", type=float, default=[0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1])
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give the scenario folders and event logs in pairs: SCENARIO RUN.db ...")
    pairs = [(Path(a), Path(b)) for a, b in zip(args.pairs[::2], args.pairs[1::2], strict=True)]
    parts = [decisions(scenario, db, args.risks) for scenario, db in pairs]
    report = {str(scenario): merged([part]) for (scenario, _), part in zip(pairs, parts, strict=True)}
    print(json.dumps({**report, "all": merged(parts)}, indent=2))


if __name__ == "__main__":
    main()
