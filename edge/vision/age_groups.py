"""Age groups for statistics, from a list of boundaries: [18, 25] gives '<18', '18-24', '25+'."""

from __future__ import annotations

import bisect
import itertools


class AgeGroups:
    def __init__(self, boundaries: list[int]) -> None:
        self.boundaries = list(boundaries)
        inner = [f"{low}-{high - 1}" for low, high in itertools.pairwise(boundaries)]
        self.labels = [f"<{boundaries[0]}", *inner, f"{boundaries[-1]}+"]

    def label(self, age: float) -> str:
        return self.labels[bisect.bisect_right(self.boundaries, age)]


def group_order(label: str) -> int:
    """Age-group labels in age order: "<18" first, then "18-24", ..., "65+"."""
    return -1 if label.startswith("<") else int(label.rstrip("+").split("-")[0])
