"""Rows of the event log for people: as an aligned table, JSON or CSV, and statistics pivoted by age group."""

from __future__ import annotations

import csv
import io
import json
import re

from edge.vision.age_groups import group_order

EVENT_COLUMNS = [
    "kind", "at", "type", "severity", "till_id", "cashier_id", "transaction", "track_id",
    "age", "age_low", "age_high", "p_under", "samples", "age_group", "run_id", "outcome",
]  # fmt: skip
# A spreadsheet runs such a cell as a formula; NUL too, as ASVS 5.0 (1.2.10) lists it: a note may hold one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # terminal escapes and other control characters
# Bidi controls: an unclosed right-to-left override in one cell reverses the rest of the line in a terminal,
# so a till id could make the ids and ages beside it read differently.
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def terminal_safe(text: str) -> str:
    """Control characters shown as \\xNN and bidi controls as \\uNNNN, so a stored value cannot drive the
    reader's terminal or reorder what it shows."""
    text = CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return BIDI.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def render(rows: list[dict], columns: list[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)
        return buffer.getvalue().rstrip("\n")
    return table(rows, columns)


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    """Rows as CSV with a header line, every text cell spreadsheet-safe (the review app's downloads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(cell) for cell in header])
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return buffer.getvalue()


# Digits of a float column in a table (others: one). p_under gets two: with one, a p_under of 0.25, which
# meets the default policy.risk 0.25, would read 0.2.
DIGITS = {"p_under": 2}


def table(rows: list[dict], columns: list[str]) -> str:
    def cell(value: object, column: str) -> str:
        if isinstance(value, float):
            return f"{value:.{DIGITS.get(column, 1)}f}"
        return "" if value is None else terminal_safe(str(value))

    cells = [[cell(row.get(column), column) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines) + ("" if rows else "\n(no rows)")


def pivot(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Stats rows as one line per period with a column per age group, plus the total."""
    groups = sorted({row["age_group"] for row in rows}, key=group_order)
    periods: dict[str, dict] = {}
    for row in rows:
        line = periods.setdefault(row["period"], {"period": row["period"], "total": 0})
        line[row["age_group"]] = row["customers"]
        line["total"] += row["customers"]
    return list(periods.values()), ["period", *groups, "total"]
