"""What the till's publisher and the central collector share about the broker: its URL, credentials, TLS,
an MQTT 5 client with a persistent session, and a first connection that tells a wrong password (exit 2)
from a broker that is merely down (wait and retry)."""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import ConfigError

log = logging.getLogger(__name__)
# CONNACK reason codes that retrying cannot fix: bad client id, bad password, not authorized, banned.
REFUSALS = {
    0x85: "client id refused",
    0x86: "bad user name or password",
    0x87: "not authorized: check the user name and the password",
    0x8A: "banned",
}
PASSWORD_ENV = "AGECAM_MQTT_PASSWORD"


@dataclass(frozen=True)
class Broker:
    url: str
    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def parse_broker(url: str, option: str = "fleet.broker") -> Broker:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"{option} {url!r}: give mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ConfigError(f"{option} {url!r}: the port must be a number from 1 to 65535") from None
    if parts.username or parts.password:
        raise ConfigError(f"{option}: no user or password in the URL: use the username and password settings")
    return Broker(url, parts.hostname, port, parts.scheme == "mqtts")


def read_password(file: Path | None, env: str | None, what: str) -> str | None:
    """The broker password from a file (first line) or an environment variable; never from the config."""
    if file is not None:
        try:
            password = file.read_text(encoding="utf-8").splitlines()[0:1]
        except OSError as error:
            raise ConfigError(f"{what}: cannot read the password file {file} ({error.strerror})") from None
        if not password or not password[0]:
            raise ConfigError(f"{what}: the password file {file} is empty")
        return password[0]
    if env is not None:
        if not os.environ.get(env):
            raise ConfigError(f"{what}: the environment variable {env} that should hold the password is not set")
        return os.environ[env]
    return None


def session_properties(expiry_s: int, receive_maximum: int | None = None) -> Properties:
    """CONNECT properties: keep the session (subscriptions, queued QoS 1 messages) across disconnects."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_s
    if receive_maximum:
        properties.ReceiveMaximum = receive_maximum
    return properties


def publish_size(topic: str, payload: str) -> int:
    """The bytes of an MQTT 5 QoS 1 PUBLISH without properties: what a broker's Maximum Packet Size counts."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + len(payload.encode())  # topic, packet id, properties, payload
    return 1 + (1 if remaining < 128 else 2 if remaining < 16384 else 3 if remaining < 2097152 else 4) + remaining


def make_client(client_id: str, broker: Broker, credentials: Credentials, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    if credentials.username:
        client.username_pw_set(credentials.username, credentials.password)
    if broker.tls:
        try:
            client.tls_set(
                ca_certs=_path(credentials.ca_file),
                certfile=_path(credentials.cert_file),
                keyfile=_path(credentials.key_file),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"{broker.url}: cannot load the TLS files ({error})") from None
    client.reconnect_delay_set(1, 30)
    return client


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


class FirstConnect:
    """Connects in the background and waits up to `timeout_s` for the broker's first answer. A refusal
    that retrying cannot fix is a ConfigError; an unreachable broker is only logged (paho keeps retrying)."""

    def __init__(self, client: mqtt.Client) -> None:
        self.answered = threading.Event()
        self.refusal: str | None = None
        self.client = client

    def connected(self, reason: mqtt.ReasonCode) -> None:
        if reason.is_failure and reason.value in REFUSALS:
            self.refusal = REFUSALS[reason.value]
        self.answered.set()

    def wait(self, broker: Broker, timeout_s: float, who: str) -> bool:
        """True when connected; False when the broker did not answer (yet)."""
        self.answered.wait(timeout_s)
        if self.refusal:
            self.client.loop_stop()
            raise ConfigError(f"{who}: broker {broker.url} refused the connection: {self.refusal}")
        if not self.client.is_connected():
            log.warning("broker %s not reachable yet: retrying in the background", broker.url)
            return False
        return True
