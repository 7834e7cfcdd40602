"""`agecam collect` (the centre's collector), and what `agecam run` adds on a till of a chain: the outbox
publisher and the metrics."""

from __future__ import annotations

import argparse
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.cli.common import load
from edge.config import Config
from edge.errors import ConfigError
from edge.fleet.link import FleetLink, HookChain
from edge.fleet.metrics import TillMetrics
from edge.fleet.mqtt import PASSWORD_ENV, Credentials, parse_broker, read_password
from edge.fleet.publisher import Publisher
from edge.pipeline.runner import RunHooks, StopSignal
from edge.store.central_url import redact

log = logging.getLogger("agecam")
POSTGRES = ("postgresql://", "postgres://")


def require_psycopg(what: str) -> None:
    """The centre's code needs psycopg, which a till does not install: import it only when used."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs PostgreSQL's driver: pip install 'agecam[collector]'") from None


@contextmanager
def till_services(
    config: Config, pos: RunHooks | None
) -> Iterator[tuple[RunHooks, Callable[[dict, dict | None], None]]]:
    """The run's hooks (POS link, fleet, metrics) and its status callback. The broker is tried first: a
    wrong password is exit 2 before any run starts; a broker that is down is not (store and forward)."""
    publisher = Publisher(config) if config.fleet.enabled else None
    metrics = TillMetrics(config) if config.metrics.port is not None or config.metrics.textfile else None
    if metrics and publisher:
        stats = publisher.stats
        metrics.outbox = lambda: {
            "depth": stats.depth,
            "oldest_s": stats.oldest_age_s(),
            "shipped": stats.shipped,
            "dropped": stats.dropped,
        }

    def on_status(status: dict, pos_counts: dict | None) -> None:
        if metrics:
            metrics.on_status(status, pos_counts)
        if publisher:
            publisher.status = {key: status[key] for key in ("fps", "frames", "customers", "dropped", "source")}

    try:
        if publisher:
            publisher.connect()
        if metrics:
            metrics.open()
        yield HookChain(pos, FleetLink(publisher) if publisher else None, metrics), on_status
    finally:
        if publisher:
            publisher.stop()
        if metrics:
            metrics.close()


def _credentials(args: argparse.Namespace) -> Credentials:
    password = None
    if args.username:
        file = Path(args.password_file) if args.password_file else None
        password = read_password(file, None if file else PASSWORD_ENV, "collect")
    path = lambda value: Path(value) if value else None  # noqa: E731
    return Credentials(args.username, password, path(args.ca_file), path(args.cert_file), path(args.key_file))


def _collect(args: argparse.Namespace) -> int:
    load(args)  # the log level
    require_psycopg("agecam collect")
    from edge.fleet.collector import Collector, CollectorMetrics, CollectorSettings

    if not args.db.startswith(POSTGRES):
        raise ConfigError(f"--db {redact(args.db)!r}: give the chain database as postgresql://USER@HOST:PORT/DB")
    if args.batch < 1:
        raise ConfigError("--batch must be at least 1")
    settings = CollectorSettings(
        broker=parse_broker(args.broker, "--broker"),
        credentials=_credentials(args),
        db_url=args.db,
        client_id=args.client_id or f"agecam-collector-{socket.gethostname()}",
        topic=args.topic,
        group=args.group,
        batch=args.batch,
    )
    metrics = CollectorMetrics()
    collector = Collector(settings, metrics)
    if args.metrics_port is not None:
        port = metrics.serve(args.metrics_port, args.metrics_host)
        log.info("collector metrics on http://%s:%d/metrics", args.metrics_host, port)
    with StopSignal().installed() as stop:
        collector.run(stop.event)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    collect = subparsers.add_parser("collect", help="write the tills' MQTT messages into the chain's PostgreSQL")
    collect.add_argument("--broker", required=True, help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    collect.add_argument("--db", required=True, help="the chain database, postgresql://USER@HOST:PORT/DB")
    collect.add_argument("--username", help=f"broker user; the password from --password-file, else ${PASSWORD_ENV}")
    collect.add_argument("--password-file", help="a file whose first line is the broker password")
    collect.add_argument("--ca-file", help="CA certificate for mqtts:// (default: the system's)")
    collect.add_argument("--cert-file", help="client certificate for mqtts://")
    collect.add_argument("--key-file", help="client key for mqtts://")
    collect.add_argument("--client-id", help="MQTT client id, stable across restarts (default: agecam-collector-HOST)")
    collect.add_argument("--group", default="agecam", help="shared subscription group (default agecam)")
    collect.add_argument("--topic", default="agecam/#", help="topic filter of the tills (default agecam/#)")
    collect.add_argument("--batch", type=int, default=500, help="most messages per database transaction")
    collect.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (0: any free port)")
    collect.add_argument("--metrics-host", default="127.0.0.1", help="address for the metrics (default 127.0.0.1)")
    collect.set_defaults(handler=_collect)
