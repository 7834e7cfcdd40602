"""A chain database URL in messages: never its password, and libpq's errors on one line."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from edge.errors import ConfigError

if TYPE_CHECKING:  # a till imports this module (redact) without psycopg installed
    import psycopg

__all__ = ["check_url", "one_line", "redact"]


def redact(url: str) -> str:
    """The URL without its password: everything from the ':' after the user name to the last '@' (libpq takes
    an unencoded '?', '/' or '@' into a password, so no shorter cut is safe; one '@' too far hides more, never
    less), and any `password=` value, in a URL's query or a key=value string."""
    url = re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@?]*):.*@", r"\1:***@", url, flags=re.IGNORECASE | re.DOTALL)
    return re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", r"\1***", url, flags=re.IGNORECASE)


def check_url(url: str) -> None:
    """libpq ends the user information at the first '@': the rest of such a password became the host, and the
    error naming that host showed it."""
    authority = re.match(r"[a-z]+://([^/?]*)", url)
    if authority and authority.group(1).count("@") > 1:
        raise ConfigError("--db: the password in the URL holds an '@': write it as %40 (percent-encoded)")


def one_line(error: psycopg.Error) -> str:
    """libpq's messages run over several lines (a hint, a tab-indented detail): an error is one line."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())
