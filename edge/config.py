"""The agecam configuration: a pydantic model of config.yaml, loaded and validated in one place.

Lookup order: an explicit path (--config), then $AGECAM_CONFIG, then the default config.yaml (in the
checkout, or installed with the wheel), then the built-in defaults. Relative paths the file sets resolve
against that file's folder; the defaults (the bundled model) against where agecam's data is installed.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import reprlib
import site
import sys
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from edge.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dirs() -> list[Path]:
    """Where the default config.yaml and the bundled model may be: the checkout (a source tree or an editable
    install), else the data files a wheel installs under PREFIX/share/agecam (a venv's or the user's)."""
    return [PROJECT_ROOT, Path(sys.prefix) / "share" / "agecam", Path(site.getuserbase()) / "share" / "agecam"]


def find_data_dir(candidates: list[Path]) -> Path:
    return next((folder for folder in candidates if (folder / "config.yaml").is_file()), candidates[0])


DATA_DIR = find_data_dir(data_dirs())
PROJECT_CONFIG = DATA_DIR / "config.yaml"

Positive = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SourceConfig(Section):
    uri: str = "0"
    loop: bool = False
    width: Annotated[int, Field(gt=0)] | None = None
    height: Annotated[int, Field(gt=0)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=256)] = 4
    reconnect_initial_s: Positive = 0.5
    reconnect_max_s: Positive = 10.0


class DetectorConfig(Section):
    model: str | None = None
    detection_width: Annotated[int, Field(ge=160, le=3840)] = 640
    score_threshold: Fraction = 0.7
    nms_threshold: Fraction = 0.3
    min_face_px: Annotated[int, Field(ge=8)] = 16


class AgeModelConfig(Section):
    path: str = "models/agecam-mobilenetv2-int8.onnx"
    providers: list[str] = Field(
        default_factory=lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    max_batch: Annotated[int, Field(ge=1, le=256)] = 16
    threads: Annotated[int, Field(ge=0, le=64)] = 0

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
    stable_window: Annotated[int, Field(ge=2)] = 5
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
    mode: Literal["estimate", "lower_bound", "risk"] = "estimate"
    risk: Annotated[float, Field(gt=0, lt=1)] = 0.5
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
        """The mode in force: `use_lower_bound: true` still means lower_bound where mode is left as is."""
        return "lower_bound" if self.use_lower_bound and self.mode == "estimate" else self.mode

    @field_validator("zone")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError("give the customer zone as at least 3 [x, y] points, each a fraction of the frame")
        return value


class AlertsConfig(Section):
    webhook: str | None = None
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
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
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
    broker: str | None = None
    store_id: TopicName | None = None
    till_id: TopicName | None = None
    topic_prefix: str | None = None
    client_id: str | None = None
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
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
    textfile: str | None = None
    textfile_every_s: Positive = 15.0


class StateConfig(Section):
    dir: str | None = None


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(Section):
    source: SourceConfig = Field(default_factory=SourceConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    age_model: AgeModelConfig = Field(default_factory=AgeModelConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    customer: CustomerConfig = Field(default_factory=CustomerConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    pos: PosConfig = Field(default_factory=PosConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _base_dir: Path = PrivateAttr(default=DATA_DIR)
    _data_dir: Path = PrivateAttr(default=DATA_DIR)
    _origin: str = PrivateAttr(default="built-in defaults")

    @property
    def origin(self) -> str:
        """Where this config came from, for log lines and error messages."""
        return self._origin

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        expanded = Path(os.path.expandvars(os.path.expanduser(str(path))))
        return expanded if expanded.is_absolute() else self._base_dir / expanded

    def path_setting(self, section: str, key: str) -> Path:
        """A path setting made absolute. One the config file set resolves against the file's folder. One
        left at its default resolves against agecam's installed data (the bundled model), wherever the
        config file is; so does the default value copied from config.yaml when that folder lacks the file."""
        part = getattr(self, section)
        value, default = getattr(part, key), type(part).model_fields[key].default
        if key not in part.model_fields_set:
            return self._data_dir / value
        chosen = self.resolve(value)
        if value == default and not chosen.exists():
            return self._data_dir / value
        return chosen

    def state_dir(self) -> Path:
        """The state folder: config, else systemd's $STATE_DIRECTORY, else the XDG state home."""
        if self.state.dir:
            return self.resolve(self.state.dir)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "agecam"


_SHORT = reprlib.Repr()  # a bad value is shown, never dumped whole (Python 3.11 takes no arguments here)
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 60, 60


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases: 500 bytes of nested aliases expand to gigabytes once validated."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


class _AliasRefused(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(f"line {mark.line + 1}")
        self.line = mark.line + 1


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}': remove it or check its spelling against config.yaml"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {_SHORT.repr(value)})"
    message = first["msg"].removeprefix("Value error, ")
    return f"{origin}: {key}: {message}{shown}"


def parse_config(data: object, origin: str, base_dir: Path) -> Config:
    """Validate a mapping (as read from YAML) into a Config, or raise a one-line ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, origin)) from None
    config._base_dir = base_dir
    config._origin = origin
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration (see the module docstring for the lookup order)."""
    chosen = path or os.environ.get("AGECAM_CONFIG") or (PROJECT_CONFIG if PROJECT_CONFIG.exists() else None)
    if chosen is None:
        return parse_config({}, "built-in defaults", Path.cwd())
    file = Path(chosen).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{file}: cannot read the config file ({error.strerror}): check the path") from None
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader without aliases
    except _AliasRefused as refused:
        raise ConfigError(
            f"{file}: line {refused.line}: YAML anchors and aliases (&name, *name) are not allowed: write the value out"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}: fix the syntax") from None
    return parse_config(data, str(file), file.resolve().parent)
