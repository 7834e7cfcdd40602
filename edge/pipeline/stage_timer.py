"""Wall-clock time spent per pipeline stage, for the summary and the benchmark."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def add_ms(self, stage: str, milliseconds: float) -> None:
        self.seconds[stage] += milliseconds / 1000


def ms_per_frame(seconds: dict[str, float], frames: int) -> dict[str, float]:
    """Each stage's total seconds as milliseconds per frame."""
    return {stage: round(1000 * total / max(frames, 1), 3) for stage, total in seconds.items()}
