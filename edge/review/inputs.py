"""Query parameters and form fields as typed values, or a BadInput whose message a 400 page shows.

A period is a range of whole local days in the store's time zone; the store layer gets it as a UTC Span.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from edge.store.eventlog import iso
from edge.store.review_queries import Span

DEFAULT_DAYS = 7
MAX_DAYS = 3660  # ten years: anything longer is a typo
MAX_TEXT = 200  # a filter value (till, cashier) longer than this is not one
# Dates a period may use: date's own extremes would overflow the week before them or the day after them.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


class BadInput(ValueError):
    """A request the app cannot serve as asked; the message says what to change (shown on a 400 page)."""


@dataclass(frozen=True)
class Period:
    first: date  # first local day
    last: date  # last local day, inclusive
    zone: ZoneInfo
    exact: Span | None = None  # other bounds than whole days (`agecam report --since/--until`)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def span(self) -> Span:
        return self.exact or Span(self._start_of(self.first), self._start_of(self.last + timedelta(days=1)))

    def traffic_span(self) -> Span:
        """The span for customer counts, which are kept per UTC hour: each hour goes to the local day it
        starts in. In a zone with a half-hour offset a local midnight cuts an hour in two; counting the
        hours that overlap the days (Span.hours) put that hour's customers on both days."""
        if self.exact:  # --since/--until: the hours that overlap it, as `agecam stats` takes them
            return self.exact
        span = self.span()
        return Span(_next_hour(span.since), _next_hour(span.until))

    def _start_of(self, day: date) -> str:
        return iso(datetime.combine(day, time(0), self.zone).timestamp())

    def label(self) -> str:
        if self.exact:
            since, until = (_local(text, self.zone) for text in (self.exact.since, self.exact.until))
            # A short replay's period read "05:59 to 05:59", as if empty: within one minute, seconds too.
            shown = "%Y-%m-%d %H:%M:%S" if f"{since:%Y-%m-%d %H:%M}" == f"{until:%Y-%m-%d %H:%M}" else "%Y-%m-%d %H:%M"
            return f"{since:{shown}} to {until:{shown}}"
        return str(self.first) if self.days == 1 else f"{self.first} to {self.last}"

    def params(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def _next_hour(text: str) -> str:
    """A log time rounded up to a whole UTC hour (itself when it is one)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return iso((floor if floor == moment else floor + timedelta(hours=1)).timestamp())


def _local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)


def exact_period(since: str, until: str, zone: ZoneInfo) -> Period:
    """A period between two log times (until exclusive), drawn over the local days it touches."""
    last = _local(until, zone) - timedelta(microseconds=1)
    return Period(_local(since, zone).date(), max(last.date(), _local(since, zone).date()), zone, Span(since, until))


def today(zone: ZoneInfo) -> date:
    return datetime.now(zone).date()


def parse_date(text: str, field: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{field}: {text[:40]!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-22") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadInput(f"{field}: {day} is out of range: use a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def parse_period(args: Mapping[str, str], zone: ZoneInfo, default_days: int = DEFAULT_DAYS) -> Period:
    """`from` and `to` (local dates, inclusive); without them, the last `default_days` days up to today."""
    last = parse_date(args["to"], "to") if args.get("to") else today(zone)
    first = parse_date(args["from"], "from") if args.get("from") else last - timedelta(days=default_days - 1)
    if last < first:
        raise BadInput(f"the period ends ({last}) before it starts ({first}): swap from and to")
    if (last - first).days >= MAX_DAYS:
        raise BadInput(f"the period is longer than {MAX_DAYS} days: choose a shorter one")
    return Period(first, last, zone)


def text_filter(args: Mapping[str, str], field: str) -> str | None:
    value = args.get(field) or None
    if value is not None and len(value) > MAX_TEXT:
        raise BadInput(f"{field}: longer than {MAX_TEXT} characters")
    return value


def choice(args: Mapping[str, str], field: str, allowed: Collection[str]) -> str | None:
    value = args.get(field) or None
    if value is not None and value not in allowed:
        raise BadInput(f"{field}: {value[:40]!r} is not one of {', '.join(sorted(allowed))}")
    return value


def page_number(args: Mapping[str, str]) -> int:
    text = args.get("page") or "1"
    # isascii too: str.isdigit() also takes digits such as '²' that int() refuses.
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise BadInput(f"page: {text[:20]!r} is not a page number")
    return int(text)


def query(**values: object) -> str:
    """A query string of the values that are set (for links that keep the current filters)."""
    return urlencode({key: value for key, value in values.items() if value not in (None, "", False)})
