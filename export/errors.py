"""Export errors: one line and exit code 10 (edge/errors.py's table)."""

from edge.errors import EXIT_EXPORT, AgecamError


class ExportError(AgecamError):
    """A model could not be exported: unwritable output, or a failed check or parity test."""

    exit_code = EXIT_EXPORT
