"""POS events: the four event types as pydantic models, parsed from HTTP bodies or a replay script.

Types are strict (a till id must be a string, age_restricted a real boolean) and unknown fields are
refused, so a typo such as `age_restrited` fails loudly instead of silently disabling the policy.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, TypeAdapter, ValidationError

from edge.errors import PosError

# No control characters (NUL, newline, escape): the chain's PostgreSQL refuses a NUL, so such an event would
# be accepted here and its record never reach the chain; a newline would forge lines in logs and exports.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
# A replay event is recorded at the run's origin plus `t`: a `t` of 1e12 (or Infinity) is past any date the
# log can write, and used to end a replay in an internal error before its open transactions were decided.
MAX_T = 1e9  # about 31 years of video
Seconds = Annotated[StrictFloat | StrictInt, Field(ge=0, le=MAX_T)]


class BaseEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    till_id: Name
    cashier_id: Name | None = None
    transaction_id: Name | None = None
    # The POS's own time (Unix seconds or ISO 8601); recorded, while live timing uses the receipt time.
    ts: StrictFloat | StrictInt | datetime | None = None
    # Replay scripts only: seconds from the start of the video.
    t: Seconds | None = None


class TransactionStart(BaseEvent):
    type: Literal["transaction_start"]


class ItemScanned(BaseEvent):
    type: Literal["item_scanned"]
    sku: Name | None = None
    name: Annotated[str, Field(max_length=200, pattern=PRINTABLE)] | None = None
    category: Name | None = None
    age_restricted: StrictBool = False


class IdChecked(BaseEvent):
    type: Literal["id_checked"]
    result: Literal["passed", "failed", "refused"]


class TransactionEnd(BaseEvent):
    type: Literal["transaction_end"]
    # voided: the sale did not go through, so nothing was sold and nothing is flagged.
    status: Literal["completed", "voided"] = "completed"


PosEvent = Annotated[TransactionStart | ItemScanned | IdChecked | TransactionEnd, Field(discriminator="type")]
EVENT_TYPES = ("transaction_start", "item_scanned", "id_checked", "transaction_end")
_ADAPTER: TypeAdapter[PosEvent] = TypeAdapter(PosEvent)


class BadEvent(ValueError):
    """An event that is not valid JSON (HTTP 400) or does not fit the models (422); the message says why."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# The time fields accept more than one type, so pydantic's own message names its first attempt ("ts.float:
# Input should be a valid number"); say what each one takes instead.
TIME_FIELDS = {
    "ts": "must be a number (Unix seconds) or an ISO 8601 date-time such as 2026-11-22T09:00:00Z",
    "t": f"must be a number of seconds from the start of the video, 0 or more, up to {MAX_T:.0f}",
}


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    parts = [str(part) for part in first["loc"] if part not in EVENT_TYPES]
    where = ".".join(parts) or "event"
    if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
        return f"'type' must be one of {', '.join(EVENT_TYPES)}"
    if first["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    if parts and parts[0] in TIME_FIELDS:
        return f"{parts[0]}: {TIME_FIELDS[parts[0]]} (got {first['input']!r})"
    if first["type"] == "string_pattern_mismatch":
        return f"{where}: a control character (NUL, newline, tab, escape) is not allowed"
    return f"{where}: {first['msg']}"


def parse_event(data: object) -> PosEvent:
    if not isinstance(data, dict):
        raise BadEvent("an event must be a JSON object", 400)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise BadEvent(describe(error)) from None


def parse_json(body: bytes) -> PosEvent:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadEvent(f"not valid JSON ({error})", 400) from None
    except (ValueError, RecursionError) as error:  # a 5,000-digit number, JSON nested 1,000 deep: no retry helps
        raise BadEvent(f"JSON too deep or a number too long ({type(error).__name__})", 400) from None
    return parse_event(data)


def is_restricted(event: ItemScanned, categories: list[str]) -> bool:
    category = (event.category or "").strip().lower()
    return event.age_restricted or category in {name.lower() for name in categories}


# A script line is one event (the endpoint takes 16 KiB): reading stops past this, so a 100 MB line or /dev/zero
# costs no more memory than this (the whole file used to be read first: a MemoryError, or the machine's memory).
MAX_LINE_BYTES = 64 * 1024


def load_script(path: Path) -> list[PosEvent]:
    """A replay script: one JSON event per line, each with `t`, sorted by `t` (stable). Blank lines are skipped.
    Lines end at LF, CRLF or CR only: str.splitlines() also split a line at U+2028 or U+0085, which JSON allows
    inside a string, so a valid event was refused and the following lines' numbers were off."""
    events = []
    try:
        # latin-1 gives one character per byte: lines split on the bytes, each decoded as UTF-8 below with its number.
        with path.open(encoding="latin-1", newline=None) as stream:
            for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), ""), start=1):
                if len(line.removesuffix("\n")) > MAX_LINE_BYTES:
                    raise PosError(f"{path} line {number} is over {MAX_LINE_BYTES:,} bytes: give one event a line")
                if event := _script_event(path, number, line.encode("latin-1")):
                    events.append(event)
    except OSError as error:
        raise PosError(f"cannot read the POS script {path} ({error.strerror or error}): check the path") from None
    if not events:  # a script truncated to nothing (a full disk while copying) replayed with no POS, exit 0
        raise PosError(f"{path} has no events: give one JSON event a line, each with t (seconds into the video)")
    return sorted(events, key=lambda event: event.t)


def _script_event(path: Path, number: int, line: bytes) -> PosEvent | None:
    """The event on a script line, or None for a blank line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PosError(
            f"{path} line {number}: not UTF-8 text (byte {error.start + 1}): save the script as UTF-8"
        ) from None
    if not text.strip():
        return None
    try:
        event = parse_json(line)  # bytes: a BOM (a spreadsheet's or Notepad's UTF-8) is read as such
    except BadEvent as error:
        raise PosError(f"{path} line {number}: {error}") from None
    if event.t is None:
        raise PosError(f"{path} line {number}: a replay event needs 't', seconds from the start of the video")
    return event
