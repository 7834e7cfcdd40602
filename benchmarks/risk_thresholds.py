"""What `policy.mode: risk` would flag at each `policy.risk`, from one replay of a simulated till: every sale
without a passed ID check is decided again from the P(real age < threshold) its transaction recorded (the
customer's fused probability when the sale was decided), beside what the replay's own policy flagged. Used to
choose the default risk on scenarios built from `valid` faces (docs/training.md, "Choosing the policy mode").
`edge` is the rule that compares models there: the largest risk that still flags every minor sold without a
check (the lowest minor's probability), how many aged 30+ that risk flags, and the lowest minors themselves.

    python benchmarks/risk_thresholds.py SCENARIO RUN.db [SCENARIO RUN.db ...] [--risks 0.5 0.3 0.2] > risk.json

SCENARIO is an `agecam simulate` folder (truth.json), RUN.db the event log of `agecam replay --pos` on it.
Customers are counted by real age: minors (< 18), 18-24, 25-29 and 30+.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from edge.scenario.score import AGE_BANDS, SALE_FLAGS, age_band, load_truth
from edge.store.queries import scenario_run
from train.operating_point import risk_catching

T = TypeVar("T")


class Sale(NamedTuple):
    """A sale without a passed check: the customer's real age and band, P(under) as recorded, the replay's flag."""

    real_age: float
    band: str
    p_under: float | None
    flagged: bool


def sales(scenario: Path, db: Path) -> list[Sale]:
    run = scenario_run(db, None)
    out = []
    for customer in load_truth(scenario):
        if not customer["sold_without_check"]:
            continue
        age = customer["real_age"]
        found = run.get(customer["transaction_id"], {"alerts": [], "txn": None})
        flagged = bool({alert["type"] for alert in found["alerts"]} & set(SALE_FLAGS))
        out.append(Sale(age, age_band(age), (found["txn"] or {}).get("p_under"), flagged))
    return out


def _share(hit: int, sold: int) -> str:
    return f"{hit}/{sold}" + (f" ({100 * hit / sold:.1f} %)" if sold else "")


def _reaches(sale: Sale, risk: float) -> bool:
    return sale.p_under is not None and sale.p_under >= risk


def by_rule(sold: list[Sale], risks: list[float]) -> dict[str, dict[str, str]]:
    """Per rule ('as replayed', 'risk >= r'), per age band: 'flagged/sold (share)'."""
    rules = {"as replayed": lambda sale: sale.flagged}
    rules |= {f"risk >= {r:g}": lambda sale, r=r: _reaches(sale, r) for r in risks}
    bands = {band: [sale for sale in sold if sale.band == band] for band in AGE_BANDS}
    return {
        rule: {band: _share(sum(map(hit, group)), len(group)) for band, group in bands.items()}
        for rule, hit in rules.items()
    }


def edge(sold: list[Sale], lowest: int = 3) -> dict[str, object]:
    """The largest risk that flags every minor (a minor without a probability: none), and its cost."""
    minors = sorted((sale for sale in sold if sale.band == "minors"), key=lambda sale: sale.p_under or 0.0)
    probabilities = [sale.p_under for sale in minors]
    # compare_models' operating point, per customer, at the share of minors that the scenarios ask for: all
    risk = None if not minors or None in probabilities else risk_catching(np.array(probabilities), 1.0)
    over_30 = [sale for sale in sold if sale.band == "30_plus"]
    return {
        "largest_risk_flagging_every_minor": None if risk is None else round(risk, 3),
        "30_plus_flagged_there": None
        if risk is None
        else _share(sum(_reaches(sale, risk) for sale in over_30), len(over_30)),
        "lowest_minors": [
            {"real_age": sale.real_age, "p_under": None if sale.p_under is None else round(sale.p_under, 3)}
            for sale in minors[:lowest]
        ],
    }


def scenario_parts(
    parser: argparse.ArgumentParser, args: argparse.Namespace, measure: Callable[[Path, Path], list[T]]
) -> dict[str, list[T]]:
    """`measure` of each SCENARIO RUN.db pair in `args.pairs`, by scenario, and of them all under "all"
    (till_vs_photo.py uses it too)."""
    if len(args.pairs) % 2:
        parser.error("give the scenario folders and event logs in pairs: SCENARIO RUN.db ...")
    pairs = zip(args.pairs[::2], args.pairs[1::2], strict=True)
    parts = {str(Path(scenario)): measure(Path(scenario), Path(db)) for scenario, db in pairs}
    parts["all"] = [item for part in parts.values() for item in part]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="SCENARIO RUN.db")
    parser.add_argument("--risks", nargs="+", type=float, default=[0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1])
    args = parser.parse_args()
    parts = scenario_parts(parser, args, sales)
    print(
        json.dumps({name: {**by_rule(sold, args.risks), "edge": edge(sold)} for name, sold in parts.items()}, indent=2)
    )


if __name__ == "__main__":
    main()
