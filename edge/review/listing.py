"""Lists as columns: each column's header, text and link, so a list's HTML table and its CSV export show the
same readable values (local times, names rather than codes) under the same headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from edge.review import present
from edge.review.inputs import Period, query
from edge.store.review_records import OPEN


@dataclass(frozen=True)
class Column:
    header: str
    text: Callable[[dict], object]
    href: Callable[[dict], str | None] | None = None
    css: str = ""


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None
    css: str


@dataclass(frozen=True)
class Listing:
    columns: list[Column]

    @property
    def header(self) -> list[str]:
        return [column.header for column in self.columns]

    def cells(self, rows: list[dict]) -> list[list[Cell]]:
        return [
            [Cell(_text(c.text(row)), c.href(row) if c.href else None, c.css) for c in self.columns] for row in rows
        ]

    def without_links(self) -> Listing:
        """For a page outside the app (the e-mailed report), where its links would lead nowhere."""
        return Listing([Column(column.header, column.text, None, column.css) for column in self.columns])

    def values(self, rows: list[dict]) -> list[list[object]]:
        """The same cells for CSV: numbers stay numbers."""
        return [[column.text(row) for column in self.columns] for row in rows]


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def flag_link(row: dict, key: str = "id") -> str | None:
    return None if row.get(key) is None else f"/flags/{int(row[key])}"


RISK_HEADER = "Chance under the Challenge age"


def risk_column(threshold: float) -> Column:
    """Beside the estimate: how likely the customer is under the Challenge age (`threshold`: the configured
    policy.threshold, for rows whose run did not record one)."""
    return Column(RISK_HEADER, lambda r: present.risk_text(r, threshold))


def flags_listing(zone: ZoneInfo, threshold: float) -> Listing:
    return Listing(
        [
            Column("Flag", lambda r: f"#{r['id']}", flag_link),
            Column("Time", lambda r: present.local_time(r["at"], zone)),
            Column("Till", lambda r: r["till_id"]),
            Column("Cashier", lambda r: r["cashier_id"]),
            Column("Transaction", lambda r: r["pos_transaction_id"]),
            Column("Type", lambda r: present.name(present.TYPES, r["type"])),
            Column("Severity", lambda r: present.name(present.SEVERITIES, r["severity"]), css="severity"),
            Column("Age estimate (interval)", present.age_text),
            risk_column(threshold),
            Column("Outcome", lambda r: present.name(present.OUTCOME_NAMES, r["outcome"]), css="outcome"),
        ]
    )


def compliance_listing(period: Period) -> Listing:
    def drill(row: dict) -> str:
        return "/transactions?" + query(cashier=row["cashier"], required="1", **period.params())

    return Listing(
        [
            Column("Cashier", lambda r: r["cashier"], drill),
            Column("ID checks required", lambda r: r["required"]),
            Column("ID checks done", lambda r: r["checked"]),
            Column("Share done", lambda r: f"{100 * r['share']:.1f}%"),  # 89.8% is under a 90% threshold
            Column("Needs coaching", lambda r: "yes" if r["coaching"] else "no", css="coaching"),
        ]
    )


def transactions_listing(zone: ZoneInfo, threshold: float) -> Listing:
    return Listing(
        [
            Column("Started", lambda r: present.local_time(r["started_at"], zone)),
            Column("Till", lambda r: r["till_id"]),
            Column("Cashier", lambda r: r["cashier_id"]),
            Column("Transaction", lambda r: r["pos_transaction_id"]),
            Column("Status", lambda r: r["status"]),
            Column("Restricted items", lambda r: r["restricted_items"]),
            Column("ID check required", lambda r: present.yes_no(r["check_required"])),
            Column("ID check", lambda r: present.id_check_text(r["id_check"])),
            Column("Age estimate (interval)", present.age_text),
            risk_column(threshold),
            Column(
                "Flag",
                lambda r: present.name(present.TYPES, r["flag_type"]) if r["flag_id"] else "—",
                lambda r: flag_link(r, "flag_id"),
            ),
        ]
    )


def run_fps(row: dict) -> float | None:
    """Frames per second: the last heartbeat's while running, else the whole run's average."""
    if row["status"] == "running" and row["fps"] is not None:
        return row["fps"]
    seconds = (present.parse(row["last_seen"]) - present.parse(row["started_at"])).total_seconds()
    return round(row["frames"] / seconds, 1) if seconds > 0 and row["frames"] else None


def run_state(row: dict, now: datetime, silent_after_s: float) -> str:
    """The run's status, and for a running one whether its heartbeat is recent."""
    state = present.name(present.RUN_STATES, row["status"])
    if row["status"] == "running" and (now - present.parse(row["last_seen"])).total_seconds() > silent_after_s:
        state += " (no heartbeat: stalled or power lost?)"
    return state


def runs_listing(zone: ZoneInfo, now: datetime, silent_after_s: float) -> Listing:
    return Listing(
        [
            Column("Till", lambda r: r["till_id"] or "(no POS data)"),
            Column("Run", lambda r: r["id"]),
            Column("Mode", lambda r: r["mode"]),
            Column("Started", lambda r: present.local_time(r["started_at"], zone)),
            Column("Last seen", lambda r: present.local_time(r["last_seen"], zone)),
            Column("Status", lambda r: run_state(r, now, silent_after_s), css="runstate"),
            Column("fps", run_fps),
            Column("Frames", lambda r: r["frames"]),
            Column("Dropped frames", lambda r: r["dropped_frames"]),
            Column("Source", lambda r: r["source_state"] or ("—" if r["status"] == "running" else "closed")),
        ]
    )


def audit_listing(zone: ZoneInfo) -> Listing:
    def change(row: dict, key: str) -> str | None:
        return present.name(present.OUTCOME_NAMES, row[key] or OPEN) if row["action"] == "outcome" else None

    return Listing(
        [
            Column("Time", lambda r: present.local_time(r["at"], zone)),
            Column("Who", lambda r: r["who"]),
            Column("Action", lambda r: "outcome set" if r["action"] == "outcome" else r["action"]),
            Column("Flag", lambda r: f"#{r['alert_id']}", lambda r: flag_link(r, "alert_id")),
            Column("From", lambda r: change(r, "from_outcome")),
            Column("To", lambda r: change(r, "to_outcome")),
            Column("Note", lambda r: r["note"]),
        ]
    )


def filename(kind: str, period: Period | None = None) -> str:
    suffix = "" if period is None else f"-{period.first}-to-{period.last}"
    return quote(f"agecam-{kind}{suffix}.csv")
