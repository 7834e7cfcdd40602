"""The agecam configuration: a pydantic model of config.yaml, loaded and validated in one place.

Lookup order: an explicit path (--config), then $AGECAM_CONFIG, then the default config.yaml (in the
checkout, or installed with the wheel), then the built-in defaults. Relative paths the file sets resolve
against that file's folder; the defaults (the bundled model) against where agecam's data is installed.
"""

from __future__ import annotations

import json
import os
import site
import sys
import urllib.parse
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError

from edge.config.chain import FleetConfig, MetricsConfig, ReviewAccount, ReviewConfig
from edge.config.reading import SHORT, expand_home, one_line, parse_yaml, read_text
from edge.config.sections import (
    AgeModelConfig,
    AlertsConfig,
    CustomerConfig,
    DetectorConfig,
    EvidenceConfig,
    Fraction,
    LoggingConfig,
    PolicyConfig,
    PosConfig,
    Positive,
    Section,
    SourceConfig,
    StateConfig,
    StatsConfig,
    TrackingConfig,
    is_loopback,
)
from edge.errors import ConfigError

# The sections are part of edge.config: every module imports them from here.
__all__ = [
    "DATA_DIR", "PROJECT_CONFIG", "PROJECT_ROOT", "AgeModelConfig", "AlertsConfig", "Config", "CustomerConfig",
    "DetectorConfig", "EvidenceConfig", "FleetConfig", "Fraction", "LoggingConfig", "MetricsConfig", "PolicyConfig",
    "PosConfig", "Positive", "ReviewAccount", "ReviewConfig", "Section", "SourceConfig", "StateConfig",
    "StatsConfig", "TrackingConfig", "find_data_dir", "is_loopback", "load_config", "parse_config",
]  # fmt: skip

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dirs() -> list[Path]:
    """Where the default config.yaml and the bundled model may be: the checkout (a source tree or an editable
    install), else the data files a wheel installs under PREFIX/share/agecam (a venv's or the user's)."""
    return [PROJECT_ROOT, Path(sys.prefix) / "share" / "agecam", Path(site.getuserbase()) / "share" / "agecam"]


def find_data_dir(candidates: list[Path]) -> Path:
    return next((folder for folder in candidates if (folder / "config.yaml").is_file()), candidates[0])


DATA_DIR = find_data_dir(data_dirs())
PROJECT_CONFIG = DATA_DIR / "config.yaml"


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

    def recorded_json(self) -> str:
        """The config as a run's row in the event log keeps it, secrets left out: the log is copied for
        review and replays, and the POS token, a camera's or webhook URL's password, an alert command's
        arguments (a curl -u user:password) and the review accounts' password hashes must not travel with it."""
        data = self.model_dump(mode="json")
        if data["pos"]["token"] is not None:
            data["pos"]["token"] = REDACTED
        data["source"]["uri"] = without_password(data["source"]["uri"])  # rtsp://admin:password@camera/
        if data["alerts"]["webhook"]:
            data["alerts"]["webhook"] = without_password(data["alerts"]["webhook"])
        if command := data["alerts"]["command"]:
            data["alerts"]["command"] = command[:1] + [REDACTED] * (len(command) > 1)
        for account in data["review"]["accounts"].values():
            account["password_hash"] = REDACTED
        return json.dumps(data)

    def state_dir(self) -> Path:
        """The state folder: config, else systemd's $STATE_DIRECTORY, else the XDG state home."""
        if self.state.dir:
            return self.resolve(self.state.dir)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "agecam"


REDACTED = "(not recorded)"


def without_password(url: str) -> str:
    """The URL with its password (if any) replaced: for what is logged or kept of a camera or webhook URL."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # "http://u:p@[::1/": the config takes it (the webhook fails each alert), the run must start
        return REDACTED  # where its password ends is unknown
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:{REDACTED}@{host}"))


_URLS = {"source.uri", "alerts.webhook", "fleet.broker"}  # not shown where they hold a password


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}': remove it or check its spelling against config.yaml"
    value = first.get("input")
    if first["type"] == "model_type":  # pydantic said "a valid dictionary or instance of PosConfig"
        if value is None:  # `pos:` with each of its lines commented out, or a file cut short after it
            return f"{origin}: {key}: the section is empty: give its settings, or {{}} for its defaults"
        return f"{origin}: {key}: give a section of settings (key: value lines) (got {SHORT.repr(value)})"
    # The line goes to the journal, and a run's record leaves these out too: a token of digits, a password
    # pasted as its hash, `pos.token: "s3cret "`, a camera URL's password were shown there in full.
    secret = (
        first["loc"][-1:] in (("token",), ("password_hash",))
        or first["loc"][:2] == ("alerts", "command")  # `curl -u user:password`
        or (key in _URLS and isinstance(value, str) and without_password(value) != value)
    )
    shown = "" if isinstance(value, dict) or secret else f" (got {SHORT.repr(value)})"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "string_type" and not isinstance(value, list | dict):  # `uri: 0`, `token: 1234`
        shown += ": write it in quotes"
    return f"{origin}: {key}: {message}{shown}"


def _check_sample_counts(config: Config, origin: str) -> None:
    """Sampling stops at customer.max_samples, so a count above it is never reached: stats.min_samples: 30
    counted no customer at all, and policy.min_samples: 30 made every customer uncertain, without a word."""
    most = config.customer.max_samples
    for key, value in (
        ("customer.min_samples", config.customer.min_samples),
        ("stats.min_samples", config.stats.min_samples),
        ("policy.min_samples", config.policy.min_samples),
    ):
        if value > most:
            raise ConfigError(
                f"{origin}: {key}: {value} is more than customer.max_samples ({most}), where a customer's "
                "sampling stops, so it is never reached: lower it or raise customer.max_samples"
            )


def parse_config(data: object, origin: str, base_dir: Path) -> Config:
    """Validate a mapping (as read from YAML) into a Config, or raise a one-line ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(one_line(_describe(error, origin))) from None
    _check_sample_counts(config, origin)
    config._base_dir = base_dir
    config._origin = origin
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration (see the module docstring for the lookup order)."""
    if path == "":  # `--config "$UNSET"` ran on the default config (POS endpoint off) without a word
        raise ConfigError("--config is empty: give the config file's path, or leave the option out")
    chosen = path or os.environ.get("AGECAM_CONFIG") or (PROJECT_CONFIG if PROJECT_CONFIG.exists() else None)
    if chosen is None:
        return parse_config({}, "built-in defaults", Path.cwd())
    file = expand_home(chosen)
    shown = one_line(str(file))  # a newline in the path must not split the error line
    text = read_text(file)
    if not text.strip():
        # A till's config truncated to nothing (a full disk while saving) must not run on the defaults:
        # the POS endpoint and every other setting the file had would be gone without a word.
        raise ConfigError(f"{shown}: the file is empty: write the settings to change, or {{}} for all defaults")
    return parse_config(parse_yaml(text, shown), shown, file.resolve().parent)
