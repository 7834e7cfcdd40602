"""One webhook delivery: an HTTP POST of a JSON body, under a hard deadline.

The receiver is not trusted to behave. A socket timeout alone bounds each read, not the request: a
receiver that dribbles a header line a second would hold the alert thread for ever while later alerts
overflow its queue. So a watchdog shuts the socket down at `timeout_s` after the start. The reply's body
is read up to REPLY_BYTES and no further (a gigabyte reply must not cost the till a gigabyte), redirects
are not followed (urllib turned a 302 to a POST into a body-less GET elsewhere and counted the alert as
sent), and only a 2xx answer is a delivery. Credentials in the URL (`https://user:pass@host/`) are sent
as HTTP Basic authentication and never appear in an error. A proxy in the environment (`https_proxy`,
`http_proxy`, `no_proxy`, as urllib and curl read them) is used as urllib used it: a CONNECT tunnel for
https, the absolute URL for http.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

REPLY_BYTES = 64 * 1024
REASON_CHARS = 200


class WebhookError(Exception):
    """A delivery that failed; its message is safe to log (no credentials, no control characters)."""


@dataclass(frozen=True)
class Target:
    https: bool
    host: str
    port: int
    path: str
    headers: dict[str, str]


def target(url: str) -> Target:
    """The URL split once, its user and password (if any) made an Authorization header."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:  # a port that is not a number: the message would quote the netloc
        raise WebhookError(f"the webhook URL is not valid ({type(error).__name__})") from None
    headers = {"Content-Type": "application/json"}
    if parts.username is not None or parts.password is not None:
        headers["Authorization"] = _basic(parts)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    https = parts.scheme == "https"
    # The port always given: http.client would read the end of an IPv6 address ("::1") as one.
    return Target(https, parts.hostname or "", port or (443 if https else 80), path, headers)


def _basic(parts: urllib.parse.SplitResult) -> str:
    """HTTP Basic credentials from a URL's user and password (percent-decoded)."""
    user, password = urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(url: str, body: bytes, timeout_s: float) -> None:
    """POST `body`; raises WebhookError unless a 2xx answer (its body read, up to REPLY_BYTES) came
    within `timeout_s` of the start."""
    deadline = time.monotonic() + timeout_s
    to = target(url)
    connection, path, proxy_headers = _connection(to, timeout_s)
    try:
        connection.connect()  # bounded by timeout_s; the watchdog needs the socket
        with _watchdog(connection.sock, deadline - time.monotonic()):
            connection.request("POST", path, body=body, headers={**to.headers, **proxy_headers})
            response = connection.getresponse()
            response.read(REPLY_BYTES)
    except Exception as error:
        _check(deadline, timeout_s)
        raise WebhookError(describe(error)) from None
    finally:
        connection.close()
    # The watchdog's shutdown can also end a reply early without an error: a header block cut short
    # reads as complete to http.client.
    _check(deadline, timeout_s)
    if not 200 <= response.status < 300:
        redirect = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        raise WebhookError(f"HTTP {response.status} {clean(response.reason)}{redirect}")


def _connection(to: Target, timeout_s: float) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """The connection for `to`, through the environment's proxy unless no_proxy names the host; the request's
    target (an http proxy takes the absolute URL); and the headers an http proxy takes."""
    cls = http.client.HTTPSConnection if to.https else http.client.HTTPConnection
    proxy = urllib.request.getproxies().get("https" if to.https else "http")
    if not proxy or urllib.request.proxy_bypass(to.host):
        return cls(to.host, to.port, timeout=timeout_s), to.path, {}
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        # As urllib: a proxy without a port is on the target's default port (443 for an https tunnel).
        host, port = parts.hostname or "", parts.port or (443 if to.https else 80)
    except ValueError:  # a port that is not a number: the message would quote the proxy URL
        raise WebhookError("the proxy URL in the environment is not valid") from None
    auth = {}
    if parts.username is not None:
        auth["Proxy-Authorization"] = _basic(parts)
    if to.https:
        connection = cls(host, port, timeout=timeout_s)
        connection.set_tunnel(to.host, to.port, headers=auth)
        return connection, to.path, {}
    return cls(host, port, timeout=timeout_s), f"http://{_netloc(to)}{to.path}", auth


def _netloc(to: Target) -> str:
    host = f"[{to.host}]" if ":" in to.host else to.host
    return host if to.port == 80 else f"{host}:{to.port}"


def _check(deadline: float, timeout_s: float) -> None:
    if time.monotonic() >= deadline:
        raise WebhookError(f"no complete answer within {timeout_s:g} s")


class _watchdog:
    """Shuts `sock` down when `seconds` pass, which ends whatever read or write is blocked on it."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        if seconds <= 0:
            raise TimeoutError("the deadline passed while connecting")
        self.timer = threading.Timer(seconds, _shut, (sock,))
        self.timer.daemon = True

    def __enter__(self) -> None:
        self.timer.start()

    def __exit__(self, *_: object) -> None:
        self.timer.cancel()


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: the SSL object stays with the thread that uses it.
    with contextlib.suppress(OSError):  # closed meanwhile
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def describe(error: BaseException) -> str:
    """An exception as one short printable line: the receiver chooses what some messages quote."""
    if isinstance(error, WebhookError):
        return str(error)
    return clean(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


def clean(text: str) -> str:
    text = "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)
    return text[:REASON_CHARS]
