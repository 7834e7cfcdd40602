"""Values for people: readable names for types, severities and outcomes, local times without
milliseconds, ages with their interval, the chance of being under the Challenge age, and POS events in words."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo

from edge.store.review_records import OPEN, OUTCOMES

TYPES = {
    "sold_without_id_check": "Sold without ID check",
    "sold_after_failed_id_check": "Sold after a failed ID check",
    "no_face": "No usable face",
    # Each name says why the sale was flagged: "Unresolved" alone did not say what was wrong with it.
    "uncertain_no_check": "Sold without ID check, face seen too briefly",
    "unresolved": "Never ended on the POS, no ID check passed",
    "id_check_required": "ID check required",
}
# Why a transaction ended 'unresolved' (edge.challenge.transaction): the POS never said whether it sold.
RESOLUTIONS = {
    "superseded": "a new sale started on the till before this one ended",
    "expired": "open longer than policy.transaction_max_s",
    "evicted": "closed to make room: policy.max_open_transactions were open",
    "replay_ended": "the replay's POS script ended first",
}
SEVERITIES = {"high": "High", "medium": "Medium", "info": "Info"}
OUTCOME_NAMES = {
    OPEN: "Open (not reviewed)",
    "confirmed_underage": "Confirmed underage",
    "id_checked_pos_missed": "ID checked, POS missed it",
    "false_alarm": "False alarm",
    "wrong_customer": "Wrong customer picked",
    "not_a_sale": "Not a sale",
}
assert set(OUTCOME_NAMES) == {OPEN, *OUTCOMES}, "every outcome needs a name"
POS_TYPES = {
    "transaction_start": "Transaction started",
    "item_scanned": "Item scanned",
    "id_checked": "ID checked",
    "transaction_end": "Transaction ended",
}
RUN_STATES = {"running": "Running", "completed": "Completed", "stopped": "Stopped", "failed": "Failed"}


def name(mapping: dict[str, str], key: str | None) -> str:
    """The readable name of a code; an unknown code is shown as itself, never hidden."""
    if key is None:
        return "—"
    return mapping.get(key, key.replace("_", " ").capitalize())


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_time(text: str | None, zone: ZoneInfo, seconds: bool = True) -> str:
    """A log time (UTC ISO) in the store's zone, e.g. 2026-11-22 14:03:12."""
    if not text:
        return "—"
    moment = parse(text).astimezone(zone)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    # The hour that a change back from summer time repeats: its zone's abbreviation tells the two apart.
    return f"{shown} {moment.tzname()}" if repeated(moment) else shown


def repeated(moment: datetime) -> bool:
    """Whether this local wall time occurs twice (clocks going back), so it alone does not say when."""
    return moment.replace(fold=1 - moment.fold).utcoffset() != moment.utcoffset()


def age_text(row: dict) -> str:
    """An estimate with its interval, e.g. 23.4 (19.8 to 27.0); no face: —."""
    if row.get("age") is None:
        return "—"
    return f"{row['age']:.1f} ({row['age_low']:.1f} to {row['age_high']:.1f})"


def risk_text(row: dict, threshold: float) -> str:
    """P(real age < the Challenge age) in words, e.g. '31% likely under 25'. The age is the one the row's run
    recorded (`threshold`, from its config), else the configured `threshold`; a row from before p_under: —."""
    value = row.get("p_under")
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        return "—"
    recorded = row.get("threshold")
    age = recorded if isinstance(recorded, int | float) else threshold
    percent = round(100 * value)
    # Never '0%' or '100%': the camera is never that sure, and staff read those as certainties.
    chance = "<1%" if percent < 1 else ">99%" if percent > 99 else f"{percent}%"
    return f"{chance} likely under {age:g}"


def percent(fraction: float) -> str:
    """A share as a percentage to one decimal, without a trailing .0: a compliance threshold of 0.925 must read
    92.5%, not 93% (a cashier at 92.7% would then pass 'below 93%')."""
    return f"{100 * fraction:.1f}".removesuffix(".0") + "%"


def noun(count: int, singular: str, plural: str | None = None) -> str:
    """The noun that goes with a count: '1 flag', '2 flags' ('1 flags' read as a template, not a report)."""
    return singular if count == 1 else plural or f"{singular}s"


def yes_no(value: object) -> str:
    return "yes" if value else "no"


def id_check_text(result: str | None) -> str:
    return "none recorded" if result is None else result


def pos_event_text(row: dict, restricted_categories: Collection[str]) -> str:
    """A POS event in words: 'Item scanned: wine (restricted)', 'ID checked: failed'. An item is restricted
    as the policy decides (edge.challenge.events): flagged so, or in pos.restricted_categories."""
    body = _body(row.get("body"))
    text = name(POS_TYPES, row["type"])
    if row["type"] == "item_scanned":
        what = body.get("name") or body.get("category") or body.get("sku") or "item"
        text += f": {what}"
        category = str(body.get("category") or "").lower()
        if body.get("age_restricted") or category in {c.lower() for c in restricted_categories}:
            text += " (restricted)"
    elif row["type"] == "id_checked":
        text += f": {body.get('result', '?')}"
    elif row["type"] == "transaction_end":
        text += f": {body.get('status', 'completed')}"
    return text


def _body(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
