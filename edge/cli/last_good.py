"""The age model a live till last ran, kept in memory for a reload.

A reload whose configuration fails keeps the previous one; but where the model file itself was replaced in
place (a copy cut short, a bad export over the old name), the previous configuration names the same broken
file, and its next run ended the till with exit 4 mid-shift. The till then runs the bytes it last loaded,
written into its state folder, until a reload finds a file that loads.
"""

from __future__ import annotations

import hashlib
import logging
import os

from edge.config import Config
from edge.errors import ModelError
from edge.vision.age_model import load_age_model

log = logging.getLogger("agecam")
COPY_NAME = "age-model.last-good.onnx"


class LastGoodModel:
    """The bytes of the age model a configuration names, read when that configuration was taken on."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.source = ""

    def remember(self, config: Config) -> None:
        path = config.path_setting("age_model", "path")
        try:
            self.data, self.source = path.read_bytes(), str(path)
        except OSError:  # a missing model: the run that follows refuses it at start, as ever
            self.data, self.source = None, ""

    def fallback(self, config: Config, error: Exception) -> Config | None:
        """`config` running the remembered model from a copy in its state folder, or None where there is no
        such model or it does not load; one log line either way, after the reload's `error`."""
        if self.data is None:
            log.error("reload: %s; the previous model no longer loads either", error)
            return None
        copy = config.state_dir() / COPY_NAME
        temporary = copy.with_name(f".{COPY_NAME}.{os.getpid()}.tmp")
        try:
            temporary.write_bytes(self.data)
            os.replace(temporary, copy)
        except OSError as why:
            temporary.unlink(missing_ok=True)
            log.error(
                "reload: %s; the previous model no longer loads, and %s cannot be written (%s)",
                error,
                copy,
                why.strerror,
            )
            return None
        fallback = config.model_copy(deep=True)
        fallback.age_model.path = str(copy)
        try:
            load_age_model(fallback)
        except ModelError as why:
            log.error("reload: %s; the previous model no longer loads, nor does its copy (%s)", error, why)
            return None
        sha = hashlib.sha256(self.data).hexdigest()[:12]
        log.error(
            "reload: %s; %s no longer loads either: running the model it held before (sha256 %s) from %s until "
            "a reload finds a model that loads",
            error,
            self.source,
            sha,
            copy,
        )
        return fallback


def previous_model_loads(config: Config) -> bool:
    """Whether the previous configuration's age model still loads (its file may have changed since)."""
    try:
        load_age_model(config)
    except ModelError:
        return False
    return True


def remove_copy(config: Config) -> None:
    """A reload that loaded a model needs the copy no longer."""
    (config.state_dir() / COPY_NAME).unlink(missing_ok=True)
