"""What every command shares: the one config loader, the event log's path, and period options."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from edge.config import Config, load_config
from edge.errors import ConfigError
from edge.store.eventlog import DB_NAME, iso


def load(args: argparse.Namespace) -> Config:
    """The config named by --config (else $AGECAM_CONFIG, else the project's), with its log level unless
    --log-level was given."""
    config = load_config(args.config)
    if not args.log_level:
        logging.getLogger().setLevel(config.logging.level)
    return config


def db_path(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.db) if args.db else config.state_dir() / DB_NAME


def event_log_option(text: str) -> str:
    """argparse's type for --db: an empty one (an unset variable, as in --db "$DB") read as no --db, so a test
    replay went into the till's own event log, and purge or serve took the till's log for the one named."""
    if not text:
        raise argparse.ArgumentTypeError("is empty: give the event log's path (was it an unset variable?)")
    return text


def path_option(text: str, option: str) -> Path:
    """A path from the command line. An empty one (an unset variable, as in --out "$DIR") is refused: Path("") is
    the working folder, so simulate wrote its scenario there, and replay --pos "" replayed without POS, exit 0."""
    if not text:
        raise ConfigError(f"{option} is empty: give a path (was it an unset variable?)")
    return Path(text)


def parse_time(text: str | None, option: str) -> str | None:
    """An ISO date or date-time (UTC unless it says otherwise), in the log's own format for comparison."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # In UTC, an offset can push year 1 or 9999 out of datetime's range (ValueError, OverflowError).
        return iso((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{option} {text!r}: give an ISO date or date-time between the years 1 and 9999, e.g. 2026-11-22T09:00"
        ) from None


def period(args: argparse.Namespace) -> tuple[str | None, str | None]:
    return parse_time(args.since, "--since"), parse_time(args.until, "--until")


def add_period(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=event_log_option,
        help="event log (default: STATE_DIR/agecam.db), or postgresql://... for the chain",
    )
    parser.add_argument("--since", help="from this UTC time, ISO 8601 (inclusive)")
    parser.add_argument("--until", help="up to this UTC time, ISO 8601 (exclusive)")
