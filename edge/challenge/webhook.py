"""One webhook delivery: an HTTP POST of a JSON body, under a hard deadline.

The receiver is not trusted to behave. A socket timeout alone bounds each read, not the request: a
receiver that dribbles a header line a second would hold the alert thread for ever while later alerts
overflow its queue. So one deadline, `timeout_s` after the start, covers the whole delivery: the name
lookup, each address tried, a proxy's CONNECT reply and the TLS handshake (which a receiver or a proxy
can drag out just as well) as much as the request and the reply; at the deadline every socket the
delivery opened is shut down. The reply's body is read up to REPLY_BYTES and no further (a gigabyte
reply must not cost the till a gigabyte), redirects are not followed (urllib turned a 302 to a POST into
a body-less GET elsewhere and counted the alert as sent), and only a 2xx answer is a delivery.
Credentials in the URL (`https://user:pass@host/`) are sent as HTTP Basic authentication and never
appear in an error. A proxy in the environment (`https_proxy`, `http_proxy`, `no_proxy`, as urllib and
curl read them) is used as urllib used it: a CONNECT tunnel for https, the absolute URL for http.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import queue
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
    deadline = _Deadline(timeout_s)
    to = target(url)
    connection, path, proxy_headers = _connection(to, timeout_s)
    connection._create_connection = deadline.connect  # every socket http.client opens is under the deadline
    try:
        with deadline:
            connection.connect()
            connection.request("POST", path, body=body, headers={**to.headers, **proxy_headers})
            response = connection.getresponse()
            response.read(REPLY_BYTES)
    except Exception as error:
        deadline.check()
        raise WebhookError(describe(error)) from None
    finally:
        connection.close()
    # The deadline's shutdown can also end a reply early without an error: a header block cut short
    # reads as complete to http.client.
    deadline.check()
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


class _Deadline:
    """One deadline for a whole delivery. A timer shuts down, at the deadline, every socket the delivery
    opened, which ends whatever read or write is blocked on it (a TLS handshake, a proxy's reply)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s, self.at = timeout_s, time.monotonic() + timeout_s
        self.lock = threading.Lock()
        # Duplicates of the sockets: TLS detaches the socket it wraps, and a closed socket's number can be
        # another's by the time the timer fires; these stay open, on the same connection, until the end.
        self.sockets: list[socket.socket] = []
        self.passed = False
        self.timer = threading.Timer(timeout_s, self._shut)
        self.timer.daemon = True

    def __enter__(self) -> None:
        self.timer.start()

    def __exit__(self, *_: object) -> None:
        self.timer.cancel()
        with self.lock:
            self.passed = True  # the delivery is over: no socket is opened after this
            for sock in self.sockets:
                sock.close()
            self.sockets.clear()

    def left(self) -> float:
        """Seconds to the deadline; TimeoutError once it passed."""
        seconds = self.at - time.monotonic()
        if seconds <= 0:
            raise TimeoutError(f"no complete answer within {self.timeout_s:g} s")
        return seconds

    def check(self) -> None:
        if time.monotonic() >= self.at:
            raise WebhookError(f"no complete answer within {self.timeout_s:g} s")

    def connect(self, address: tuple[str, int], timeout: float | None = None, _: object = None) -> socket.socket:
        """socket.create_connection within the deadline (http.client calls it for the receiver or the
        proxy): the lookup and all the addresses tried together, not each for `timeout`."""
        error: OSError = OSError(f"no address for {address[0]}")
        for family, kind, proto, _name, where in _lookup(address, self.left()):
            sock = socket.socket(family, kind, proto)
            try:
                self._watch(sock)
                sock.settimeout(self.left())
                sock.connect(where)
            except OSError as failed:
                sock.close()
                error = failed
                continue
            sock.settimeout(timeout)
            return sock
        raise error

    def _watch(self, sock: socket.socket) -> None:
        with self.lock:
            if self.passed:
                raise TimeoutError(f"no complete answer within {self.timeout_s:g} s")
            self.sockets.append(sock.dup())

    def _shut(self) -> None:
        with self.lock:
            self.passed = True
            for sock in self.sockets:
                # A duplicate's shutdown ends the connection under TLS too, and leaves the SSL object alone.
                with contextlib.suppress(OSError):  # not connected yet, or the receiver closed it
                    sock.shutdown(socket.SHUT_RDWR)


def _lookup(address: tuple[str, int], seconds: float) -> list[tuple]:
    """getaddrinfo, for at most `seconds`: a lookup cannot be interrupted, and a resolver that does not
    answer takes its own retries (tens of seconds), so it runs in a thread left to end on its own."""
    found: queue.Queue[list[tuple] | BaseException] = queue.Queue(maxsize=1)

    def resolve() -> None:
        try:
            found.put(socket.getaddrinfo(*address, 0, socket.SOCK_STREAM))
        except Exception as error:  # socket.gaierror, or UnicodeError for a name IDNA can't encode
            found.put(error)

    threading.Thread(target=resolve, name="webhook-lookup", daemon=True).start()
    try:
        result = found.get(timeout=seconds)
    except queue.Empty:
        raise TimeoutError("the receiver's name was not looked up in time") from None
    if isinstance(result, BaseException):
        raise result
    return result


def describe(error: BaseException) -> str:
    """An exception as one short printable line: the receiver chooses what some messages quote."""
    if isinstance(error, WebhookError):
        return str(error)
    return clean(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


def clean(text: str) -> str:
    text = "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)
    return text[:REASON_CHARS]
