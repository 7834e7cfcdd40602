"""The agecam configuration: a pydantic model of config.yaml, loaded and validated in one place.

Lookup order: an explicit path (--config), then $AGECAM_CONFIG, then the project's config.yaml,
then the built-in defaults. Relative paths inside a file resolve against that file's folder.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from edge.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_CONFIG = PROJECT_ROOT / "config.yaml"

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
    interval: Annotated[int, Field(ge=1, le=30)] = 3


class AgeModelConfig(Section):
    path: str = "models/agecam-mobilenetv2-int8.onnx"
    providers: list[str] = Field(
        default_factory=lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    max_batch: Annotated[int, Field(ge=1, le=256)] = 16
    threads: Annotated[int, Field(ge=0, le=64)] = 0
    batch_padding: Literal["auto", "on", "off"] = "auto"

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
    max_body_bytes: Annotated[int, Field(ge=256, le=1_048_576)] = 16384
    restricted_categories: list[str] = Field(default_factory=lambda: ["alcohol", "beer", "wine", "spirits", "cider"])


Point = tuple[Fraction, Fraction]


class PolicyConfig(Section):
    threshold: Annotated[float, Field(ge=1, le=100)] = 25
    use_lower_bound: bool = False
    minor_age: Annotated[float, Field(ge=1, le=100)] = 18
    min_samples: Annotated[int, Field(ge=1)] = 1
    zone: list[Point] = Field(default_factory=lambda: [(0.2, 0.0), (0.8, 0.0), (0.8, 1.0), (0.2, 1.0)])
    association_window_s: Positive = 3.0

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
    state: StateConfig = Field(default_factory=StateConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _base_dir: Path = PrivateAttr(default=PROJECT_ROOT)
    _origin: str = PrivateAttr(default="built-in defaults")

    @property
    def origin(self) -> str:
        """Where this config came from, for log lines and error messages."""
        return self._origin

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        expanded = Path(os.path.expandvars(os.path.expanduser(str(path))))
        return expanded if expanded.is_absolute() else self._base_dir / expanded

    def state_dir(self) -> Path:
        """The state folder: config, else systemd's $STATE_DIRECTORY, else the XDG state home."""
        if self.state.dir:
            return self.resolve(self.state.dir)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "agecam"


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}': remove it or check its spelling against config.yaml"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
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
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}: fix the syntax") from None
    return parse_config(data, str(file), file.resolve().parent)
