"""Trainer errors, continuing edge/errors.py's exit codes (1-7) with 8 and 9."""

from edge.errors import AgecamError


class DataError(AgecamError):
    """A dataset folder, labels file or row that cannot be used: missing, unreadable or with nothing left."""

    exit_code = 8


class TrainError(AgecamError):
    """A training run, recipe, backbone weights file or checkpoint that cannot be used."""

    exit_code = 9
