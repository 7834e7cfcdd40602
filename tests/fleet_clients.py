"""The fleet tests' broker logins, and a plain MQTT client for what no agecam till would publish. A module of
its own, not the fleet conftest: `from conftest import` takes whichever conftest was imported first."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from fleet_servers import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

USERS = {"till": "till-secret", "collector": "collector-secret"}


def raw_client(broker: Mosquitto) -> mqtt.Client:
    """A plain MQTT client with a till's login, to publish what no agecam till would."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=mqtt.MQTTv5)
    client.username_pw_set("till", USERS["till"])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client
