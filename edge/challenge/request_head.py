"""Checks on a request's head that h11 leaves to the endpoint: its exact size, repeated headers, transfer codings."""

from __future__ import annotations

import h11

MAX_HEADER_BYTES = 8192  # the request line and headers, through the empty line that ends them
# Headers read as one value: a second one (a proxy's, or one injected upstream) would make it a guess which
# counts. h11 already refuses a repeated Host, conflicting Content-Lengths and a repeated Transfer-Encoding.
ONCE = (b"authorization",)


def refusal(head: h11.Request, size: int) -> tuple[int, str] | None:
    """The status and reason to refuse a request whose head took `size` bytes with, or None to go on."""
    if size > MAX_HEADER_BYTES:  # h11 bounds an incomplete head only: a whole one may arrive over the limit
        return 431, f"request headers of {size} bytes exceed {MAX_HEADER_BYTES}"
    names = [name for name, _ in head.headers]  # lower-case
    for name in ONCE:
        if (count := names.count(name)) > 1:
            return 400, f"{count} {name.decode().title()} headers: send exactly one"
    return None


def protocol_refusal(error: h11.RemoteProtocolError) -> tuple[int, str]:
    """The status and reason for a request h11 could not parse."""
    if error.error_status_hint == 431:  # its buffer limit: the head is not complete yet, and already too long
        return 431, f"request headers exceed {MAX_HEADER_BYTES} bytes"
    if error.error_status_hint == 501:  # h11's only 501: a transfer coding other than one `chunked`
        return 411, "send a Content-Length header (no Transfer-Encoding: chunked, gzip or any other)"
    return error.error_status_hint, f"bad HTTP request: {error}"
