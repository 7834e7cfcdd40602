"""Augmentations on the uint8 BGR crops, deterministic per (seed, photo, view).

Three profiles. `till`: what a till camera does to a face (flips, small shifts and rotations, colour, blur,
JPEG artefacts, low resolution). `domains` adds looks that neither training set has but other photos do
(issue #13: the model overestimated a child-heavy set from another dataset by 4.3 years): grayscale, strong
colour casts, scanner blur, low contrast, heavy compression and small faces upscaled. `framing` gives half
the till's views the framing of a photo cut close around the face: UTKFace's chips are, so their crops are
mostly repeated border pixels, and APPA-REAL's are not, which lets a network tell the datasets apart.
`motion` is `framing` with a third of the views streaked as by a customer walking past the camera: a till
samples faces while they walk in and out, and those samples read years younger (docs/training.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import cv2
import numpy as np

AUGMENT_VERSION = 1  # bump when a profile's augmentations change: cached trunk outputs depend on them
Profile = Literal["till", "domains", "framing", "motion"]
Look = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # one look: (crop, rng) -> crop


def _affine(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = crop.shape[0]
    angle, scale = rng.uniform(-10, 10), rng.uniform(0.93, 1.07)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, size=2) * size
    return cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _colour(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    image = crop.astype(np.float32)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.7, 1.3)  # saturation
    image = (image - image.mean()) * rng.uniform(0.75, 1.25) + image.mean()  # contrast
    image = image * rng.uniform(0.75, 1.25) + rng.uniform(-15, 15, size=3)  # brightness, white balance
    return np.clip(image, 0, 255).astype(np.uint8)


def _resample(crop: np.ndarray, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Down to a fraction of the side and back up: a face seen smaller than the crop."""
    size = crop.shape[0]
    small = max(8, int(rng.uniform(low, high) * size))
    down = cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)


def _jpeg(crop: np.ndarray, rng: np.random.Generator, low: int = 25, high: int = 80) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(low, high))])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else crop


def _grey(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _cast(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A strong per-channel gain (old prints, tungsten or fluorescent light), or a sepia tone."""
    if rng.random() < 0.3:
        sepia = np.array([[0.131, 0.534, 0.272], [0.168, 0.686, 0.349], [0.189, 0.769, 0.393]], np.float32)
        return np.clip(crop.astype(np.float32) @ sepia.T, 0, 255).astype(np.uint8)  # BGR rows of the sepia matrix
    gains = rng.uniform(0.6, 1.4, size=3).astype(np.float32)
    return np.clip(crop.astype(np.float32) * gains, 0, 255).astype(np.uint8)


def _low_contrast(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faded or washed out: contrast down to 35-70 % around a lifted mean."""
    image = crop.astype(np.float32)
    mean = image.mean() * rng.uniform(0.9, 1.3)
    return np.clip((image - image.mean()) * rng.uniform(0.35, 0.7) + mean, 0, 255).astype(np.uint8)


def _scanner(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scanned print: soft focus, then a little sensor noise."""
    out = cv2.GaussianBlur(crop, (0, 0), rng.uniform(1.2, 2.5)).astype(np.float32)
    out += rng.normal(0, rng.uniform(2, 6), size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def tight_framing(crop: np.ndarray, rng: np.random.Generator, low: float = 0.5, high: float = 0.8125) -> np.ndarray:
    """The crop of a photo that ended close around the face: the middle `low`-`high` of the crop's side is kept
    and its border pixels repeat outwards, as `edge.vision.faces.crop_face` repeats them past a photo's edge.
    At the default margin 0.3 that is a photo 0.8-1.3 face sides across; a UTKFace chip is about 0.85 (YuNet's
    box is often larger than the chip)."""
    size = crop.shape[0]
    keep = min(size, max(8, round(rng.uniform(low, high) * size)))
    start = (size - keep) // 2
    end = size - keep - start
    inner = crop[start : start + keep, start : start + keep]
    return cv2.copyMakeBorder(inner, start, end, start, end, cv2.BORDER_REPLICATE)


def walking_blur(crop: np.ndarray, rng: np.random.Generator, low: float = 0.02, high: float = 0.1) -> np.ndarray:
    """A face that moved during the exposure: a straight streak `low`-`high` of the crop's side long, within
    20 degrees of horizontal (customers walk across a till camera's view). The simulated till's walkers
    streak 11 px at 640x480, about 0.05-0.1 of the crop's side by how much of its photo the face fills."""
    length = max(2, round(rng.uniform(low, high) * crop.shape[0]))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D(centre, rng.uniform(-20, 20), 1.0), (length, length))
    return cv2.filter2D(crop, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def _till(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = crop[:, ::-1].copy() if rng.random() < 0.5 else crop
    out = _affine(out, rng)
    if rng.random() < 0.8:
        out = _colour(out, rng)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.25:
        out = _resample(out, rng, 0.25, 0.6)
    if rng.random() < 0.3:
        out = _jpeg(out, rng)
    return out


# The unseen-domain looks, in the order `_domains` applies them (the scan or the camera before the
# compression). benchmarks/domain_shift.py applies each alone to `valid` faces.
DOMAIN_LOOKS: dict[str, Look] = {
    "grey": lambda crop, rng: _grey(crop),
    "cast": _cast,
    "low_contrast": _low_contrast,
    "scanner": _scanner,
    "small": lambda crop, rng: _resample(crop, rng, 0.15, 0.35),
    "heavy_jpeg": lambda crop, rng: _jpeg(crop, rng, 8, 30),
}


def _domains(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The till's view, then at most two unseen-domain looks (so a view is rarely unrecognisable)."""
    out = _till(crop, rng)
    looks = list(DOMAIN_LOOKS.values())
    for look in sorted(rng.permutation(len(looks))[: rng.choice(3, p=[0.3, 0.45, 0.25])]):
        out = looks[look](out, rng)
    return out


def _framing(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The till's view (the `till` profile's own draws), then for half the views a tight framing."""
    out = _till(crop, rng)
    return tight_framing(out, rng) if rng.random() < 0.5 else out


def _motion(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The `framing` profile's view (its own draws), then for a third of the views a walking streak: about the
    share of a simulated till's samples taken while the customer walks."""
    out = _framing(crop, rng)
    return walking_blur(out, rng) if rng.random() < 1 / 3 else out


PROFILES: dict[Profile, Look] = {"till": _till, "domains": _domains, "framing": _framing, "motion": _motion}


def augment(crop: np.ndarray, rng: np.random.Generator, profile: Profile = "till") -> np.ndarray:
    """One random view of a crop under the profile."""
    return PROFILES[profile](crop, rng)


def view(crop: np.ndarray, seed: int, index: int, view_number: int, profile: Profile = "till") -> np.ndarray:
    """View 0 is the clean crop; views 1.. are augmented, the same every run for the same seed."""
    if view_number == 0:
        return crop
    return augment(crop, np.random.default_rng((seed, index, view_number)), profile)
