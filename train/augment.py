"""Augmentations for a till camera, on the uint8 BGR crops: flips, small shifts and rotations, colour,
blur, JPEG artefacts and low resolution. Deterministic per (seed, photo, view)."""

from __future__ import annotations

import cv2
import numpy as np

AUGMENT_VERSION = 1  # bump when the augmentations change: cached trunk outputs depend on them


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


def _low_res(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = crop.shape[0]
    small = int(rng.uniform(0.25, 0.6) * size)
    down = cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)


def _jpeg(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 80))])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else crop


def augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random till-camera view of a crop."""
    out = crop[:, ::-1].copy() if rng.random() < 0.5 else crop
    out = _affine(out, rng)
    if rng.random() < 0.8:
        out = _colour(out, rng)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.25:
        out = _low_res(out, rng)
    if rng.random() < 0.3:
        out = _jpeg(out, rng)
    return out


def view(crop: np.ndarray, seed: int, index: int, view_number: int) -> np.ndarray:
    """View 0 is the clean crop; views 1.. are augmented, the same every run for the same seed."""
    if view_number == 0:
        return crop
    return augment(crop, np.random.default_rng((seed, index, view_number)))
