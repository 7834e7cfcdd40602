"""The `agecam` command line. Other packages add subcommands through the `agecam.commands` entry-point
group (a callable taking the subparsers object), so edge never imports train or export (or torch)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points

from edge import __version__
from edge.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, AgecamError
from edge.vision.native_logs import set_native_logs

log = logging.getLogger("agecam")


def _edge_commands() -> list:
    from edge.cli import fleet, ops, review, run, scenario, serve

    return [run.register, ops.register, review.register, serve.register, scenario.register, fleet.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agecam", description="Checkout camera age estimation.")
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
    except Exception:
        log.exception("internal error: please report this with the lines above")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
