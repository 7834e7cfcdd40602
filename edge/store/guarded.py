"""Writes that a full or read-only disk cannot stop, and a check that the database file is still the one
opened: the part of the event log that keeps the till running when storage fails (edge.store.eventlog).

The main loop's writes are held in memory while the storage refuses them and retried every RETRY_S; a
durable connection (the POS endpoint's) never holds a write back: it raises, so nothing is acknowledged
that is not on disk.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from edge.store.backlog import Backlog
from edge.store.connection import Transaction
from edge.store.storage import FileIdentity, StorageError, StorageHealth, storage_problem

log = logging.getLogger("edge.store.eventlog")
RETRY_S = 1.0  # between retries of writes the storage refused
CHECK_S = 1.0  # between checks that the database file is still at its path
SAY_EVERY_S = 60.0  # between error lines while writes are held
T = TypeVar("T")


class GuardedWrites:
    """The event log's connection with its storage health; EventLog sets these attributes."""

    path: Path
    durable: bool
    db: sqlite3.Connection
    health: StorageHealth
    backlog: Backlog
    identity: FileIdentity
    run_id: int | None
    _retry_at: float
    _check_at: float
    _said_at: float

    def transaction(self) -> Transaction:
        return Transaction(self.db)

    # --- writes -------------------------------------------------------------------------------------
    def commit(self, work: Callable[[], T]) -> T:
        """Run `work` in one transaction now. Raises StorageError when the storage refuses it (noted in the
        shared health) or, on a durable connection, when the file is no longer the event log at `path`:
        nothing is acknowledged from a file that nobody will read."""
        if self.health.gone:
            raise StorageError(self.health.gone)
        try:
            with self.transaction():
                result = work()
        except sqlite3.Error as error:
            problem = storage_problem(error, self.path)
            if problem is None:
                raise
            self.health.problem = problem
            raise StorageError(f"event log {self.path}: {problem}") from None
        self.health.problem = None
        if self.durable:
            self.check_file()
        return result

    def write(self, items: list[tuple[Hashable | None, Callable[[], T]]], precious: bool = False) -> list[T] | None:
        """The main loop's writes: all `items` in one transaction now, and their results; or, while the
        storage refuses writes, each held in memory (a key replaces the held item with that key) and None.
        Never raises for the storage: the till keeps detecting, and `tick` retries."""
        if self.health.gone:
            return None  # the run is ending: the file is no longer the event log
        if not self.backlog:
            try:
                return self.commit(lambda: [work() for _, work in items])
            except StorageError:
                self._retry_at = time.monotonic() + RETRY_S
        for key, work in items:
            self.backlog.hold(key, work, precious)
        self.health.held = len(self.backlog)
        self._say_degraded()
        return None

    def tick(self) -> None:
        """Called from the main loop: check that the file is still there, and retry what is held."""
        now = time.monotonic()
        if now >= self._check_at:
            self._check_at = now + CHECK_S
            with contextlib.suppress(StorageError):
                self.check_file()
        if not self.health.gone and (self.backlog or self.health.problem) and now >= self._retry_at:
            self._retry()

    def _retry(self) -> None:
        held = len(self.backlog)
        try:
            if self.backlog:
                self.backlog.drain(self.commit)
            else:  # a refusal seen on another connection: a tiny real write tells whether it is over
                self.commit(self._probe)
        except StorageError:
            self._retry_at = time.monotonic() + RETRY_S
            self._say_degraded()
        else:
            if held:
                log.warning("event log %s is writable again: stored the %d write(s) held in memory", self.path, held)
        self.health.held = len(self.backlog)

    def _probe(self) -> None:
        self.db.execute("UPDATE runs SET ended_at = ended_at WHERE id = ?", (self.run_id,))

    def _say_degraded(self) -> None:
        """One error line when writes start being held, then one a minute while they are."""
        now = time.monotonic()
        if now >= self._said_at:
            self._said_at = now + SAY_EVERY_S
            log.error(
                "event log %s: %s; %d write(s) held in memory (%d dropped), retrying every %g s",
                self.path,
                self.health.problem,
                len(self.backlog),
                self.backlog.dropped,
                RETRY_S,
            )

    def check_file(self) -> None:
        """Raise StorageError (and mark the health gone, once) when `path` no longer names the open file."""
        change = self.health.gone or self.identity.change(self.path)
        if change is None:
            return
        if not self.health.gone:
            self.health.gone = (
                f"event log {self.path} was {change} while agecam was running; POS events are refused (503) "
                "from then on: restart agecam to start a new event log there"
            )
            log.error("%s", self.health.gone)
        raise StorageError(self.health.gone)

    def unwritten(self) -> str | None:
        """At the end of a run: what could not be stored, as one line, or None when everything was."""
        if self.health.gone:
            return self.health.gone
        if self.backlog or self.backlog.dropped:
            return (
                f"event log {self.path}: {len(self.backlog)} write(s) held in memory could not be stored and "
                f"{self.backlog.dropped} were dropped ({self.health.problem or 'storage refused them'}); "
                "the alerts and flags among them were still sent to the webhook and command"
            )
        return None
