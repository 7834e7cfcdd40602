"""Export errors: one line and exit code 10 (codes 1-9 belong to edge and train)."""

from edge.errors import AgecamError


class ExportError(AgecamError):
    """A model could not be exported: unwritable output, or a failed check or parity test."""

    exit_code = 10
