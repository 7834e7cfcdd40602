"""A chain database URL in messages: never its password, and libpq's errors on one line."""

from __future__ import annotations

import re

import psycopg

from edge.errors import ConfigError

__all__ = ["check_url", "one_line", "redact"]


def redact(url: str) -> str:
    """The URL without its password: the one after the user name, up to the last '@' of the authority (an
    unencoded '@' in it left its end shown), and a `password=` parameter of the query."""
    url = re.sub(r"://([^:/@?]*):[^/?]*@", r"://\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def check_url(url: str) -> None:
    """libpq ends the user information at the first '@': the rest of such a password became the host, and the
    error naming that host showed it."""
    authority = re.match(r"[a-z]+://([^/?]*)", url)
    if authority and authority.group(1).count("@") > 1:
        raise ConfigError("--db: the password in the URL holds an '@': write it as %40 (percent-encoded)")


def one_line(error: psycopg.Error) -> str:
    """libpq's messages run over several lines (a hint, a tab-indented detail): an error is one line."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())
