"""Logins for the review app: scrypt password hashes, server-side sessions behind a signed cookie, a CSRF
token per session, and a throttle on failed logins.

The cookie holds only a random session id and its HMAC, so logging out or a restart ends the session
for good; it is HttpOnly and SameSite=Strict (and Secure behind a TLS proxy).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and about 50 ms per hash on a till PC
MAX_KEYS = 10_000  # names and addresses with recent failures kept by the throttle
# Checked when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), *encoded])


def verify_password(password: str, stored: str | None) -> bool:
    """True if the password matches the stored hash; a missing hash still costs one scrypt."""
    try:
        _, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        expected = base64.b64decode(digest, validate=True)
        found = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected),
            maxmem=2**26,
        )  # fmt: skip
    except ValueError:  # a hash that only looks like one (the config checks its shape)
        return False
    return stored is not None and hmac.compare_digest(found, expected)


@dataclass
class Session:
    user: str
    role: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    seen: float = field(default_factory=time.monotonic)

    @property
    def can_review(self) -> bool:
        return self.role == "reviewer"


class Sessions:
    """Live sessions in memory, ended after `idle_s` without a request."""

    def __init__(self, idle_s: float, secret: bytes | None = None) -> None:
        self.idle_s = idle_s
        self.secret = secret or secrets.token_bytes(32)
        self.live: dict[str, Session] = {}
        self.lock = threading.Lock()

    def sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def start(self, user: str, role: str) -> tuple[str, Session]:
        """A new session (never a reused id, so a planted cookie is useless); returns the cookie value."""
        sid = secrets.token_urlsafe(32)
        session = Session(user, role)
        with self.lock:
            self.live[sid] = session
        return f"{sid}.{self.sign(sid)}", session

    def get(self, cookie: str | None) -> Session | None:
        sid, _, signature = (cookie or "").partition(".")
        if not sid or not same_token(signature, self.sign(sid)):  # bytes: a non-ASCII cookie is no 500
            return None
        now = time.monotonic()
        with self.lock:
            session = self.live.get(sid)
            if session is None or now - session.seen > self.idle_s:
                self.live.pop(sid, None)
                return None
            session.seen = now
        return session

    def end(self, cookie: str | None) -> None:
        sid = (cookie or "").partition(".")[0]
        with self.lock:
            self.live.pop(sid, None)


class LoginThrottle:
    """Refuses logins for a name or from an address after `limit` failures within `window_s`."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def begin(self, user: str, address: str) -> float:
        """Seconds to wait when this name or address is locked out; else 0, and the attempt counts as a
        failure until `succeeded` (so parallel guesses cannot all slip in while passwords are checked)."""
        now = time.monotonic()
        keys = (f"user:{user.lower()}", f"addr:{address}")
        with self.lock:
            if len(self.failures) > MAX_KEYS:  # guessed names must not grow memory without bound
                self.failures = {key: times for key, times in self.failures.items() if self._recent(key, now)}
            recent = [self._recent(key, now) for key in keys]
            waits = [self.window_s - (now - times[-self.limit]) for times in recent if len(times) >= self.limit]
            if waits:
                return max(waits)
            for times in recent:
                times.append(now)
        return 0.0

    def succeeded(self, user: str, address: str) -> None:
        """The name's failures are forgotten; the address keeps its earlier ones."""
        with self.lock:
            self.failures.pop(f"user:{user.lower()}", None)
            if times := self.failures.get(f"addr:{address}"):
                times.pop()


def same_token(sent: str | None, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())
