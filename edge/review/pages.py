"""The review app's pages for a period: the overview, the flags queue, cashier compliance with its
drill-down to transactions, till health and the audit log. Every list also downloads as CSV
(`?format=csv`, the whole list, not one page)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.review import overview
from edge.review.auth import Session
from edge.review.inputs import Period, choice, page_number, parse_period, query, text_filter
from edge.review.listing import (
    Listing,
    audit_listing,
    compliance_listing,
    filename,
    flags_listing,
    runs_listing,
    transactions_listing,
)
from edge.review.present import OUTCOME_NAMES, TYPES
from edge.review.web import Context, csv_download, page
from edge.store import flag_queries, review_queries
from edge.store.review_queries import TransactionFilter

PAGE_SIZE = 100
SILENT_AFTER_S = 60.0  # a running till writes a heartbeat every 10 s
STATUSES = ["open", "reviewed", *[key for key in OUTCOME_NAMES if key != "open"]]


def _wants_csv(request: Request) -> bool:
    return choice(request.query_params, "format", ["html", "csv"]) == "csv"


def _list(
    request: Request,
    ctx: Context,
    template: str,
    listing: Listing,
    rows: list[dict],
    *,
    total: int | None = None,
    number: int = 1,
    **values: object,
) -> Response:
    total = len(rows) if total is None else total
    pages = max(1, -(-total // PAGE_SIZE))
    # Without page and format, which the links set themselves (a `format=html` kept was a 500 on csv_link).
    args = {key: value for key, value in request.query_params.items() if key not in ("page", "format")}
    # A stale link past the end (flags reviewed since): its last page, not "6 transactions" and "none match".
    if number > pages:
        return RedirectResponse(f"?{query(**args, page=pages)}", status_code=303)
    return ctx.render(
        request,
        template,
        header=listing.header,
        cells=listing.cells(rows),
        total=total,
        page=number,
        pages=pages,
        prev_link=f"?{query(**args, page=number - 1)}" if number > 1 else None,
        next_link=f"?{query(**args, page=number + 1)}" if number < pages else None,
        csv_link=f"?{query(**args, format='csv')}",
        **values,
    )


@page()
def overview_page(request: Request, ctx: Context, session: Session) -> Response:
    period = parse_period(request.query_params, ctx.zone)
    with ctx.read() as db:
        summary = overview.build(db, period)
    return ctx.render(request, "overview.html", nav="overview", title="Overview", period=period, o=summary)


def _flag_filter(request: Request, period: Period, number: int, csv: bool) -> flag_queries.FlagFilter:
    args = request.query_params
    return flag_queries.FlagFilter(
        period.span(),
        till=text_filter(args, "till"),
        cashier=text_filter(args, "cashier"),
        type=text_filter(args, "type"),
        status=choice(args, "status", STATUSES),
        limit=None if csv else PAGE_SIZE,
        offset=0 if csv else (number - 1) * PAGE_SIZE,
    )


@page()
def flags_page(request: Request, ctx: Context, session: Session) -> Response:
    period, number, csv = (
        parse_period(request.query_params, ctx.zone),
        page_number(request.query_params),
        _wants_csv(request),
    )
    filters = _flag_filter(request, period, number, csv)
    listing = flags_listing(ctx.zone, ctx.config.policy.threshold)
    with ctx.read() as db:
        rows = flag_queries.flags(db, filters)
        if csv:
            return csv_download(filename("flags", period), listing.header, listing.values(rows))
        total, choices = flag_queries.count_flags(db, filters), flag_queries.flag_choices(db, period.span())
    return _list(
        request, ctx, "flags.html", listing, rows, total=total, number=number,
        nav="flags", title="Flags", period=period, filters=filters, choices=choices,
        statuses=STATUSES, types=sorted(set(choices["types"]) | set(TYPES) - {"id_check_required"}),
    )  # fmt: skip


@page()
def compliance_page(request: Request, ctx: Context, session: Session) -> Response:
    period = parse_period(request.query_params, ctx.zone)
    threshold = ctx.config.review.compliance_threshold
    with ctx.read() as db:
        rows = overview.compliance_rows(review_queries.compliance(db, period.span()), threshold)
    listing = compliance_listing(period)
    if _wants_csv(request):
        return csv_download(filename("compliance", period), listing.header, listing.values(rows))
    chart = overview.compliance_chart(rows, threshold)
    return _list(
        request, ctx, "compliance.html", listing, rows,
        nav="compliance", title="Cashier compliance", period=period, chart=chart, threshold=threshold,
        coaching=[row["cashier"] for row in rows if row["coaching"]],
    )  # fmt: skip


@page()
def transactions_page(request: Request, ctx: Context, session: Session) -> Response:
    args = request.query_params
    period, number, csv = parse_period(args, ctx.zone), page_number(args), _wants_csv(request)
    filters = TransactionFilter(
        period.span(),
        cashier=text_filter(args, "cashier"),
        till=text_filter(args, "till"),
        required_only=choice(args, "required", ["0", "1"]) == "1",
        limit=None if csv else PAGE_SIZE,
        offset=0 if csv else (number - 1) * PAGE_SIZE,
    )
    listing = transactions_listing(ctx.zone, ctx.config.policy.threshold)
    with ctx.read() as db:
        rows = review_queries.transactions(db, filters)
        if csv:
            return csv_download(filename("transactions", period), listing.header, listing.values(rows))
        total = review_queries.count_transactions(db, filters)
    return _list(
        request, ctx, "transactions.html", listing, rows, total=total, number=number,
        nav="compliance", title="Transactions", period=period, filters=filters,
    )  # fmt: skip


@page()
def tills_page(request: Request, ctx: Context, session: Session) -> Response:
    number, csv = page_number(request.query_params), _wants_csv(request)
    listing = runs_listing(ctx.zone, datetime.now(UTC), SILENT_AFTER_S)
    with ctx.read() as db:
        rows = review_queries.runs(db, None if csv else PAGE_SIZE, (number - 1) * PAGE_SIZE)
        if csv:
            return csv_download(filename("runs"), listing.header, listing.values(rows))
        total, latest = review_queries.count_runs(db), _latest_per_till(review_queries.runs(db, None))
    return _list(
        request, ctx, "tills.html", listing, rows, total=total, number=number,
        nav="tills", title="Till health", tills=listing.cells(latest),
    )  # fmt: skip


def _latest_per_till(runs: list[dict]) -> list[dict]:
    """Each till's newest run (runs come newest first)."""
    latest: dict[str | None, dict] = {}
    for run in runs:
        latest.setdefault(run["till_id"], run)
    return sorted(latest.values(), key=lambda run: run["till_id"] or "")


@page()
def audit_page(request: Request, ctx: Context, session: Session) -> Response:
    period, number = parse_period(request.query_params, ctx.zone, default_days=30), page_number(request.query_params)
    listing = audit_listing(ctx.zone)
    with ctx.read() as db:
        rows = flag_queries.audit(db, period.span())
    if _wants_csv(request):
        return csv_download(filename("audit", period), listing.header, listing.values(rows))
    shown = rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    return _list(
        request, ctx, "audit.html", listing, shown, total=len(rows), number=number,
        nav="audit", title="Audit log", period=period,
    )  # fmt: skip
