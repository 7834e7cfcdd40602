"""A till scenario plan: which labelled faces come to the till, when, what they buy, who checks ID.

Pure and seeded: the same faces folder and seed give the same plan. `edge.scenario.render` renders it to a
video; the POS script and the ground truth come from the plan alone.
"""

from __future__ import annotations

import csv
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.errors import PosError

VIDEO, POS, TRUTH = "till.mp4", "pos.jsonl", "truth.json"  # a scenario folder's files
WALK_S = 1.0  # walking into and out of the till position
GAP_S = 0.5  # the next customer steps in while the previous one is still walking away
CASHIERS = {"alice": 0.9, "bob": 0.5, "carol": 0.1}  # how often each checks ID of a customer under 25
AGE_BANDS = {"minor": (13, 17), "young": (18, 24), "adult": (25, 75)}
RESTRICTED = ["beer", "wine", "spirits"]
START_S, END_S = 0.2, 0.3  # the POS transaction starts this long after arriving and ends this long before leaving


@dataclass(frozen=True)
class FacePhoto:
    file: str
    age: int


@dataclass(frozen=True)
class Visit:
    """One customer: times in video seconds. They walk in from `enter`, stand at the till from `arrive`
    to `leave`, and are gone at `leave + WALK_S`."""

    index: int
    file: str
    real_age: int
    enter: float
    arrive: float
    leave: float
    transaction_id: str
    cashier_id: str
    alcohol: bool
    scan_t: float | None
    id_check: str | None
    sold: bool

    @property
    def sold_without_check(self) -> bool:
        return self.alcohol and self.sold and self.id_check != "passed"


EVERY_ROW = ("", "all")


def read_faces(folder: Path, split: str | None) -> tuple[list[FacePhoto], str]:
    """The dataset layout: labels.csv (file_name, real_age[, split]) and images/. Returns the photos and the
    split used. `split` None: the `valid` rows if the file has any, else every row (as `agecam eval` and
    `agecam train` use a file without splits); '' or 'all': every row; a name: that split, which must exist."""
    labels = folder / "labels.csv"
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a BOM, which would otherwise hide file_name
        with labels.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            rows = list(enumerate(reader, start=2))
            has_split = "split" in (reader.fieldnames or [])
    except OSError as error:
        raise PosError(f"cannot read {labels} ({error.strerror}): give a folder with labels.csv and images/") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise PosError(f"cannot read {labels} ({error}): save it as a UTF-8 CSV") from None
    if not rows:  # a header alone said "only 0 of the 0 faces ...: pass fewer --customers"
        raise PosError(f"{labels} has no rows: give a line with file_name and real_age for each photo in images/")
    found = sorted({(row.get("split") or "").strip() for _, row in rows} - {""})
    if split is None:
        split = "valid" if "valid" in found else "all"
    if split not in EVERY_ROW:
        if not has_split:
            raise PosError(f"{labels} has no split column, so --split {split} matches nothing: leave --split out")
        rows = [(number, row) for number, row in rows if (row.get("split") or "").strip() == split]
        if not rows:
            raise PosError(f"{labels}: no rows in split {split!r} (found {', '.join(found)}): pass one of those")
    faces = []
    for number, row in rows:
        try:
            faces.append(FacePhoto(str(folder / "images" / row["file_name"].strip()), round(float(row["real_age"]))))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):  # OverflowError: inf, 1e999
            raise PosError(f"{labels} line {number}: needs file_name and a numeric real_age") from None
    return faces, "all" if split in EVERY_ROW else split


def pick_faces(faces: list[FacePhoto], count: int, rng: random.Random) -> list[FacePhoto]:
    """About a third each of minors (13-17), 18-24 and 25+, shuffled; bands short of faces give way."""
    bands = {name: [f for f in faces if low <= f.age <= high] for name, (low, high) in AGE_BANDS.items()}
    for members in bands.values():
        rng.shuffle(members)
    chosen: list[FacePhoto] = []
    while len(chosen) < count and any(bands.values()):
        for members in bands.values():
            if members and len(chosen) < count:
                chosen.append(members.pop())
    if len(chosen) < count:
        raise PosError(
            f"only {len(chosen)} of the {len(faces)} faces are aged 13 to 75, and {count} customers were asked for: "
            "pass fewer --customers or a folder with more faces"
        )
    rng.shuffle(chosen)
    return chosen


def plan_visits(
    faces: list[FacePhoto], rng: random.Random, alcohol_share: float = 0.7, stay_s: float = 3.5
) -> list[Visit]:
    """Customers one after another: the next walks in while the previous walks out."""
    visits, enter = [], 0.5
    cashiers = list(CASHIERS)
    for index, face in enumerate(faces):
        arrive = enter + WALK_S
        leave = arrive + stay_s + rng.uniform(-0.3, 0.3)
        cashier = cashiers[(index // 4) % len(cashiers)]  # shifts of four customers
        alcohol = rng.random() < alcohol_share
        check = _id_check(face.age, CASHIERS[cashier], rng) if alcohol else None
        visits.append(
            Visit(
                index=index,
                file=face.file,
                real_age=face.age,
                enter=round(enter, 3),
                arrive=round(arrive, 3),
                leave=round(leave, 3),
                transaction_id=f"T{index + 1:04d}",
                cashier_id=cashier,
                alcohol=alcohol,
                scan_t=round(arrive + rng.uniform(1.0, 1.6), 3) if alcohol else None,
                id_check=check,
                sold=check not in ("failed", "refused"),
            )
        )
        enter = leave + GAP_S
    return visits


def _id_check(age: int, diligence: float, rng: random.Random) -> str | None:
    """A cashier checks a customer under 25 with their diligence, others rarely; minors fail or refuse."""
    if rng.random() >= (diligence if age < 25 else 0.05):
        return None
    return "passed" if age >= 18 else rng.choice(["failed", "refused"])


def pos_script(visits: list[Visit], till_id: str = "till-1") -> list[dict]:
    events = []
    for visit in visits:
        common = {"till_id": till_id, "cashier_id": visit.cashier_id, "transaction_id": visit.transaction_id}
        events.append({"t": round(visit.arrive + START_S, 3), "type": "transaction_start", **common})
        events.append({"t": round(visit.arrive + 0.6, 3), "type": "item_scanned", "category": "bakery", **common})
        if visit.alcohol:
            category = RESTRICTED[visit.index % len(RESTRICTED)]
            events.append({"t": visit.scan_t, "type": "item_scanned", "category": category, **common})
        if visit.id_check:
            events.append({"t": round(visit.scan_t + 0.8, 3), "type": "id_checked", "result": visit.id_check, **common})
        status = "completed" if visit.sold else "voided"
        events.append({"t": round(visit.leave - END_S, 3), "type": "transaction_end", "status": status, **common})
    return sorted(events, key=lambda event: event["t"])


def ground_truth(visits: list[Visit], settings: dict) -> dict:
    return {
        "settings": settings,
        "walk_s": WALK_S,
        "customers": [{**asdict(v), "sold_without_check": v.sold_without_check} for v in visits],
    }
