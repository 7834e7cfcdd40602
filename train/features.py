"""Trunk outputs for every view of every crop, computed once per run (and cached per dataset): both stages
train on them.

On a CPU the frozen trunk runs in ONNX Runtime (several times faster than eager PyTorch there); on
a GPU it runs in PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import itertools
import json
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from numpy.lib import format as npy_format
from torch import nn
from tqdm import tqdm

from train.augment import Profile, view
from train.datasets import Sample
from train.model import Preprocess


def _ort_runner(trunk: nn.Module, preprocess: Preprocess, size: int, threads: int):
    import onnxruntime as ort

    module = nn.Sequential(copy.deepcopy(preprocess), copy.deepcopy(trunk)).eval()
    buffer = io.BytesIO()
    sample = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (sample,),
            buffer,
            input_names=["face"],
            output_names=["out"],
            dynamic_axes={"face": {0: "n"}},
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"face": batch})[0])


def _torch_runner(trunk: nn.Module, preprocess: Preprocess, device: torch.device):
    module = nn.Sequential(copy.deepcopy(preprocess), trunk).to(device).eval()

    def run(batch: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return module(torch.from_numpy(batch).to(device)).cpu()

    return run


def trunk_outputs(
    trunk: nn.Module,
    preprocess: Preprocess,
    crops: list[np.ndarray],
    views: int,
    seed: int,
    device: torch.device,
    desc: str,
    profile: Profile = "till",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """float16 [len(crops), views, C, H, W] trunk outputs; view 0 is the clean crop, the rest augmented under
    the profile. Written into `out` when given (a slice of a larger tensor: no second copy)."""
    if not crops:
        raise ValueError("no crops to extract features from")
    size = crops[0].shape[0]
    on_cpu = device.type == "cpu"
    if on_cpu:
        run = _ort_runner(trunk, preprocess, size, torch.get_num_threads())
    else:
        run = _torch_runner(trunk, preprocess, device)
    # On a CPU the model needs every core; on a GPU the augmentations are the bottleneck, so spread them.
    batch_size, workers = (32, 1) if on_cpu else (256, min(16, os.cpu_count() or 1))
    jobs = [(i, v) for i in range(len(crops)) for v in range(views)]
    result = out
    with ThreadPoolExecutor(workers) as pool:
        for start in tqdm(range(0, len(jobs), batch_size), desc=desc, unit="batch", leave=False):
            chunk = jobs[start : start + batch_size]
            batch = np.stack(list(pool.map(lambda job: view(crops[job[0]], seed, *job, profile), chunk)))
            out = run(batch).half()
            if result is None:
                result = torch.empty((len(crops), views, *out.shape[1:]), dtype=torch.float16)
            for (i, v), row in zip(chunk, out, strict=True):
                result[i, v] = row
    return result


log = logging.getLogger(__name__)
NPY_HEADERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
READ_BYTES = 1 << 26


def output_shape(trunk: nn.Module, preprocess: Preprocess, size: int, device: torch.device) -> tuple[int, ...]:
    """The trunk's output shape for one crop, [C, H, W]."""
    return tuple(_torch_runner(trunk, preprocess, device)(np.zeros((1, size, size, 3), np.uint8)).shape[1:])


def load_cached(cache_file: Path, out: torch.Tensor) -> bool:
    """Reads cache_file's outputs straight into out; False when there is no usable file (a torn one, from a
    killed run, or one of another shape is removed). No second copy, and no memory map: mapped pages would
    count against the run's memory as well."""
    if not cache_file.is_file():
        return False
    try:
        with cache_file.open("rb") as handle:
            shape, fortran, dtype = NPY_HEADERS[npy_format.read_magic(handle)](handle)
            if shape == tuple(out.shape) and not fortran and dtype == np.float16:
                _read_into(handle, memoryview(out.numpy()).cast("B"))
                return True
    except (OSError, ValueError, KeyError, EOFError):
        pass
    cache_file.unlink(missing_ok=True)
    return False


def _read_into(handle: BinaryIO, target: memoryview) -> None:
    """Fills target in 64 MB reads; a file that ends early (a torn one) raises EOFError."""
    filled = 0
    while filled < len(target):
        got = handle.readinto(target[filled : filled + READ_BYTES])
        if not got:
            raise EOFError(handle.name)
        filled += got


def save_cached(cache_file: Path, outputs: torch.Tensor) -> None:
    """Writes outputs (a slice is saved alone, unlike torch.save) atomically: a killed run leaves no torn file.
    A cache that cannot be written (a full disk, say) costs the next run the time, not this run its result."""
    tmp = cache_file.with_name(cache_file.name + ".tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            np.save(handle, outputs.numpy())
        tmp.replace(cache_file)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning("trunk outputs not cached in %s: %s", cache_file, error)


@dataclass(frozen=True)
class TrainViews:
    """How many views each training photo has, and how they are drawn."""

    count: int
    seed: int
    profile: Profile = "till"


def trunk_outputs_per_dataset(
    trunk: nn.Module,
    preprocess: Preprocess,
    samples: list[Sample],
    crops: list[np.ndarray],
    views: TrainViews,
    device: torch.device,
    cache_dir: Path | None,
    key: dict[str, object],
) -> tuple[torch.Tensor, str]:
    """The training views' trunk outputs, computed and cached one dataset at a time (samples come grouped by
    dataset), so a run with a dataset held out reuses what the run on all of them cached (agecam candidates).
    Every dataset's part is written into one preallocated tensor: joining parts afterwards would hold the
    largest thing in training twice (13 GB at 8 views from block 4). Returns the outputs and the cache's state:
    hit, miss, partial, or off (no cache_dir)."""
    if not crops:
        raise ValueError("no crops to extract features from")
    shape = output_shape(trunk, preprocess, crops[0].shape[0], device)
    result = torch.empty((len(crops), views.count, *shape), dtype=torch.float16)
    hits, start = [], 0
    for dataset, group in itertools.groupby(samples, key=lambda sample: sample.dataset):
        files = [f"{dataset}/{sample.file_name}" for sample in group]
        part, end = result[start : start + len(files)], start + len(files)
        cache_file = None if cache_dir is None else cache_dir / f"{trunk_key({**key, 'files': files})}.npy"
        hit = cache_file is not None and load_cached(cache_file, part)
        if not hit:
            trunk_outputs(
                trunk,
                preprocess,
                crops[start:end],
                views.count,
                views.seed,
                device,
                f"trunk train {dataset}",
                views.profile,
                out=part,
            )
            if cache_file is not None:
                save_cached(cache_file, part)
        hits.append(hit)
        start = end
    state = "off" if cache_dir is None else "hit" if all(hits) else "miss" if not any(hits) else "partial"
    return result, state


def trunk_key(parts: dict[str, object]) -> str:
    """A short hash of everything the trunk outputs depend on (backbone, cut, crops, views, seed)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
