"""One flag: its transaction's POS events on a timeline, the customer's estimate, the association and its
candidates, the evidence crop (reviewers only, each view logged), the outcome form and the audit trail."""

from __future__ import annotations

import json
import time
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from edge.review import present
from edge.review.auth import Session
from edge.review.inputs import BadInput
from edge.review.svg import POS_EVENT, SEVERITY, Mark, timeline
from edge.review.web import Context, action, log, page
from edge.store import flag_queries
from edge.store.review_records import MAX_NOTE, OUTCOMES, OutcomeChanged, UnknownFlag


def _find(db: object, flag_id: int) -> dict:
    found = flag_queries.flag(db, flag_id)
    if found is None:
        raise HTTPException(404, f"There is no flag #{flag_id}. Alerts are not flags; check the link or the id.")
    return found


@page()
def flag_page(request: Request, ctx: Context, session: Session) -> Response:
    flag_id = request.path_params["flag_id"]
    with ctx.read() as db:
        flag = _find(db, flag_id)
        events = flag_queries.transaction_events(db, flag["transaction"])
        person = flag_queries.customer(db, flag["run_id"], flag["track_id"])
        reviews, views = flag_queries.reviews(db, flag_id), flag_queries.evidence_views(db, flag_id)
    categories = ctx.config.pos.restricted_categories
    steps = [{**row, "text": _event_text(row, categories)} for row in events]
    return ctx.render(
        request,
        "flag.html",
        nav="flags",
        title=f"Flag #{flag_id}",
        flag=flag,
        txn=flag["transaction"],
        steps=steps,
        chart=timeline(_marks(steps, flag["transaction"]["started_at"]), title="The transaction's events"),
        person=person,
        risk=present.risk_text(flag, ctx.config.policy.threshold),
        candidates=_candidates(flag["transaction"]["association"]),
        evidence=_evidence_state(ctx, flag),
        reviews=reviews,
        seen=reviews[-1]["id"] if reviews else 0,
        views=views,
        outcomes=OUTCOMES,
        max_note=MAX_NOTE,
    )


def _event_text(row: dict, categories: list[str]) -> str:
    if row["source"] == "pos":
        return present.pos_event_text(row, categories)
    text = present.name(present.TYPES, row["type"])
    if row["kind"] == "flag":
        return f"Flag: {text} ({present.name(present.SEVERITIES, row['severity'])})"
    latency = f", {row['latency_s']:.2f} s after the scan" if row["latency_s"] is not None else ""
    return f"Alert: {text}{latency}"


def _marks(steps: list[dict], started_at: str) -> list[Mark]:
    start = present.parse(started_at)
    marks = []
    for step in steps:
        seconds = max(0.0, (present.parse(step["at"]) - start).total_seconds())
        if step["source"] == "pos":
            marks.append(Mark(seconds, step["text"], POS_EVENT))
        else:
            marks.append(Mark(seconds, step["text"], SEVERITY.get(step["severity"], POS_EVENT), "diamond"))
    return marks


def _candidates(association: str | None) -> dict | None:
    """The association as recorded: the chosen track, its share, the window, and each candidate track's
    zone presence with its share of the total."""
    if not association:
        return None
    data = json.loads(association)
    presence = {int(track): float(value) for track, value in (data.get("presence") or {}).items()}
    total = sum(presence.values()) or 1.0
    rows = [
        {"track": track, "presence": value, "share": value / total, "chosen": track == data.get("track_id")}
        for track, value in sorted(presence.items(), key=lambda item: -item[1])
    ]
    return {"track": data.get("track_id"), "share": data.get("share"), "window": data.get("window"), "rows": rows}


def _crop_path(ctx: Context, flag: dict) -> Path | None:
    """The flag's crop if it is still on disk, inside an evidence folder agecam writes to, and within
    evidence.retention_days."""
    if not flag["evidence"]:
        return None
    path = Path(flag["evidence"]).resolve()
    folders = {(ctx.db_path.parent / "evidence").resolve(), (ctx.config.state_dir() / "evidence").resolve()}
    if path.parent not in folders or path.suffix != ".jpg" or not path.is_file():
        return None
    # Purge runs only with the till (at start, hourly) or `agecam purge`: a crop it has not reached yet is
    # past retention all the same. Its age is the file's, as purge reads it.
    cutoff = time.time() - ctx.config.evidence.retention_days * 86400
    return path if path.stat().st_mtime >= cutoff else None


def _evidence_state(ctx: Context, flag: dict) -> str:
    if _crop_path(ctx, flag):
        return "available"
    if flag["evidence"]:
        return "deleted"
    return "none" if ctx.config.evidence.enabled else "off"


@page("reviewer")
def evidence(request: Request, ctx: Context, session: Session) -> Response:
    flag_id = request.path_params["flag_id"]
    with ctx.read() as db:
        path = _crop_path(ctx, _find(db, flag_id))
    if path is None:
        raise HTTPException(404, f"Flag #{flag_id} has no evidence crop (off, none taken, or deleted after retention).")
    if request.method == "GET":  # a HEAD (a link checker, a prefetch) sends no image: no one saw the face
        ctx.store.log_evidence_view(flag_id, session.user)
        log.info("evidence of flag %d viewed by %s", flag_id, session.user)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@action("reviewer")
def set_outcome(request: Request, ctx: Context, session: Session, form: dict[str, str]) -> Response:
    flag_id = request.path_params["flag_id"]
    # A browser sends a textarea's line breaks as CRLF but counts each as one character against maxlength.
    outcome, note = form.get("outcome", ""), form.get("note", "").replace("\r\n", "\n").strip()
    if outcome not in OUTCOMES:
        raise BadInput(f"outcome: choose one of {', '.join(OUTCOMES)}")
    if len(note) > MAX_NOTE:
        raise BadInput(f"the note is longer than {MAX_NOTE} characters: shorten it")
    expected, seen = form.get("expected") or None, _seen(form.get("seen"))
    try:
        previous = ctx.store.set_outcome(flag_id, session.user, outcome, note, expected=expected, seen=seen)
    except UnknownFlag:
        raise HTTPException(404, f"There is no flag #{flag_id}.") from None
    except OutcomeChanged as changed:
        raise HTTPException(
            409,
            f"Someone set this flag to '{present.name(present.OUTCOME_NAMES, changed.current)}' while you had the"
            " page open: reload it, check their note, and set the outcome again if needed.",
        ) from None
    log.info("flag %d: %s -> %s by %s", flag_id, previous, outcome, session.user)
    return RedirectResponse(f"/flags/{flag_id}#review", status_code=303)


def _seen(text: str | None) -> int:
    """The latest review row the form's page showed: without it a save could overwrite a change unseen."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadInput("the form does not say which review it was opened at: reload the flag's page and try again")
    return int(text)
