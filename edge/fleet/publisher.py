"""The till's publisher: a thread that ships the event log's outbox to the chain's MQTT broker.

Store and forward: records wait in the outbox (SQLite) while the broker is away or the till restarts. Rows
go out in id order, QoS 1, at most `inflight` unacknowledged at a time; a row is marked shipped only when
its PUBACK arrives. Each message's id is the log key and the row id, so the collector drops a resend.
The frame loop never waits on any of this: it only writes rows, in its own transactions.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes

from edge.config import Config, FleetConfig
from edge.fleet.mqtt import FirstConnect, make_client, parse_broker, publish_size, session_properties
from edge.fleet.outgoing import Outgoing, credentials
from edge.fleet.takeover import TakeoverWatch
from edge.store.outbox import OutboxReader, OutboxRow

log = logging.getLogger(__name__)
POLL_S = 0.1  # how often new outbox rows are looked for: the shipping latency floor
HOUSEKEEPING_S = 1.0  # refresh the depth, bound the outbox
SYNC_S = 0.5  # at most one fsync of the event log's WAL this often (OutboxReader.sync)
PRUNE_EVERY_S = 60.0
KEEP_SHIPPED_S = 3600.0
NO_SUBSCRIBERS = 0x10  # the broker took the message but nobody subscribes: it is gone, so send it again later
TOO_LARGE = (
    "fleet: record %d (%s) is %d bytes, over the broker's limit of %d: it stays in the outbox, unsent;"
    " raise the broker's maximum packet size and restart agecam"
)
MAX_ERROR_PAUSE_S = 30.0  # a lasting failure (a full disk) is retried this often at most, and logged as often


def error_pause(errors: int) -> float:
    """The pause after `errors` failed passes in a row: POLL_S, doubled per failure, up to MAX_ERROR_PAUSE_S.
    The exponent is bounded: 0.1 * 2**1024 overflows a float, which ended the thread after a night of failures."""
    return min(POLL_S * 2 ** min(errors, 16), MAX_ERROR_PAUSE_S)


@dataclass
class PublisherStats:
    shipped: int = 0
    published: int = 0
    dropped: int = 0
    refused: int = 0
    depth: int = 0
    oldest: float | None = None  # Unix time of the oldest unshipped row

    def oldest_age_s(self) -> float:
        return 0.0 if self.oldest is None else max(0.0, time.time() - self.oldest)


class Publisher:
    def __init__(self, config: Config) -> None:
        self.settings: FleetConfig = config.fleet
        self.broker = parse_broker(self.settings.broker or "")
        self.out = Outgoing(self.settings)
        self.client = make_client(self.out.client_id, self.broker, credentials(config))
        self.takeover = TakeoverWatch(self.broker.url, self.settings.till_id, self.out.client_id)
        self.client.max_inflight_messages_set(self.settings.inflight)
        will = self.out.who(PacketTypes.WILLMESSAGE)
        self.client.will_set(self.out.topic("availability"), "offline", qos=1, retain=True, properties=will)
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_publish, self.client.on_connect_fail = self._on_publish, self._on_connect_fail
        self.first = FirstConnect(self.client)
        self.stats = PublisherStats()
        self.status: dict = {}  # the run's latest status line, sent with each heartbeat
        self._acks: collections.deque[tuple[int, int]] = collections.deque()  # (mid, reason) from paho's thread
        self._inflight: dict[int, int] = {}  # mid -> outbox row id (this thread only)
        self._unmarked: list[int] = []  # row ids the broker took whose 'shipped' mark failed (this thread only)
        self._cursor = 0  # highest row id published since start (or since a rewind)
        self._synced_at = -SYNC_S  # when the WAL was last synced before a publish (monotonic)
        self._retry_at, self._backoff = 0.0, 1.0
        self._errors = 0  # failed passes in a row: they back off (a full disk must not log 10 tracebacks a second)
        self._max_packet: int | None = None  # the broker's Maximum Packet Size (CONNACK), when it gives one
        self._held: set[int] = set()  # rows too large for that limit: kept in the outbox, the others go on
        self._stop = threading.Event()
        self._drain, self._drained = threading.Event(), threading.Event()
        self._next_prune = 0.0
        self._thread: threading.Thread | None = None
        self.reader: OutboxReader | None = None

    def connect(self, timeout_s: float = 5.0) -> None:
        """Start the network loop and wait for the broker's first answer: exit 2 on a wrong password,
        carry on (store and forward) when the broker is down."""
        properties = session_properties(self.settings.session_expiry_s)
        self.client.connect_async(
            self.broker.host, self.broker.port, self.settings.keepalive_s, clean_start=False, properties=properties
        )
        self.client.loop_start()
        self.first.wait(self.broker, timeout_s, "fleet")

    def start(self, db_path: Path) -> None:
        """Ship the outbox of this event log (its schema must include the outbox: open it first)."""
        self.reader = OutboxReader(db_path)
        self._thread = threading.Thread(target=self._run, name="fleet-publisher", daemon=True)
        self._thread.start()

    def stop(self, flush_s: float = 3.0) -> None:
        """Give the outbox `flush_s` to drain, say offline, and disconnect (what is left ships next start)."""
        deadline = time.monotonic() + flush_s
        self._drain.set()
        while self._thread and self.client.is_connected() and time.monotonic() < deadline:
            if self._drained.wait(POLL_S):
                break
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self.client.is_connected():
            info = self.client.publish(self.out.topic("availability"), "offline", 1, True, self.out.who())
            info.wait_for_publish(timeout=2)
            self.client.disconnect()
        self.client.loop_stop()
        if self.reader:
            self.reader.close()
            log.info("fleet: %d records shipped, %d left in the outbox", self.stats.shipped, self.stats.depth)

    # --- the shipping thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        next_housekeeping, next_heartbeat = 0.0, time.monotonic() + self.settings.heartbeat_s
        while True:
            try:
                self._settle_acks()
                now = time.monotonic()
                if now >= next_housekeeping:
                    next_housekeeping = now + HOUSEKEEPING_S
                    self._housekeeping()
                if self.client.is_connected() and now >= self._retry_at:
                    self._fill_window()
                if now >= next_heartbeat:
                    next_heartbeat = now + self.settings.heartbeat_s
                    self._heartbeat()
                if self._drain.is_set() and not self._inflight and self._nothing_to_send():
                    self._drained.set()
                self._errors = 0
            except Exception as error:  # a full disk or a locked database must not end shipping for good
                self._failed(error)
            if self._stop.wait(error_pause(self._errors)):
                try:
                    self._settle_acks()
                    self._housekeeping()
                except Exception as error:  # the chain stores a record sent twice once: next start resends them
                    log.warning("fleet: could not mark the last records shipped (%s): they are sent again", error)
                return

    def _failed(self, error: Exception) -> None:
        """The traceback once; then one line per retry, each after a pause that doubles up to 30 s."""
        self._errors += 1
        if self._errors == 1:
            log.exception("fleet: publisher error, retrying")
        else:
            pause = error_pause(self._errors)
            log.warning("fleet: publisher still failing (%s), %d times: next try in %.1f s", error, self._errors, pause)

    def _nothing_to_send(self) -> bool:
        return all(row.id in self._held for row in self.reader.pending(0, len(self._held) + 1))

    def _fill_window(self) -> None:
        room = self.settings.inflight - len(self._inflight)
        if room <= 0:
            return
        busy = set(self._inflight.values())
        rows = self.reader.pending(self._cursor, room + len(busy))
        if not any(row.id not in busy for row in rows):
            return
        # On disk before it leaves: a power cut must not undo what the chain has. At most one fsync a SYNC_S,
        # the rows of the meantime waiting for it, so the frame loop's commits seldom queue behind one.
        now = time.monotonic()
        if now < self._synced_at + SYNC_S:
            return
        self.reader.sync()
        self._synced_at = now
        for row in rows:
            if row.id in busy:
                continue
            if room == 0:
                break
            topic, payload = self.out.topic(row.kind), self.out.record(self.reader.key, row)
            if self._too_large(row, topic, payload):
                self._cursor = row.id
                continue
            info = self.client.publish(topic, payload, qos=1)
            self._inflight[info.mid] = row.id
            self._cursor, room = row.id, room - 1
            self.stats.published += 1

    def _too_large(self, row: OutboxRow, topic: str, payload: str) -> bool:
        """A message over the broker's packet limit ends the connection (a protocol error), and paho would send
        it first again on every reconnect: nothing after it would ever ship. It stays in the outbox instead
        (counted in the depth; sent by a later start once the limit allows it), and the rest go on."""
        size = publish_size(topic, payload)
        if self._max_packet is None or size <= self._max_packet:
            return False
        if row.id not in self._held:
            self._held.add(row.id)
            log.error(TOO_LARGE, row.id, row.kind, size, self._max_packet)
        return True

    def _settle_acks(self) -> None:
        shipped, self._unmarked = self._unmarked, []
        while self._acks:
            mid, reason = self._acks.popleft()
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                continue
            if reason >= 0x80 or reason == NO_SUBSCRIBERS:
                self._refused(row_id, reason)
            else:
                shipped.append(row_id)
        if shipped:
            try:
                self.reader.mark_shipped(shipped)
            except Exception:
                self._unmarked = shipped  # delivered, not yet marked (a locked log): mark them on the next pass
                raise
            self.stats.shipped += len(shipped)
            self._backoff = 1.0

    def _refused(self, row_id: int, reason: int) -> None:
        """The broker did not take (or could not deliver) this row: send it again after a backoff."""
        self.stats.refused += 1
        self._cursor = min(self._cursor, row_id - 1)
        if time.monotonic() >= self._retry_at:
            why = "nobody subscribes: is a collector running?" if reason == NO_SUBSCRIBERS else f"reason 0x{reason:02x}"
            log.warning("fleet: broker did not take record %d (%s): retrying in %.0f s", row_id, why, self._backoff)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 30.0)

    def _housekeeping(self) -> None:
        depth, oldest = self.reader.depth()
        if depth > self.settings.max_outbox_rows:
            dropped = self.reader.trim(self.settings.max_outbox_rows)
            self.stats.dropped += dropped
            log.warning(
                "fleet: outbox over %d rows: dropped the %d oldest unshipped records (broker unreachable too long?)",
                self.settings.max_outbox_rows,
                dropped,
            )
            depth, oldest = self.reader.depth()
        self.stats.depth, self.stats.oldest = depth, oldest
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            self.reader.prune_shipped(KEEP_SHIPPED_S)

    def _heartbeat(self) -> None:
        body = self.out.heartbeat(self.stats.depth, self.stats.oldest_age_s(), self.status)
        self.client.publish(self.out.topic("heartbeat"), body, qos=0)

    # --- paho's network thread -----------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: mqtt.ReasonCode, properties: object
    ) -> None:
        first = not self.first.answered.is_set()
        self.first.connected(reason)
        if reason.is_failure:
            if first:
                return  # connect() reports it (a refusal that retrying cannot fix is exit 2)
            log.error("fleet: broker %s refused the connection: %s", self.broker.url, reason)
            return
        self._max_packet = getattr(properties, "MaximumPacketSize", None)
        self.takeover.connected()
        log.info("fleet: connected to %s as %s", self.broker.url, self.out.prefix)
        client.publish(self.out.topic("availability"), "online", qos=1, retain=True, properties=self.out.who())

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        self.first.answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        if self._stop.is_set():
            return  # our own disconnect
        taken_over = self.takeover.disconnected(
            reason.value, str(reason)
        )  # says why, once, where another till has our id
        if self._thread is not None and not taken_over:
            log.warning("fleet: disconnected from %s (%s): records wait in the outbox", self.broker.url, reason)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: mqtt.ReasonCode, _p: object) -> None:
        self._acks.append((mid, reason.value))  # settled by the shipping thread, which owns the row map
