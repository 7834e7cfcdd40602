"""What a till sends to the chain's broker, and as whom: its client id and login (from the config), the
topics under its prefix, the user properties that name it, a record's envelope around its outbox row, and
the heartbeat. The collector reads these messages in edge.fleet.messages."""

from __future__ import annotations

import json
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import Config, FleetConfig
from edge.fleet.mqtt import Credentials, read_password
from edge.store.outbox import OutboxRow


def credentials(config: Config) -> Credentials:
    fleet = config.fleet
    password_file = config.resolve(fleet.password_file) if fleet.password_file else None
    password = read_password(password_file, fleet.password_env, "fleet") if fleet.username else None
    resolve = lambda value: config.resolve(value) if value else None  # noqa: E731
    return Credentials(
        fleet.username, password, resolve(fleet.ca_file), resolve(fleet.cert_file), resolve(fleet.key_file)
    )


class Outgoing:
    """One till's messages: the prefix ends with `<store>/<till>/` unless the config names another."""

    def __init__(self, settings: FleetConfig) -> None:
        self.prefix = settings.prefix()
        self.identity = {"store_id": settings.store_id, "till_id": settings.till_id}
        self.client_id = settings.client_id or f"agecam-{settings.store_id}-{settings.till_id}"

    def topic(self, kind: str) -> str:
        return f"{self.prefix}{kind}"

    def who(self, packet: int = PacketTypes.PUBLISH) -> Properties:
        """User properties naming the till, so availability needs no topic parsing."""
        properties = Properties(packet)
        properties.UserProperty = [("store_id", self.identity["store_id"]), ("till_id", self.identity["till_id"])]
        return properties

    def record(self, log_key: str, row: OutboxRow) -> str:
        """The envelope around the row's body, which is JSON already: spliced in, not parsed again."""
        head = {"v": 1, "id": f"{log_key}:{row.id}", **self.identity, "seq": row.id, "kind": row.kind}
        head["at"] = row.created_at
        return json.dumps(head, separators=(",", ":"))[:-1] + ',"data":' + row.body + "}"

    def heartbeat(self, outbox: int, oldest_unshipped_s: float, status: dict) -> str:
        body = {
            "v": 1,
            **self.identity,
            "at": time.time(),
            "outbox": outbox,
            "oldest_unshipped_s": round(oldest_unshipped_s, 1),
            "status": status,
        }
        return json.dumps(body)
