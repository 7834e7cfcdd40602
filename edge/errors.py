"""User-facing errors. Each carries the process exit code the CLI ends with (documented in README)."""


class AgecamError(Exception):
    """An error caused by the user's input or environment: printed as one line, no traceback."""

    exit_code = 1


class ConfigError(AgecamError):
    """A bad config file, key, type or value, or a bad command-line value."""

    exit_code = 2


class SourceError(AgecamError):
    """A video file, camera or stream that cannot be opened or read."""

    exit_code = 3


class ModelError(AgecamError):
    """The age model is missing, corrupt or breaks docs/model-contract.md."""

    exit_code = 4


class DetectorError(AgecamError):
    """The face detector file is missing, corrupt or fails its checksum."""

    exit_code = 5


class StateError(AgecamError):
    """The state directory or event log cannot be written or is not an agecam database."""

    exit_code = 6


class AssetError(AgecamError):
    """A downloadable asset could not be fetched or failed its SHA-256 check."""

    exit_code = 7


class PosError(AgecamError):
    """A POS event script (--pos FILE) or scenario that is missing or malformed."""

    exit_code = 11


EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
