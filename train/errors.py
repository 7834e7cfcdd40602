"""Trainer errors, with the exit codes edge/errors.py reserves for the trainer (8 and 9)."""

from edge.errors import EXIT_DATA, EXIT_TRAIN, AgecamError


class DataError(AgecamError):
    """A dataset folder, labels file or row that cannot be used: missing, unreadable or with nothing left."""

    exit_code = EXIT_DATA


class TrainError(AgecamError):
    """A training run, recipe, backbone weights file or checkpoint that cannot be used."""

    exit_code = EXIT_TRAIN
