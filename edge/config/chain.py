"""The sections for the review app and for a chain of stores: review, fleet and metrics."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge.config.sections import Fraction, PathOrUrl, Positive, Section, is_loopback

PASSWORD_HASH = re.compile(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class ReviewAccount(Section):
    role: Literal["viewer", "reviewer"]
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _scrypt(cls, value: str) -> str:
        if not PASSWORD_HASH.fullmatch(value):
            raise ValueError("not a password hash: make one with `agecam serve --hash-password`")
        return value


class ReviewConfig(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8780
    tls: Literal["reverse_proxy"] | None = None
    timezone: str = "UTC"
    accounts: dict[str, ReviewAccount] = Field(default_factory=dict)
    compliance_threshold: Fraction = 0.9
    session_minutes: Annotated[int, Field(ge=1, le=1440)] = 480
    max_failed_logins: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_minutes: Positive = 15

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        # OSError: a name that is a folder of the zone database ('America') raises IsADirectoryError.
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("not a time zone: give an IANA name such as Europe/London") from None
        return value

    @field_validator("accounts")
    @classmethod
    def _names(cls, value: dict[str, ReviewAccount]) -> dict[str, ReviewAccount]:
        for name in value:
            if not ACCOUNT_NAME.fullmatch(name):
                raise ValueError(f"account name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
        return value

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> ReviewConfig:
        if not is_loopback(self.host) and self.tls is None:
            raise ValueError(f"host {self.host} is not loopback: set tls: reverse_proxy and serve it behind one")
        return self


TopicName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class FleetConfig(Section):
    """Shipping records to the chain's MQTT broker (edge/fleet). The password never lives in the config."""

    enabled: bool = False
    broker: PathOrUrl | None = None
    store_id: TopicName | None = None
    till_id: TopicName | None = None
    topic_prefix: str | None = None
    client_id: str | None = None
    username: str | None = None
    password_file: PathOrUrl | None = None
    password_env: str | None = None
    ca_file: PathOrUrl | None = None
    cert_file: PathOrUrl | None = None
    key_file: PathOrUrl | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=0, le=4_294_967_295)] = 604800
    max_outbox_rows: Annotated[int, Field(ge=100)] = 200_000
    inflight: Annotated[int, Field(ge=1, le=1000)] = 100
    heartbeat_s: Positive = 60.0

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: object) -> object:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("password: keep the broker password out of the config: use password_file or password_env")
        return data

    @field_validator("broker")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("the broker must be an mqtt:// or mqtts:// URL, e.g. mqtts://broker.example:8883")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> FleetConfig:
        if self.enabled:
            missing = [key for key in ("broker", "store_id", "till_id") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"set {', '.join(missing)} to enable the fleet link")
        if self.username and not (self.password_file or self.password_env):
            raise ValueError("with a username, give password_file or password_env")
        if self.topic_prefix is not None and self.enabled:
            # The collector checks a record's store and till against its topic (broker ACLs can then bind them).
            tail = f"/{self.store_id}/{self.till_id}/"
            if not f"/{self.topic_prefix}".endswith(tail) or any(char in self.topic_prefix for char in "+#"):
                raise ValueError(f"topic_prefix must end with '{tail[1:]}' and hold no '+' or '#'")
        return self

    def prefix(self) -> str:
        return self.topic_prefix or f"agecam/{self.store_id}/{self.till_id}/"


class MetricsConfig(Section):
    """Prometheus metrics of the till: served over HTTP (port) and/or written for node_exporter (textfile)."""

    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    host: str = "127.0.0.1"
    textfile: PathOrUrl | None = None
    textfile_every_s: Positive = 15.0
