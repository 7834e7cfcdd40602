"""`agecam collect`: the centre's collector. It takes the tills' messages from an MQTT 5 shared subscription
(`$share/<group>/<topic>`: several collectors split the load) and writes them into PostgreSQL.

Messages are acknowledged by hand (paho's manual_ack), only after their batch is committed: a collector
killed mid-batch gets the same messages again from its persistent session, and the inbox's unique key
(till, message id) writes each record once. A malformed or foreign message is counted, logged and
acknowledged (so it never comes back), never stored. A message is acknowledged only on the connection that
delivered it: after a reconnect its packet id may name another message, which the broker would then drop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg.conninfo import conninfo_to_dict

from edge.errors import ConfigError
from edge.fleet import scrape
from edge.fleet.messages import Refused, parse_availability, parse_heartbeat, parse_record
from edge.fleet.mqtt import Broker, Credentials, FirstConnect, make_client, session_properties
from edge.store.central import CentralStore, ChainRecord, TillSeen, redact

log = logging.getLogger(__name__)
KINDS = {"run", "customer", "hourly", "transaction", "alert", "availability", "heartbeat"}
CANCEL_AGAIN_S = 0.5  # a stopped collector cancels its database write this often until its loop ends
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
# A database gone without a word (a failover, a cut link) is noticed within about a minute, not after the
# kernel's two hours of idle before its first keepalive probe. Each one the --db DSN leaves out; a Unix socket
# ignores them. tcp_user_timeout (ms) ends a write the server has stopped acknowledging.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


@dataclass(frozen=True)
class CollectorSettings:
    broker: Broker
    credentials: Credentials
    db_url: str
    client_id: str
    topic: str = "agecam/#"
    group: str = "agecam"
    batch: int = 500
    session_expiry_s: int = 7 * 86400
    receive_maximum: int = 1000  # unacknowledged messages the broker may send us: room for whole batches


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("agecam_collector_messages", "Messages received", ["kind"], registry=r)
        self.rows = Counter("agecam_collector_rows_written", "Records written to PostgreSQL", registry=r)
        self.duplicates = Counter("agecam_collector_duplicates", "Records received again and skipped", registry=r)
        self.rejects = Counter("agecam_collector_rejects", "Malformed or foreign messages", registry=r)
        self.db_errors = Counter("agecam_collector_db_errors", "Failed database writes (retried)", registry=r)
        self.lag = Histogram(
            "agecam_collector_lag_seconds", "From the till's outbox to the commit", buckets=LAG_BUCKETS, registry=r
        )
        self.queue = Gauge("agecam_collector_queue", "Messages received and not yet written", registry=r)

    def serve(self, port: int, host: str) -> int:
        try:
            server = scrape.serve(host, port, self.registry)
        except OSError as error:
            raise ConfigError(f"--metrics-port: cannot listen on {host}:{port} ({error.strerror})") from None
        return server.server_port


class QuietLog:
    """Logs the first `burst` refusals of each minute, then one line with how many more there were."""

    def __init__(self, burst: int = 10) -> None:
        self.burst, self.window, self.count, self.suppressed = burst, 0.0, 0, 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self.window >= 60:
            if self.suppressed:
                log.warning("... and %d more refused messages in the last minute", self.suppressed)
            self.window, self.count, self.suppressed = now, 0, 0
        self.count += 1
        if self.count <= self.burst:
            log.warning("%s", message)
        else:
            self.suppressed += 1


class Collector:
    def __init__(self, settings: CollectorSettings, metrics: CollectorMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or CollectorMetrics()
        self.store = self._open_store()
        self.inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()  # (connection, message)
        self.connection = 0  # counts the broker's accepted connections
        self.refusals = QuietLog()
        self.client = make_client(settings.client_id, settings.broker, settings.credentials, manual_ack=True)
        self.client.on_connect, self.client.on_message = self._on_connect, self._on_message
        self.client.on_connect_fail = lambda *_: self.first.answered.set()
        self.first = FirstConnect(self.client)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set; exit 2 at once if the broker refuses the credentials."""
        self.client.connect_async(
            self.settings.broker.host,
            self.settings.broker.port,
            30,
            clean_start=False,  # the session (and its queued messages) outlives a restart of this collector
            properties=session_properties(self.settings.session_expiry_s, self.settings.receive_maximum),
        )
        self.client.loop_start()
        self.first.wait(self.settings.broker, 10, "collect")
        ended = threading.Event()
        canceller = threading.Thread(target=self._cancel_on_stop, args=(stop, ended), name="collector-stop")
        canceller.daemon = True
        canceller.start()
        log.info(
            "collecting $share/%s/%s into %s", self.settings.group, self.settings.topic, redact(self.settings.db_url)
        )
        try:
            while not stop.is_set():
                batch = self._take(stop)
                if batch:
                    self._handle(batch, stop)
        finally:
            ended.set()
            self.client.disconnect()
            self.client.loop_stop()
            self.store.close()

    def _take(self, stop: threading.Event) -> list[tuple[int, mqtt.MQTTMessage]]:
        """Up to `batch` messages: wait for the first, then take what else is already there."""
        try:
            batch = [self.inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self.settings.batch:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        self.metrics.queue.set(self.inbox.qsize())
        return batch

    def _handle(self, batch: list[tuple[int, mqtt.MQTTMessage]], stop: threading.Event) -> None:
        records, seen = self._classify([message for _, message in batch])
        result = self._write(records, seen, stop)
        if result is None:
            return  # stopping with the database away: unacknowledged, the broker sends them again
        for index, reason in result.refused:
            self.metrics.rejects.inc()
            self.refusals.warning(f"refused by the database: {records[index].msg_id}: {reason}")
        self.metrics.rows.inc(result.written)
        self.metrics.duplicates.inc(result.duplicates)
        now = time.time()
        for record in records:
            self.metrics.lag.observe(max(0.0, now - record.created_at.timestamp()))
        stale = 0
        for connection, message in batch:
            if connection == self.connection:
                self.client.ack(message.mid, message.qos)
            else:  # its broker session may be gone; if it is kept, the broker sends the message again
                stale += 1
        if stale:
            log.info("%d messages of an earlier connection written, not acknowledged on this one", stale)

    def _classify(self, batch: list[mqtt.MQTTMessage]) -> tuple[list[ChainRecord], list[TillSeen]]:
        records, seen = [], []
        for message in batch:
            kind = message.topic.rsplit("/", 1)[-1]
            self.metrics.messages.labels(kind if kind in KINDS else "other").inc()
            try:
                if kind == "availability":
                    seen.append(parse_availability(message.topic, message.payload, _user_properties(message)))
                elif kind == "heartbeat":
                    seen.append(parse_heartbeat(message.topic, message.payload))
                else:
                    record = parse_record(message.topic, message.payload)
                    records.append(record)
                    seen.append(TillSeen(record.store_id, record.till_id))
            except Exception as error:  # a payload that trips the parser itself must not end the collector either
                reason = error if isinstance(error, Refused) else type(error).__name__
                self.metrics.rejects.inc()
                self.refusals.warning(f"refused a message on {message.topic[:120]!r}: {reason}")
        return records, seen

    def _write(self, records: list[ChainRecord], seen: list[TillSeen], stop: threading.Event):
        delay = 0.5
        while True:
            try:
                return self.store.write(records, seen)
            except psycopg.Error as error:  # the database's, not a record's (CentralStore.write): retry
                self.metrics.db_errors.inc()
                log.warning("chain database write failed (%s): retrying in %.1f s", str(error).strip(), delay)
            if stop.wait(delay):
                return None
            delay = min(delay * 2, 30.0)
            self._reopen()

    def _cancel_on_stop(self, stop: threading.Event, ended: threading.Event) -> None:
        """SIGTERM must end a write that waits on the database (a lock, a stalled server): the loop only sees
        `stop` between statements. The cancelled batch stays unacknowledged: the broker sends it again. Cancels
        again until the loop has ended: a batch taken as the signal came starts its write after the first."""
        stop.wait()
        warned = False
        while not ended.is_set():
            db = self.store.db
            if not db.closed:
                try:
                    getattr(db, "cancel_safe", db.cancel)()
                except Exception as error:  # the server unreachable: nothing to cancel there
                    if not warned:
                        log.warning("could not cancel the chain database write: %s", error)
                    warned = True
            ended.wait(CANCEL_AGAIN_S)

    def _reopen(self) -> None:
        """After a deadlock the connection is fine (the transaction was rolled back); after a lost
        connection, open a new one."""
        if not (self.store.db.broken or self.store.db.closed):
            return
        self.store.close()
        try:
            self.store = self._open_store()
        except Exception as error:  # still away: the next retry tries again
            log.warning("chain database still unreachable: %s", error)

    def _open_store(self) -> CentralStore:
        return CentralStore(self.settings.db_url, **keepalive_options(self.settings.db_url))

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object) -> None:
        first = not self.first.answered.is_set()
        self.first.connected(reason)
        if reason.is_failure:
            if first:
                return  # run() reports it: exit 2
            log.error("broker %s refused the connection: %s", self.settings.broker.url, reason)
            return
        self.connection += 1
        client.subscribe(f"$share/{self.settings.group}/{self.settings.topic}", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.inbox.put((self.connection, message))


def keepalive_options(db_url: str) -> dict[str, str]:
    """KEEPALIVES less those the DSN sets itself (a URL's query or a key=value string)."""
    try:
        given = conninfo_to_dict(db_url)
    except psycopg.Error:  # a malformed DSN: connecting reports it
        return {}
    return {name: value for name, value in KEEPALIVES.items() if name not in given}


def _user_properties(message: mqtt.MQTTMessage) -> dict[str, str]:
    pairs = getattr(message.properties, "UserProperty", None) or []
    return dict(pairs)
