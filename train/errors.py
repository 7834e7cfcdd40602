"""Trainer errors, with the exit codes edge/errors.py reserves for the trainer (8 and 9)."""

from edge.errors import EXIT_DATA, EXIT_INTERRUPTED, EXIT_TRAIN, AgecamError


class DataError(AgecamError):
    """A dataset folder, labels file or row that cannot be used: missing, unreadable or with nothing left."""

    exit_code = EXIT_DATA


class TrainError(AgecamError):
    """A training run, recipe, backbone weights file or checkpoint that cannot be used."""

    exit_code = EXIT_TRAIN


class TrainInterrupted(AgecamError):
    """Ctrl-C or SIGTERM during a run: not a success (a script must not export it), but resumable."""

    exit_code = EXIT_INTERRUPTED
