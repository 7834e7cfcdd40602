"""User-facing errors and the one table of exit codes (README's "Exit codes" shows the same table).

Each error carries the process exit code the CLI ends with; train/ and export/ subclass AgecamError
with the codes reserved for them here.
"""

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_SOURCE = 3
EXIT_MODEL = 4
EXIT_DETECTOR = 5
EXIT_STATE = 6
EXIT_ASSET = 7
EXIT_DATA = 8
EXIT_TRAIN = 9
EXIT_EXPORT = 10
EXIT_POS = 11
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (also after a clean stop by SIGTERM or Ctrl-C, or when the output's reader left early)",
    EXIT_INTERNAL: "internal error: a bug, reported with a traceback in the log",
    EXIT_CONFIG: "bad configuration or command line, or an install without the extra a command needs",
    EXIT_SOURCE: "video source missing, unreadable or not a video",
    EXIT_MODEL: "age model missing, corrupt, or breaking the model contract",
    EXIT_DETECTOR: "face detector missing, corrupt, or failing its pinned hash",
    EXIT_STATE: "state directory, event log or output file unusable, or a database that isn't agecam's",
    EXIT_ASSET: "an asset could not be downloaded or failed its SHA-256 check",
    EXIT_DATA: "a dataset folder or label file is unusable (trainer)",
    EXIT_TRAIN: "a bad training recipe, or a checkpoint that is missing or incompatible",
    EXIT_EXPORT: "an export failed (nothing written)",
    EXIT_POS: "a POS replay script, face folder or scenario is missing or malformed",
    EXIT_INTERRUPTED: "interrupted before the run could start",
}


class AgecamError(Exception):
    """An error caused by the user's input or environment: printed as one line, no traceback."""

    exit_code = EXIT_INTERNAL


class ConfigError(AgecamError):
    """A bad config file, key, type or value, or a bad command-line value."""

    exit_code = EXIT_CONFIG


class SourceError(AgecamError):
    """A video file, camera or stream that cannot be opened or read."""

    exit_code = EXIT_SOURCE


class ModelError(AgecamError):
    """The age model is missing, corrupt or breaks docs/model-contract.md."""

    exit_code = EXIT_MODEL


class ModelFileError(ModelError):
    """The age model's path names no file to read (missing, a folder, a dangling link): what the user gave is
    wrong, not the model, so tools that wrap a ModelError with more advice pass this one on as it is."""


class DetectorError(AgecamError):
    """The face detector file is missing, corrupt or fails its checksum."""

    exit_code = EXIT_DETECTOR


class StateError(AgecamError):
    """The state directory or event log cannot be written or is not an agecam database."""

    exit_code = EXIT_STATE


class AssetError(AgecamError):
    """A downloadable asset could not be fetched or failed its SHA-256 check."""

    exit_code = EXIT_ASSET


class PosError(AgecamError):
    """A POS event script (--pos FILE) or scenario that is missing or malformed."""

    exit_code = EXIT_POS
