"""The age model: an ONNX Runtime session on the best usable execution provider, fed batches of crops.

Its outputs are checked, not trusted (edge.vision.model_outputs): a self-test at load refuses a model
that gives NaN, a value per batch instead of per crop, or ages outside its declared range (exit 4), and
`samples` marks every bad sample of every batch so the pipeline can drop it. Where the model has the
optional `age_probs`, each sample also carries its age distribution with the model's temperature applied."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
from pathlib import Path

import numpy as np

from edge.config import Config
from edge.errors import ModelError, ModelFileError
from edge.vision.batching import PaddedRunner, engine_note, padded_sizes, padding_wanted, tensorrt_options
from edge.vision.files import not_a_file
from edge.vision.model_contract import (
    INPUT_NAME,
    OUTPUT_AGE,
    OUTPUT_PROBS,
    OUTPUT_STD,
    ModelInfo,
    read_model_info,
    temper_probs,
)
from edge.vision.model_outputs import (
    AgeSamples,
    OutputLimits,
    check_probs,
    check_shape,
    first_line,
    probs_valid,
    self_test,
)
from edge.vision.onnx_runtime import ort, require_onnx_runtime

log = logging.getLogger(__name__)


def _provider_options(
    name: str, cache_dir: Path | None, size: int, max_batch: int, padding: str = "auto"
) -> dict[str, str]:
    """TensorRT builds engines slowly: cache them in the state folder and give the batch range."""
    if name != "TensorrtExecutionProvider" or cache_dir is None:
        return {}
    if padding != "off":  # padded batches: one profile per size (edge.vision.batching)
        return tensorrt_options(cache_dir, size, padded_sizes(max_batch))
    shape = f"{size}x{size}x3"
    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_fp16_enable": "True",
        "trt_profile_min_shapes": f"{INPUT_NAME}:1x{shape}",
        "trt_profile_opt_shapes": f"{INPUT_NAME}:{max_batch}x{shape}",
        "trt_profile_max_shapes": f"{INPUT_NAME}:{max_batch}x{shape}",
    }


def _quiet_session(
    model: bytes, providers: list[str], options: list[dict[str, str]], threads: int
) -> ort.InferenceSession:
    """Create a session with ORT's provider fallback silenced: unusable GPU providers are dropped
    quietly, and the one line the caller logs says what was chosen."""
    settings = ort.SessionOptions()
    settings.log_severity_level = 4
    settings.intra_op_num_threads = threads
    # ORT's threads spin after each run by default, taking the cores YuNet needs next; the till runs
    # one small batch per frame, so waking them costs less than the spinning does.
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    previous = logging.getLogger().level
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return ort.InferenceSession(model, settings, providers=providers, provider_options=options)
    finally:
        ort.set_default_logger_severity(2 if previous <= logging.INFO else 3)


class AgeModel:
    """An age model honouring docs/model-contract.md. `samples` (checked) and `predict` (raw, for tools)
    take crops made with `info.crop`."""

    def __init__(
        self,
        path: Path,
        providers: list[str],
        threads: int = 0,
        max_batch: int = 16,
        cache_dir: Path | None = None,
        batch_padding: str = "auto",
        flip: bool = False,
        remedy: str = "check the path given on the command line",
    ) -> None:
        """`remedy` ends the error for a path that names no model file: what to do, where the path came from."""
        require_onnx_runtime()
        check_model_file(path, remedy)
        try:
            data = path.read_bytes()
        except OSError as error:  # another user's 0600 file: a PermissionError traceback ended a reload
            raise ModelFileError(f"age model {path} cannot be read ({error.strerror}): make it readable") from None
        self.path = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.max_batch, self.flip = max_batch, flip
        # Validate on the CPU first: cheap, and a broken file fails with one clear line.
        self.session = self._open(data, ["CPUExecutionProvider"], [{}], threads)
        self.info: ModelInfo = read_model_info(self.session, str(path))
        self.limits = OutputLimits(self.info.age_min, self.info.age_max)
        self.outputs = (OUTPUT_AGE, OUTPUT_STD) + ((OUTPUT_PROBS,) if OUTPUT_PROBS in self.info.outputs else ())
        self.width = int(self.info.age_max - self.info.age_min) + 1  # age_probs columns
        self._self_test(self.session)
        if flip and self.info.flip_tta:  # mirroring again would only double the time
            log.info("age model %s averages each face with its mirror image itself: age_model.flip skipped", path.name)
            self.flip = False
        available = ort.get_available_providers()
        chosen = [name for name in providers if name in available]
        opened, engines = time.perf_counter(), ""
        if chosen and chosen != ["CPUExecutionProvider"]:
            size = self.info.crop.size
            options = [_provider_options(name, cache_dir, size, max_batch, batch_padding) for name in chosen]
            engines = engine_note(options)
            self._use_if_sound(self._open(data, chosen, options, threads))
        self.provider = self.session.get_providers()[0]
        self.runner: PaddedRunner | None = None
        if padding_wanted(batch_padding, self.provider):
            engines = engines if self.provider == "TensorrtExecutionProvider" else ""
            sizes, opening_s = padded_sizes(max_batch), time.perf_counter() - opened
            self.runner = PaddedRunner(self.session, sizes, self.info.crop.size, opening_s, engines, self.outputs)
        skipped = [name for name in providers if name not in self.session.get_providers()]
        note = f" ({', '.join(skipped)} not usable here)" if skipped else ""
        log.info(
            "age model %s [%s, sha256 %s] on %s%s",
            path.name,
            self.info.describe(),
            self.sha256[:12],
            self.provider,
            note,
        )

    def _open(
        self, data: bytes, providers: list[str], options: list[dict[str, str]], threads: int
    ) -> ort.InferenceSession:
        try:
            return _quiet_session(data, providers, options, threads)
        except Exception as error:  # ORT raises its own Fail/InvalidProtobuf/InvalidGraph types
            text = str(error).strip()
            reason = text.splitlines()[0][:160] if text else type(error).__name__
            raise ModelError(f"age model {self.path} cannot be loaded ({reason}): replace the file") from None

    def _self_test(self, session: ort.InferenceSession) -> None:
        def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            outputs = session.run(list(self.outputs), {INPUT_NAME: batch})
            return outputs[0], outputs[1], (outputs[2] if len(outputs) > 2 else None)

        origin = f"age model {self.path}"
        self_test(run, self.limits, self.info.crop.size, self.max_batch, origin, self.width)

    def _use_if_sound(self, session: ort.InferenceSession) -> None:
        """A GPU session whose outputs fail the self-test (fp16 overflow, say) is dropped for the CPU's."""
        try:
            self._self_test(session)
        except ModelError as error:
            log.warning("%s on %s: running on the CPU instead", error, session.get_providers()[0])
            return
        self.session = session

    def _batches(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        return [
            np.stack(crops[start : start + self.max_batch]).astype(np.uint8, copy=False)
            for start in range(0, len(crops), self.max_batch)
        ]

    def predict(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Raw ages and standard deviations (years) for a list of BGR crops, batched, for tools (bench,
        export parity). Raises ModelError when a batch does not give one value per crop."""
        ages, stds, _ = self.predict_with_probs(crops)
        return ages, stds

    def predict_with_probs(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """`predict` plus the raw age_probs (before the model's temperature; None without that output), for
        tools (eval, calibrate). Raises ModelError when a batch's outputs do not fit its crops."""
        ages, stds, probs = (
            [np.zeros(0, np.float32)],
            [np.zeros(0, np.float32)],
            [np.zeros((0, self.width), np.float32)],
        )
        for batch in self._batches(crops):
            age, std, prob = self._run(batch)
            problem = check_shape(age, std, len(batch)) or check_probs(prob, len(batch), self.width)
            if problem:
                raise ModelError(f"age model {self.path}: {problem}: replace the model or export it again")
            ages.append(age)
            stds.append(std)
            probs.append(prob)
        with_probs = OUTPUT_PROBS in self.outputs
        return np.concatenate(ages), np.concatenate(stds), np.concatenate(probs) if with_probs else None

    def samples(self, crops: list[np.ndarray]) -> AgeSamples:
        """Checked samples for the till: a batch that fails or has the wrong shape makes all its samples
        invalid, and so does any non-finite or out-of-range value; nothing here raises. With `flip`, each
        crop's sample is the average of it and its mirror image (test-time augmentation)."""
        if self.flip:
            mirrors = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
            return self._checked(crops + mirrors).mirror_pairs(len(crops))
        return self._checked(crops)

    def _checked(self, crops: list[np.ndarray]) -> AgeSamples:
        parts, problem = [], None
        for batch in self._batches(crops):
            try:
                age, std, probs = self._run(batch)
                wrong = check_shape(age, std, len(batch)) or check_probs(probs, len(batch), self.width)
            except Exception as error:  # ORT's runtime errors: drop this batch, the next may work
                wrong = f"inference failed ({first_line(error)})"
            if wrong:
                age = std = np.full(len(batch), np.nan, np.float32)
                # only for a model with age_probs: a width from metadata ages 0-1e12 does not fit in memory
                probs = np.full((len(batch), self.width), np.nan, np.float32) if OUTPUT_PROBS in self.outputs else None
            problem = problem or wrong or self._why(age, std, probs)
            parts.append((age, std, probs))
        ages = np.concatenate([np.zeros(0, np.float32), *(part[0] for part in parts)])
        stds = np.concatenate([np.zeros(0, np.float32), *(part[1] for part in parts)])
        valid = self.limits.valid(ages, stds)
        probs = None
        if OUTPUT_PROBS in self.outputs:
            raw = np.concatenate([np.zeros((0, self.width), np.float32), *(part[2] for part in parts)])
            valid &= probs_valid(raw)
            probs = np.full(raw.shape, np.nan)
            if valid.any():
                probs[valid] = temper_probs(raw[valid], self.info.age_temperature)
        return AgeSamples(np.where(valid, self.limits.clip(ages), np.nan), stds, valid, problem, probs)

    def _why(self, ages: np.ndarray, stds: np.ndarray, probs: np.ndarray | None) -> str | None:
        """The first bad output of a batch, in words, or None when all are good."""
        if not self.limits.valid(ages, stds).all():
            return self.limits.why(ages, stds)
        if probs is not None and not probs_valid(probs).all():
            return "age_probs with a non-finite or negative value, or no mass"
        return None

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(ages, stds, age_probs or None) for one batch."""
        if self.runner is not None:  # padded to a warmed-up size; the padding rows are cut off here
            outputs = self.runner.run(batch)
        else:
            outputs = self.session.run(list(self.outputs), {INPUT_NAME: batch})
        age, std = np.asarray(outputs[0], np.float32), np.asarray(outputs[1], np.float32)
        return age, std, (np.asarray(outputs[2], np.float32) if len(outputs) > 2 else None)

    def warm_up(self) -> None:
        """With padded batches, run every size once. Call it on the thread that runs the batches: the CUDA
        provider keeps its handles per thread."""
        if self.runner is not None:
            self.runner.warm_up()


def age_model_threads(threads: int) -> int:
    """0 means half the cores: the age model runs on its worker thread beside the detector, and on a
    2-core till one thread each ran faster than both sharing both cores (measured, agecam bench edge)."""
    return threads or max(1, (os.cpu_count() or 2) // 2)


def check_model_file(path: Path, remedy: str) -> None:
    """A ModelFileError, one line naming `path`, what it is instead of a file, and `remedy`; else nothing."""
    if problem := not_a_file(path):
        raise ModelFileError(f"age model {path} {problem}: {remedy}")


def config_remedy(config: Config) -> str:
    """What to do about a configured model path that names no file: only the config can fix it."""
    where = "a config file (--config)" if config.origin == "built-in defaults" else config.origin
    return f"set age_model.path in {where}"


def load_age_model(config: Config) -> AgeModel:
    settings = config.age_model
    return AgeModel(
        config.path_setting("age_model", "path"),
        settings.providers,
        age_model_threads(settings.threads),
        settings.max_batch,
        cache_dir=config.state_dir() / "trt-cache",
        batch_padding=settings.batch_padding,
        flip=settings.flip,
        remedy=config_remedy(config),
    )
