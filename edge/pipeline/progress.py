"""Progress of long work (a replay, a simulated till) on a terminal.

Bars go to stderr and only when stderr is a terminal: logs, pipes, files and journald get nothing.
While a bar is shown, log lines are written above it instead of through it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from edge.pipeline.frame import FrameResult
from edge.pipeline.runner import RunHooks
from edge.store.eventlog import EventLog


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(total: float | None, desc: str, unit: str, bar_format: str | None = None) -> tqdm:
    """A bar that disappears when done (the command's own output follows), or a silent one off a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        bar_format=bar_format,
        leave=False,
        dynamic_ncols=True,
        disable=not on_terminal(),
    )


@contextlib.contextmanager
def logs_above_bars() -> Iterator[None]:
    """Log lines printed above a bar rather than into it (only on a terminal: elsewhere nothing changes)."""
    if not on_terminal():
        yield
        return
    with logging_redirect_tqdm():
        yield


class ReplayProgress:
    """Run hooks (edge.pipeline.runner.RunHooks) that advance a bar in video seconds and pass every call on to
    the run's own hooks (the POS link), so the bar needs no change to the run loop."""

    def __init__(self, video_s: float | None, inner: RunHooks | None = None) -> None:
        self.video_s, self.inner = video_s, inner
        self.bar: tqdm | None = None

    def start(self, event_log: EventLog, run_id: int, origin: float) -> None:
        seconds = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of video [{elapsed}<{remaining}]"
        self.bar = progress_bar(self.video_s, "replay", "s", seconds if self.video_s else None)
        if self.inner:
            self.inner.start(event_log, run_id, origin)

    def on_frame(self, result: FrameResult) -> None:
        if self.inner:
            self.inner.on_frame(result)
        if self.bar is not None:
            self.bar.update(max(0.0, result.t - self.bar.n))

    def on_idle(self) -> None:
        if self.inner:
            self.inner.on_idle()

    def finish(self, status: str = "completed") -> None:
        if self.bar is not None:
            self.bar.close()
        if self.inner:
            self.inner.finish(status)
