"""`agecam report --out report.html`: one self-contained HTML file to send by e-mail, with the same
overview, charts (inline SVG) and names as the review app: the period, generation time, tills and time
zone; totals; then what needs action first: flags by severity and outcome and the flags, ID-check compliance
coloured by the threshold, the restricted sales (with readable columns); last the age mix and traffic with
empty hours kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib.resources import files

from jinja2 import Environment

from edge.review import overview
from edge.review.inputs import Period
from edge.review.listing import Column, Listing, compliance_listing, flags_listing, risk_column
from edge.review.present import TYPES, age_text, id_check_text, local_time, name, yes_no
from edge.store import flag_queries, review_queries

MAX_ROWS = 1000  # per list: a longer period says how many more there are


def sales_listing(period: Period, policy_threshold: float) -> Listing:
    return Listing(
        [
            Column("Time", lambda r: local_time(r["started_at"], period.zone)),
            Column("Till", lambda r: r["till_id"]),
            Column("Cashier", lambda r: r["cashier_id"]),
            Column("Transaction", lambda r: r["pos_transaction_id"]),
            Column("Restricted items", lambda r: r["restricted_items"]),
            Column("ID check required", lambda r: yes_no(r["check_required"])),
            Column("ID check", lambda r: id_check_text(r["id_check"])),
            Column("Age estimate (interval)", age_text),
            risk_column(policy_threshold),
            Column("Flag", lambda r: name(TYPES, r["flag_type"]) if r["flag_type"] else "—"),
        ]
    )


def build_report(
    db: sqlite3.Connection,
    env: Environment,
    period: Period,
    threshold: float,
    policy_threshold: float,
    now: datetime | None = None,
) -> str:
    """The whole page for the period, from the event log through the store's review queries. `threshold` is
    review.compliance_threshold; `policy_threshold` the Challenge age for rows whose run recorded none."""
    span = period.span()
    summary = overview.build(db, period)
    cashiers = overview.compliance_rows(review_queries.compliance(db, span), threshold)
    sales, sales_total = review_queries.restricted_sales(db, span, MAX_ROWS)
    newest = flag_queries.flags(db, flag_queries.FlagFilter(span, limit=MAX_ROWS))
    flags = flags_listing(period.zone, policy_threshold)
    flag_list = Listing([column for column in flags.columns if column.header != "Flag"])
    sales_list = sales_listing(period, policy_threshold)
    cashier_list = compliance_listing(period).without_links()
    return env.get_template("emailed_report.html").render(
        period=period,
        zone=str(period.zone),
        generated=(now or datetime.now(UTC)).astimezone(period.zone).strftime("%Y-%m-%d %H:%M"),
        tills=review_queries.tills_in(db, span),
        o=summary,
        threshold=threshold,
        compliance_chart=overview.compliance_chart(cashiers, threshold),
        cashiers_header=cashier_list.header,
        cashiers=cashier_list.cells(cashiers),
        sales_header=sales_list.header,
        sales=sales_list.cells(sales),
        sales_total=sales_total,
        flags_header=flag_list.header,
        flags=flag_list.cells(newest[::-1]),
        flags_total=summary.flags,
        css=files("edge.review").joinpath("static", "app.css").read_text(encoding="utf-8"),
    )
