"""The files a live till last loaded (age model, face detector), kept in memory for a reload.

A reload whose configuration fails keeps the previous one; but where a file itself was replaced in place (a
copy cut short, a bad export over the old name), the previous configuration names the same broken file, and
its next run ended the till mid-shift (exit 4 for the model, 5 for the detector). The till then runs the bytes
it last loaded, written into its state folder, until a reload finds files that load.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config
from edge.errors import AgecamError, DetectorError, ModelError
from edge.vision.age_model import load_age_model
from edge.vision.detector import detector_file, load_detector

log = logging.getLogger("agecam")


@dataclass(frozen=True)
class Part:
    """One file a run loads: what the log calls it, its copy's name in the state folder, where a config finds
    it, how a run loads it (raising `error`), and how a config is pointed at another file."""

    name: str
    copy_name: str
    locate: Callable[[Config], Path]
    load: Callable[[Config], object]
    error: type[AgecamError]
    point: Callable[[Config, Path], None]


def _point_model(config: Config, path: Path) -> None:
    config.age_model.path = str(path)


def _point_detector(config: Config, path: Path) -> None:
    config.detector.model = str(path)  # taken before the assets folder: its pinned hash is not checked


MODEL = Part(
    name="model",
    copy_name="age-model.last-good.onnx",
    locate=lambda config: config.path_setting("age_model", "path"),
    load=load_age_model,
    error=ModelError,
    point=_point_model,
)
DETECTOR = Part(
    name="face detector",
    copy_name="detector.last-good.onnx",
    locate=detector_file,
    load=load_detector,
    error=DetectorError,
    point=_point_detector,
)
PARTS = (MODEL, DETECTOR)


def loads(part: Part, config: Config) -> bool:
    """Whether `config`'s file for `part` loads now (it may have changed since the config was taken on)."""
    try:
        part.load(config)  # released at once: a run loads its own
    except part.error:
        return False
    return True


class LastGood:
    """The bytes of the files a configuration names, read when that configuration was taken on."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[bytes, str]] = {}  # part name: (bytes, the path they were read from)

    def remember(self, config: Config) -> None:
        for part in PARTS:
            try:
                path = part.locate(config)
                self.held[part.name] = (path.read_bytes(), str(path))
            except (OSError, part.error):  # a missing file: the run that follows refuses it at start, as ever
                self.held.pop(part.name, None)

    def fallback(self, config: Config, error: Exception) -> Config | None:
        """What a reload whose configuration failed with `error` runs: `config` where its files still load,
        else `config` running the remembered bytes of each broken one from a copy in its state folder, or None
        where one has no such bytes or they do not load either; one log line for each broken file."""
        broken = [part for part in PARTS if not loads(part, config)]
        if not broken:
            log.error("reload: %s; keeping the previous configuration", error)
            return config
        fallback = config.model_copy(deep=True)
        for part in broken:
            if not self._run_copy(part, fallback, error):
                return None
        return fallback

    def _run_copy(self, part: Part, config: Config, error: Exception) -> bool:
        """Point `config` at a copy of the bytes last loaded for `part`; whether that copy loads."""
        if part.name not in self.held:
            log.error("reload: %s; the previous %s no longer loads either", error, part.name)
            return False
        data, source = self.held[part.name]
        copy = config.state_dir() / part.copy_name
        if not _write_whole(copy, data, error, part):
            return False
        part.point(config, copy)
        try:
            part.load(config)
        except part.error as why:
            log.error("reload: %s; the previous %s no longer loads, nor its copy (%s)", error, part.name, why)
            return False
        log.error(
            "reload: %s; %s no longer loads either: running the %s it held before (sha256 %s) from %s "
            "until a reload finds one that loads",
            error,
            source,
            part.name,
            hashlib.sha256(data).hexdigest()[:12],
            copy,
        )
        return True


def _write_whole(copy: Path, data: bytes, error: Exception, part: Part) -> bool:
    """Write `data` to `copy` through a temporary file (a run never reads half a copy); whether it worked."""
    temporary = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, copy)
    except OSError as why:
        temporary.unlink(missing_ok=True)
        log.error(
            "reload: %s; the previous %s no longer loads, and %s cannot be written (%s)",
            error,
            part.name,
            copy,
            why.strerror,
        )
        return False
    return True


def remove_copies(config: Config) -> None:
    """A reload that loaded its files needs the copies no longer."""
    for part in PARTS:
        (config.state_dir() / part.copy_name).unlink(missing_ok=True)
