"""Real servers for the fleet tests: mosquitto (a password file, a free loopback port, one per test) and
PostgreSQL (one cluster per session in a temporary folder, one fresh database per test). Nothing mocked;
the tests skip, saying why, only where mosquitto or initdb is not installed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_servers import Mosquitto, Postgres, missing_servers

from edge.fleet.collector import Collector, CollectorSettings
from edge.fleet.mqtt import Credentials, parse_broker

from fleet_clients import USERS


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    reason = missing_servers()
    if reason:
        pytest.skip(f"fleet tests need real servers: {reason}")
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def chain_db(postgres: Postgres) -> str:
    return postgres.create_database(f"chain_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    reason = missing_servers()
    if reason:
        pytest.skip(f"fleet tests need real servers: {reason}")
    server = Mosquitto(tmp_path / "mosquitto", USERS)
    yield server
    server.stop()


@pytest.fixture
def till_password(tmp_path: Path) -> Path:
    path = tmp_path / "till.password"
    path.write_text(USERS["till"] + "\n")
    path.chmod(0o600)
    return path


class RunningCollector:
    """`agecam collect`'s Collector in a thread of the test process (killed collectors run as processes)."""

    def __init__(self, broker: Mosquitto, url: str, client_id: str = "collector-a") -> None:
        settings = CollectorSettings(
            parse_broker(broker.url), Credentials("collector", USERS["collector"]), url, client_id
        )
        self.collector = Collector(settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.collector.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture
def collector_for():
    started: list[RunningCollector] = []

    def start(broker: Mosquitto, url: str, client_id: str = "collector-a") -> RunningCollector:
        started.append(RunningCollector(broker, url, client_id))
        return started[-1]

    yield start
    for running in started:
        running.close()
