"""The `agecam` command line: the only place argparse is used."""

from edge.cli.entry import main

__all__ = ["main"]
