"""The sections of config.yaml that a till runs with: one pydantic model per section."""

from __future__ import annotations

import ipaddress
import itertools
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# At most a million (11.6 days in seconds): a finite 1e300 passes gt=0 and then overflows where it is used,
# as .inf did (a webhook timeout past any date).
Positive = Annotated[float, Field(gt=0, le=1e6)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    # No .inf or .nan: an infinite timeout passes `gt=0` and then overflows where it is used (every webhook
    # alert failed with alerts.timeout_s: .inf).
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _switch_only_where_one_is_due(cls, value: object, info: ValidationInfo) -> object:
        """YAML reads yes/no/on/off/true/false as booleans, and pydantic's lax mode takes them as 1 and 0:
        `policy.threshold: yes` was Challenge 1. Only a switch may be one."""
        if cls.model_fields[info.field_name].annotation is not bool and _holds(value, bool):
            raise ValueError("true/false (yes/no, on/off) is only for switches: give the value itself")
        # No file name, URL, host or argument can hold one: a path with it ended the run with a traceback
        # (ValueError: embedded null byte) where it was first opened, an alert command at each alert.
        if any("\0" in text for text in _texts(value)):
            raise ValueError("a NUL character (\\0) is not allowed here: remove it")
        return value


def _holds(value: object, kind: type) -> bool:
    if isinstance(value, list | tuple):
        return any(_holds(item, kind) for item in value)
    return isinstance(value, kind)


def _texts(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return [value] if isinstance(value, str) else []


# Control characters and line breaks only: str.isprintable() also refused a no-break space, a zero-width joiner
# (an emoji's) or any character newer than Python's Unicode tables, each fair in a Linux file name.
_LINE_BREAKING = {"Cc", "Zl", "Zp"}


def _printable(value: str | None) -> str | None:
    if value is not None and any(unicodedata.category(char) in _LINE_BREAKING for char in value):
        raise ValueError("a control character (a newline, a tab) is not allowed in a path or URL: remove it")
    return value


# A file's path or a URL: a newline or tab in one is a mistake (a pasted line end), and split the error lines
# that name the file in two.
PathOrUrl = Annotated[str, AfterValidator(_printable)]


class SourceConfig(Section):
    uri: PathOrUrl = "0"
    loop: bool = False
    width: Annotated[int, Field(gt=0)] | None = None
    height: Annotated[int, Field(gt=0)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=256)] = 4
    reconnect_initial_s: Positive = 0.5
    reconnect_max_s: Positive = 10.0


class DetectorConfig(Section):
    model: PathOrUrl | None = None
    detection_width: Annotated[int, Field(ge=160, le=3840)] = 640
    score_threshold: Fraction = 0.7
    nms_threshold: Fraction = 0.3
    min_face_px: Annotated[int, Field(ge=8)] = 16
    interval: Annotated[int, Field(ge=1, le=30)] = 3


class AgeModelConfig(Section):
    path: PathOrUrl = "models/agecam-mobilenetv2-int8.onnx"
    providers: list[str] = Field(
        default_factory=lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    max_batch: Annotated[int, Field(ge=1, le=256)] = 16
    threads: Annotated[int, Field(ge=0, le=64)] = 0
    batch_padding: Literal["auto", "on", "off"] = "auto"
    # Each crop also scored mirrored, the two averaged: 0.07-0.1 years of MAE on valid for about twice the
    # model's time per sampled face. The bundled model does it inside its file (contract 1.2's flip_tta), and
    # the till never flips such a model twice, so this is for other models (docs/training.md).
    flip: bool = False

    @field_validator("providers")
    @classmethod
    def _providers_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one execution provider, e.g. CPUExecutionProvider")
        return value


class TrackingConfig(Section):
    iou_threshold: Fraction = 0.2
    max_center_shift: Positive = 1.0
    forget_after_s: Positive = 2.0


class CustomerConfig(Section):
    min_samples: Annotated[int, Field(ge=1)] = 3
    max_samples: Annotated[int, Field(ge=1)] = 25
    # Bounded: a window of 1e20 passed `config check` and then ended the run at its first face (OverflowError).
    stable_window: Annotated[int, Field(ge=2, le=10_000)] = 5
    stable_tolerance_years: Positive = 1.0
    stable_min_weight: Positive = 2.0
    sample_interval_s: Annotated[float, Field(ge=0)] = 0.25
    interval_coverage: Annotated[float, Field(gt=0, lt=1)] = 0.8
    min_quality: Fraction = 0.05


class StatsConfig(Section):
    age_groups: list[Annotated[int, Field(ge=1, le=110)]] = Field(default_factory=lambda: [18, 25, 35, 45, 55, 65])
    min_samples: Annotated[int, Field(ge=1)] = 3

    @field_validator("age_groups")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("give the group boundaries as strictly increasing ages, e.g. [18, 25, 35]")
        return value


class PosConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    token: str | None = None
    # Serving without a token on a non-loopback address needs this said out loud.
    trusted_network: bool = False
    max_body_bytes: Annotated[int, Field(ge=256, le=1_048_576)] = 16384
    max_connections: Annotated[int, Field(ge=1, le=1024)] = 128
    request_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    restricted_categories: list[str] = Field(default_factory=lambda: ["alcohol", "beer", "wine", "spirits", "cider"])

    @field_validator("token")
    @classmethod
    def _usable_token(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("the token is empty: set a secret, or remove the key to serve without one")
        if value != value.strip() or not value.isprintable():
            raise ValueError("the token must not start or end with spaces or hold control characters")
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> PosConfig:
        if self.token is None and not self.trusted_network and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is reachable from the network and no token is set: set pos.token, "
                "or pos.trusted_network: true if only trusted machines can reach it"
            )
        return self


def is_loopback(host: str) -> bool:
    """A host name or address that only this machine can reach (names other than localhost may resolve anywhere)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Point = tuple[Fraction, Fraction]


class PolicyConfig(Section):
    threshold: Annotated[float, Field(ge=1, le=100)] = 25
    # estimate: the customer's estimate under the threshold; lower_bound: the interval's low end under it;
    # risk: P(real age < threshold) >= `risk`. use_lower_bound: true is the older spelling of lower_bound.
    # The default risk 0.25 flagged every minor of the valid-face scenarios with room to spare (docs/training.md).
    mode: Literal["estimate", "lower_bound", "risk"] = "risk"
    risk: Annotated[float, Field(gt=0, lt=1)] = 0.25
    use_lower_bound: bool = False
    minor_age: Annotated[float, Field(ge=1, le=100)] = 18
    min_samples: Annotated[int, Field(ge=1)] = 1
    zone: list[Point] = Field(default_factory=lambda: [(0.2, 0.0), (0.8, 0.0), (0.8, 1.0), (0.2, 1.0)])
    association_window_s: Positive = 3.0
    # An open transaction older than this is closed 'unresolved' (expired); it bounds the zone history too.
    transaction_max_s: Annotated[float, Field(ge=1, le=3600)] = 900.0
    # At most this many open transactions (one per till); beyond it the oldest is closed 'unresolved' (evicted).
    max_open_transactions: Annotated[int, Field(ge=1, le=100_000)] = 200

    @property
    def decision(self) -> str:
        """The mode in force: `use_lower_bound: true` still means lower_bound where mode is not set (a config
        from before modes) or set to estimate."""
        if self.use_lower_bound and ("mode" not in self.model_fields_set or self.mode == "estimate"):
            return "lower_bound"
        return self.mode

    @field_validator("zone")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError("give the customer zone as at least 3 [x, y] points, each a fraction of the frame")
        return value


class AlertsConfig(Section):
    webhook: PathOrUrl | None = None
    command: list[str] | None = None
    timeout_s: Positive = 2.0

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the webhook must be an http:// or https:// URL")
        return value

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give the command as a list: program first, then its arguments")
        return value


class EvidenceConfig(Section):
    enabled: bool = False
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 7


class StateConfig(Section):
    dir: PathOrUrl | None = None


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
