"""What an age model may output, checked rather than trusted: one value per crop, finite, an age inside
the model's declared range (`agecam.age_min`..`agecam.age_max`, with a little slack for regression
heads) and a standard deviation between 0 and that range's width.

At load, `self_test` runs synthetic crops through the session, alone and batched, and refuses a model
that fails (exit 4). At run time `OutputLimits.valid` marks each sample, and the pipeline drops and
counts the bad ones: a NaN never reaches a customer's estimate or the event log.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import ModelError

SLACK = 0.05  # of the age range: a regression head may overshoot its range a little, not by decades

Run = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray | None]]  # ages, stds, age_probs


@dataclass(frozen=True)
class AgeSamples:
    """One sample per crop. `valid` is False for a sample to drop (non-finite, out of range, or its whole
    batch failed); `problem` says what was wrong with the first one. Valid ages are clipped to the range."""

    ages: np.ndarray
    stds: np.ndarray
    valid: np.ndarray
    problem: str | None
    probs: np.ndarray | None = None  # [N, ages] calibrated age_probs (NaN rows where not valid); None: no output

    def mirror_pairs(self, count: int) -> AgeSamples:
        """Samples of `count` crops followed by their mirror images -> one sample per crop: the mean age,
        the std of the two samples' equal mixture, the mean distribution; valid only if both were."""
        first, second = slice(0, count), slice(count, 2 * count)
        valid = self.valid[first] & self.valid[second]
        a, b = self.ages[first], self.ages[second]
        with np.errstate(invalid="ignore"):
            ages = np.where(valid, (a + b) / 2, np.nan)
            stds = np.sqrt((self.stds[first] ** 2 + self.stds[second] ** 2) / 2 + ((a - b) / 2) ** 2)
        probs = None if self.probs is None else (self.probs[first] + self.probs[second]) / 2
        return AgeSamples(ages, np.where(valid, stds, np.nan), valid, self.problem, probs)


@dataclass(frozen=True)
class OutputLimits:
    age_min: float
    age_max: float

    @property
    def span(self) -> float:
        return self.age_max - self.age_min

    def valid(self, ages: np.ndarray, stds: np.ndarray) -> np.ndarray:
        """One flag per sample: finite, age within the range (plus slack), 0 <= std <= the range's width."""
        slack = SLACK * self.span
        with np.errstate(invalid="ignore"):
            return (
                np.isfinite(ages)
                & np.isfinite(stds)
                & (ages >= self.age_min - slack)
                & (ages <= self.age_max + slack)
                & (stds >= 0)
                & (stds <= self.span)
            )

    def clip(self, ages: np.ndarray) -> np.ndarray:
        return np.clip(ages, self.age_min, self.age_max)

    def why(self, ages: np.ndarray, stds: np.ndarray) -> str:
        """The first bad sample, in words, for the log and error messages."""
        bad = np.flatnonzero(~self.valid(ages, stds))
        if bad.size == 0:
            return "no bad sample"
        age, std = float(ages[bad[0]]), float(stds[bad[0]])
        return f"age {age:g}, age_std {std:g} (allowed: ages {self.age_min:g}-{self.age_max:g}, std 0-{self.span:g})"


def check_shape(ages: np.ndarray, stds: np.ndarray, count: int) -> str | None:
    """None when both outputs hold one value per crop, else what is wrong."""
    if np.shape(ages) == np.shape(stds) == (count,):
        return None
    return f"{count} crop(s) gave outputs of shape {np.shape(ages)} and {np.shape(stds)}, not [{count}]"


def check_probs(probs: np.ndarray | None, count: int, width: int) -> str | None:
    """None when age_probs is absent or holds one row of `width` ages per crop, else what is wrong."""
    if probs is None or np.shape(probs) == (count, width):
        return None
    return f"{count} crop(s) gave age_probs of shape {np.shape(probs)}, not [{count}, {width}]"


def probs_valid(probs: np.ndarray) -> np.ndarray:
    """One flag per row: finite, no negative mass, and some mass at all (a distribution, once normalised)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(probs).all(axis=1) & (probs >= 0).all(axis=1) & (probs.sum(axis=1) > 0)


def self_test_crops(size: int) -> dict[str, np.ndarray]:
    """Synthetic crops (no real face is bundled): mid grey, a drawn face, the face darker and lighter, noise."""
    grey = np.full((size, size, 3), 128, np.uint8)
    face = grey.copy()
    centre, unit = (size // 2, size // 2), max(size // 16, 1)
    cv2.ellipse(face, centre, (5 * unit, 7 * unit), 0, 0, 360, (150, 175, 215), -1)
    for side in (-1, 1):
        cv2.circle(face, (centre[0] + side * 2 * unit, centre[1] - 2 * unit), unit, (40, 40, 40), -1)
    cv2.ellipse(face, (centre[0], centre[1] + 3 * unit), (2 * unit, unit), 0, 0, 180, (60, 60, 140), -1)
    return {
        "grey": grey,
        "face": face,
        "dark face": (face * 0.5).astype(np.uint8),
        "light face": (255 - (255 - face.astype(np.float32)) * 0.5).astype(np.uint8),
        "noise": np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8),
    }


def self_test(run: Run, limits: OutputLimits, size: int, max_batch: int, origin: str, width: int = 0) -> None:
    """Each synthetic crop alone, then a batch of them: raise ModelError on the first bad output. `width`: the
    age_probs columns (the model's ages), checked when `run` gives age_probs."""
    crops = self_test_crops(size)
    batch = list(crops)[: max(1, min(len(crops), max_batch))]
    trials = [([name], [crop]) for name, crop in crops.items()]
    if len(batch) > 1:
        trials.append((batch, [crops[name] for name in batch]))
    if max_batch > len(crops):  # the largest batch the till runs: a model that breaks above 5 loaded, then
        # dropped every sample of every frame with more faces than that
        images = [crops[name] for name in itertools.islice(itertools.cycle(crops), max_batch)]
        trials.append(([f"batch of {max_batch} (age_model.max_batch)"], images))
    for names, images in trials:
        try:
            ages, stds, probs = run(np.stack(images))
        except Exception as error:  # ORT raises its own types; any of them means the model cannot run
            problem = f"inference failed ({first_line(error)})"
        else:
            problem = check_shape(ages, stds, len(images)) or check_probs(probs, len(images), width)
            if problem is None and not limits.valid(ages, stds).all():
                problem = limits.why(ages, stds)
            # age_probs drop a sample as a NaN age does: a head bad on every crop (a width hidden behind a
            # symbolic dimension, fp16 underflow on a GPU) would otherwise load and drop every sample
            if problem is None and probs is not None and not probs_valid(probs).all():
                problem = "age_probs with a non-finite or negative value, or no mass"
        if problem:
            raise ModelError(
                f"{origin}: the model fails its output self-test on the {' + '.join(names)} crop(s): {problem}: "
                "replace the model or export it again"
            )


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:120] if text else type(error).__name__
