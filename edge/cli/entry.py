"""The `agecam` command line. Other packages add subcommands through the `agecam.commands` entry-point
group (a callable taking the subparsers object), so edge never imports train or export (or torch)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points
from typing import NoReturn

from edge import __version__
from edge.errors import EXIT_CONFIG, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, AgecamError
from edge.vision.native_logs import set_native_logs

log = logging.getLogger("agecam")


def _edge_commands() -> list:
    from edge.cli import fleet, ops, review, run, scenario, serve

    return [run.register, ops.register, review.register, serve.register, scenario.register, fleet.register]


class Parser(argparse.ArgumentParser):
    """argparse's own errors (a missing argument, a bad choice or number) in the one-line form of every other
    error, instead of a usage block and a `agecam bench edge: error:` line. Subcommands' parsers, those of
    the entry points too, are of this class: add_subparsers makes its parsers of the parent's type."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("agecam").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_CONFIG, f"agecam: error: {where}{message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="agecam", description="Checkout camera age estimation.")
    parser.add_argument("--version", action="version", version=f"agecam {__version__}")
    parser.add_argument("--config", help="config file (default: $AGECAM_CONFIG, else the project's config.yaml)")
    parser.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override logging.level from the config"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _edge_commands():
        register(subparsers)
    for entry in entry_points(group="agecam.commands"):
        entry.load()(subparsers)
    return parser


# Modules only the `train` extra installs: train/ and export/ ship in every wheel, so on a till `agecam train`,
# `export` or `data describe` reached an import of torch (or matplotlib) and ended in a traceback.
TRAIN_MODULES = ("torch", "torchvision", "onnx", "matplotlib", "efficientnet_lite_pytorch")


def _missing_extra(error: ModuleNotFoundError, command: str) -> str | None:
    """The one line for a command whose extra is not installed, or None for any other missing module (a bug)."""
    root = (error.name or "").split(".")[0]
    if root not in TRAIN_MODULES:
        return None
    return f"agecam {command} needs {root}, which this install lacks: pip install 'agecam[train]' (with cpu or gpu)"


def setup_logging(level: str) -> None:
    """One event per line on stderr, for journald: level, logger, message."""
    logging.basicConfig(
        level=level, stream=sys.stderr, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _reader_left() -> int:
    """stdout's reader closed it early (`agecam events | head`): the reader has what it wanted, so this is
    a success, not an error. Later writes (and the flush at exit) go to /dev/null instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "INFO")
    set_native_logs(verbose=args.log_level == "DEBUG")
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left must not fail the interpreter's final flush
        return code
    except BrokenPipeError:
        return _reader_left()
    except AgecamError as error:
        print(f"agecam: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("agecam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if isinstance(error, ModuleNotFoundError) and (line := _missing_extra(error, args.command)):
            print(f"agecam: error: {line}", file=sys.stderr)
            return EXIT_CONFIG
        log.exception("internal error: please report this with the lines above")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
