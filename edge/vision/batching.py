"""Fixed batch sizes for GPU execution providers (`age_model.batch_padding`).

The CUDA provider sets itself up for every new input shape (and thread) on its first run, and TensorRT
needs an optimisation profile for it: on an H100 the till's age stage took 130-215 ms per face against
1.2 ms in `agecam bench model`, which warms each batch size up first. So on a GPU each batch is padded
to one of a few sizes (1, 2, 4, 8, ... up to `max_batch`), every size is run once when the model opens
(on the inference thread, whose CUDA handles the runs then use), and each size's input buffer and
outputs are bound once (IO binding), so a run only copies the crops in and the ages out. Padded rows
are blank crops whose outputs are cut off before anything reads them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.vision.model_contract import INPUT_NAME, OUTPUT_AGE, OUTPUT_STD
from edge.vision.onnx_runtime import ort

if TYPE_CHECKING:  # edge.vision.onnx_runtime holds the one import of ONNX Runtime (None without an extra)
    import onnxruntime

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def padded_sizes(max_batch: int) -> tuple[int, ...]:
    """Powers of two below max_batch, then max_batch itself: 16 gives (1, 2, 4, 8, 16)."""
    sizes = [1 << power for power in range(max_batch.bit_length()) if 1 << power < max_batch]
    return (*sizes, max_batch)


def padding_wanted(setting: str, provider: str) -> bool:
    """`auto` pads on the GPU providers only: on the CPU a new shape costs nothing and padding would."""
    return setting == "on" or (setting == "auto" and provider in GPU_PROVIDERS)


def tensorrt_options(cache_dir: Path, crop_px: int, sizes: tuple[int, ...]) -> dict[str, str]:
    """One optimisation profile per padded size, and the engines cached in a folder per set of sizes
    (the engine holds its profiles, so other sizes need other engines)."""
    shapes = ",".join(f"{INPUT_NAME}:{size}x{crop_px}x{crop_px}x3" for size in sizes)
    folder = cache_dir / f"batch-{'-'.join(map(str, sizes))}-{crop_px}px"
    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(folder),
        "trt_fp16_enable": "True",
        "trt_profile_min_shapes": shapes,
        "trt_profile_opt_shapes": shapes,
        "trt_profile_max_shapes": shapes,
    }


class PaddedRunner:
    """Runs a session on batches padded to `sizes`, through one IO binding per size."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        sizes: tuple[int, ...],
        crop_px: int,
        opening_s: float = 0.0,
        note: str = "",
        outputs: tuple[str, ...] = (OUTPUT_AGE, OUTPUT_STD),
    ) -> None:
        self.session, self.sizes, self.crop_px, self.outputs = session, sizes, crop_px, outputs
        self.opening_s, self.note = opening_s, note  # for the warm-up's log line
        self.device = "cuda" if session.get_providers()[0] in GPU_PROVIDERS else "cpu"
        self._bound: dict[int, tuple[onnxruntime.IOBinding, onnxruntime.OrtValue]] = {}

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """The outputs (ages, standard deviations, and age_probs when bound) of the batch's rows (at most the
        largest size), padding cut off."""
        rows = len(batch)
        size = next(size for size in self.sizes if size >= rows)
        padded = np.zeros((size, *batch.shape[1:]), np.uint8)
        padded[:rows] = batch
        binding, face = self._binding(size)
        face.update_inplace(padded)
        self.session.run_with_iobinding(binding)
        return tuple(output[:rows] for output in binding.copy_outputs_to_cpu())

    def warm_up(self) -> None:
        """Run every size once (binding it), and log how long opening the session and warming up took: on
        TensorRT's first start that is the engine build."""
        start = time.perf_counter()
        for size in self.sizes:
            self.run(np.zeros((size, self.crop_px, self.crop_px, 3), np.uint8))
        log.info(
            "age model on %s: session opened in %.1f s, batch sizes %s warmed up in %.1f s%s",
            self.session.get_providers()[0],
            self.opening_s,
            ",".join(map(str, self.sizes)),
            time.perf_counter() - start,
            self.note,
        )

    def _binding(self, size: int) -> tuple[onnxruntime.IOBinding, onnxruntime.OrtValue]:
        if size not in self._bound:
            face = ort.OrtValue.ortvalue_from_shape_and_type(
                (size, self.crop_px, self.crop_px, 3), np.uint8, self.device, 0
            )
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, face)
            for name in self.outputs:
                binding.bind_output(name, self.device)
            self._bound[size] = binding, face
        return self._bound[size]


def engine_note(options: list[dict[str, str]]) -> str:
    """For the log line, taken before the session opens: whether TensorRT's engines are about to be built
    (the slow first start) or come from the cache."""
    folders = [Path(o["trt_engine_cache_path"]) for o in options if "trt_engine_cache_path" in o]
    if not folders:
        return ""
    cached = any(folders[0].glob("*.engine"))
    return f"; TensorRT engines {'loaded from' if cached else 'built and cached in'} {folders[0]}"
