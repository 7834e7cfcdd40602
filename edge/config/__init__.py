"""The agecam configuration: a pydantic model of config.yaml, loaded and validated in one place.

Lookup order: an explicit path (--config), then $AGECAM_CONFIG, then the default config.yaml (in the
checkout, or installed with the wheel), then the built-in defaults. Relative paths the file sets resolve
against that file's folder; the defaults (the bundled model) against where agecam's data is installed.
"""

from __future__ import annotations

import json
import os
import reprlib
import site
import sys
import urllib.parse
from pathlib import Path

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from edge.config.chain import FleetConfig, MetricsConfig, ReviewAccount, ReviewConfig
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


_SHORT = reprlib.Repr()  # a bad value is shown, never dumped whole (Python 3.11 takes no arguments here)
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 60, 60


class _Refused(Exception):
    """YAML that is valid but refused: the line it is on and what to do."""

    def __init__(self, mark: yaml.Mark, problem: str) -> None:
        super().__init__(f"line {mark.line + 1}: {problem}")
        self.line, self.problem = mark.line + 1, problem


# Deeper than any setting (review.accounts.NAME.role is 4): PyYAML composes recursively, so a few KB of
# brackets would otherwise end in a RecursionError traceback.
_MAX_DEPTH = 16
_ALIASES = "YAML anchors and aliases (&name, *name) are not allowed: write the value out"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases (500 bytes of nested aliases expand to gigabytes once validated),
    without duplicate keys (PyYAML keeps the last one silently, so a setting written twice would be lost), and
    without nesting deeper than any setting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(event.start_mark, _ALIASES)
        if self._depth >= _MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested deeper than {_MAX_DEPTH} levels, deeper than any setting")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _Refused(key_node.start_mark, f"key '{key_node.value}' is given twice: keep one")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key '{key}': remove it or check its spelling against config.yaml"
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {_SHORT.repr(value)})"
    message = first["msg"].removeprefix("Value error, ")
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
        raise ConfigError(_describe(error, origin)) from None
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
    file = Path(chosen).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{file}: cannot read the config file ({error.strerror}): check the path") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file}: not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    if not text.strip():
        # A till's config truncated to nothing (a full disk while saving) must not run on the defaults:
        # the POS endpoint and every other setting the file had would be gone without a word.
        raise ConfigError(f"{file}: the file is empty: write the settings to change, or {{}} for all defaults")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader without aliases or duplicate keys
    except _Refused as refused:
        raise ConfigError(f"{file}: line {refused.line}: {refused.problem}") from None
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
        where = (f" at line {mark.line + 1}" if mark else "") + (f" ({problem})" if problem else "")
        raise ConfigError(f"{file}: not valid YAML{where}: fix the syntax") from None
    return parse_config(data, str(file), file.resolve().parent)
