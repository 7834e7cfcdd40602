"""The collector's view of a till's messages: every field checked (pydantic) before anything is stored.

A record message is JSON: {"v": 1, "id": "<log key>:<outbox row id>", "store_id", "till_id", "seq",
"kind", "at", "data": {...}} on `<prefix><kind>`, where the prefix ends with `<store>/<till>/`. Anything
else on the topic (bad JSON, a missing or extra field, a wrong type, a store or till that its topic
contradicts) is refused with a reason, counted and logged, never stored.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from edge.store.central import ChainRecord, TillSeen

log = logging.getLogger(__name__)
NUL, REPLACEMENT = "\x00", "\ufffd"
NUL_REPLACED = (
    "record %s of till %s/%s: %d NUL characters stored as U+FFFD (PostgreSQL text cannot hold NUL): the till"
    " runs an agecam older than its POS check that refuses control characters: upgrade it"
)
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Count = Annotated[int, Field(ge=0, le=2**62)]
Id = Annotated[int, Field(ge=0, le=2**31 - 1)]
Text = Annotated[str, Field(max_length=200)]
Age = Annotated[float, Field(ge=0, le=150)]
# An interval's ends are quantiles of a mixture of normals around ages in the model's range (edge.vision.
# customer): a child's low end falls below 0, a wide one's high end above the range. Refusing them lost the
# record, and with it the flag, for good (a refused message is acknowledged): bound them only loosely.
Bound = Annotated[float, Field(ge=-1000, le=1000)]


def _probability(value: float) -> float:
    """A weighted mean of probabilities can land a rounding error outside [0, 1]: clamp that, refuse more."""
    if not -1e-9 <= value <= 1 + 1e-9:
        raise ValueError("must be a probability, between 0 and 1")
    return min(1.0, max(0.0, value))


# P(real age < the till's Challenge age). Optional: a till from before it (or its queued rows) sends none.
Probability = Annotated[float, AfterValidator(_probability)] | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Run(Strict):
    run_id: Id
    started_at: AwareDatetime
    ended_at: AwareDatetime | None
    status: Literal["running", "completed", "stopped", "failed"]
    mode: Literal["live", "replay"]
    model_sha256: Text
    provider: Text
    agecam_version: Text
    frames: Count
    dropped_frames: Count
    faces: Count


class Customer(Strict):
    run_id: Id
    track_id: Id
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    age: Age
    age_low: Bound
    age_high: Bound
    p_under: Probability = None
    samples: Count
    age_group: Text
    counted: bool


class Hourly(Strict):
    run_id: Id
    hour: AwareDatetime
    age_group: Text
    customers: Count
    age_sum: Annotated[float, Field(ge=0)]


class OptionalEstimate(Strict):
    """A sale's customer estimate: all None where no face was seen."""

    track_id: Id | None
    age: Age | None
    age_low: Bound | None
    age_high: Bound | None
    p_under: Probability = None
    samples: Count | None


class Transaction(OptionalEstimate):
    run_id: Id
    number: Id
    pos_transaction_id: Text | None
    pos_till_id: Text
    cashier_id: Text | None
    started_at: AwareDatetime
    ended_at: AwareDatetime | None
    # 'unresolved' (event log schema 6): the policy closed a sale the POS never ended. A refused record is
    # acknowledged and never sent again, so every status a till can store must be accepted here.
    status: Literal["open", "completed", "voided", "unresolved"]
    restricted_items: Count
    id_check: Literal["passed", "failed", "refused"] | None
    check_required: bool


class Alert(OptionalEstimate):
    run_id: Id
    alert_id: Id
    transaction_number: Id
    kind: Literal["alert", "flag"]
    type: Text
    severity: Text
    at: AwareDatetime
    t: float
    latency_s: float | None
    pos_till_id: Text
    cashier_id: Text | None
    association: Annotated[str, Field(max_length=20000)] | None
    has_evidence: bool

    @field_validator("association")
    @classmethod
    def _json_object(cls, value: str | None) -> str | None:
        try:
            parsed = None if value is None else json.loads(value)
        except RecursionError:  # '[[[[...': not a ValueError, so pydantic would let it end the collector
            raise ValueError("association nests too deeply") from None
        if value is not None and not isinstance(parsed, dict):
            raise ValueError("association must be a JSON object")
        return value


DATA = {"run": Run, "customer": Customer, "hourly": Hourly, "transaction": Transaction, "alert": Alert}


class Envelope(Strict):
    v: Literal[1]
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}:[0-9]{1,18}$")]
    store_id: Name
    till_id: Name
    seq: Annotated[int, Field(ge=1, le=2**62)]
    kind: Literal["run", "customer", "hourly", "transaction", "alert"]
    at: AwareDatetime
    data: dict


class Heartbeat(Strict):
    v: Literal[1]
    store_id: Name
    till_id: Name
    at: float
    outbox: Id  # the chain_tills view reads it as a PostgreSQL integer: a larger one would break that view
    oldest_unshipped_s: float
    status: dict[str, Annotated[str, Field(max_length=100)] | float | None]


_NAMES: TypeAdapter[tuple[str, str]] = TypeAdapter(tuple[Name, Name])


class Refused(Exception):
    """A message that is not one of ours: the reason is logged and counted."""


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(message)"
    return f"{where}: {first['msg']}"


def _till_of(topic: str, kind: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) < 3 or parts[-1] != kind:
        raise Refused(f"topic {topic[:120]!r} does not end with <store>/<till>/{kind}")
    return parts[-3], parts[-2]


def parse_record(topic: str, payload: bytes) -> ChainRecord:
    try:
        envelope = Envelope.model_validate_json(payload)
        data = DATA[envelope.kind].model_validate(envelope.data)
    except ValidationError as error:
        raise Refused(_reason(error)) from None
    if _till_of(topic, envelope.kind) != (envelope.store_id, envelope.till_id):
        raise Refused(f"store/till {envelope.store_id}/{envelope.till_id} differ from the topic {topic[:120]!r}")
    log_key, seq = envelope.id.split(":")
    if int(seq) != envelope.seq:
        raise Refused(f"id {envelope.id} and seq {envelope.seq} disagree")
    values, replaced = _without_nul(data.model_dump())
    if replaced:
        log.warning(NUL_REPLACED, envelope.id, envelope.store_id, envelope.till_id, replaced)
    return ChainRecord(
        envelope.store_id, envelope.till_id, envelope.id, log_key, envelope.seq, envelope.kind, envelope.at, values
    )


def _without_nul(values: dict) -> tuple[dict, int]:
    """A record's values with each NUL replaced by U+FFFD, and how many there were. A till older than its POS
    check let NUL into text fields; refused by PostgreSQL (text and jsonb cannot hold it), the record was
    acknowledged and lost for good. The association is JSON text: a NUL in it is the escape \\u0000."""
    clean, replaced = {}, 0
    for name, value in values.items():
        if name == "association" and value is not None and "\\u0000" in value:
            parsed, count = _scrub(json.loads(value))
            value = json.dumps(parsed, ensure_ascii=False) if count else value
        elif isinstance(value, str):
            value, count = value.replace(NUL, REPLACEMENT), value.count(NUL)
        else:
            count = 0
        clean[name], replaced = value, replaced + count
    return clean, replaced


def _scrub(value: object) -> tuple[object, int]:
    """A JSON value with each NUL in its strings and keys replaced, and how many there were."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT), value.count(NUL)
    if isinstance(value, list):
        items = [_scrub(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, dict):
        pairs = [(_scrub(key), _scrub(item)) for key, item in value.items()]
        return {key: item for (key, _), (item, _) in pairs}, sum(a + b for (_, a), (_, b) in pairs)
    return value, 0


def parse_heartbeat(topic: str, payload: bytes) -> TillSeen:
    try:
        beat = Heartbeat.model_validate_json(payload)
    except ValidationError as error:
        raise Refused(_reason(error)) from None
    if _till_of(topic, "heartbeat") != (beat.store_id, beat.till_id):
        raise Refused(f"heartbeat of {beat.store_id}/{beat.till_id} on the topic {topic[:120]!r}")
    if any("\x00" in text for key, value in beat.status.items() for text in (key, value) if isinstance(text, str)):
        raise Refused("heartbeat status: a NUL character (PostgreSQL's jsonb cannot store it)")
    status = {**beat.status, "outbox": beat.outbox, "oldest_unshipped_s": beat.oldest_unshipped_s, "till_time": beat.at}
    text = json.dumps(status)
    if len(text) > 4000:
        raise Refused(f"heartbeat status of {len(text)} bytes (at most 4000)")
    return TillSeen(beat.store_id, beat.till_id, status=text)


def parse_availability(topic: str, payload: bytes, properties: dict[str, str]) -> TillSeen:
    state = payload.decode("utf-8", "replace")
    if state not in ("online", "offline"):
        raise Refused(f"availability {state[:40]!r} is neither online nor offline")
    store, till = properties.get("store_id"), properties.get("till_id")
    if (store, till) != _till_of(topic, "availability"):
        raise Refused(f"availability on {topic[:120]!r} names another till ({store}/{till})")
    try:  # the same names as records and heartbeats take, or any topic would become a till of the chain
        _NAMES.validate_python((store, till))
    except ValidationError as error:
        raise Refused(f"availability: {_reason(error)}") from None
    return TillSeen(store, till, availability=state)
