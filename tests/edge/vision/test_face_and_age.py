"""The face crop, face quality, per-customer estimate and batched age inference, on real frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import CustomerConfig
from edge.vision.age_model import AgeModel
from edge.vision.customer import CustomerAge, mixture_quantile, weighted_median
from edge.vision.detector import FaceDetector, detect_main_face
from edge.vision.faces import CropSpec, alignment_matrix, crop_face
from edge.vision.model_outputs import AgeSamples
from edge.vision.quality import face_quality, frontal_score

from clips import clip
from onnx_models import brightness_model, expected_age, save


@pytest.fixture(scope="module")
def detector(detector_path):
    return FaceDetector(detector_path, min_face_px=16)


@pytest.fixture(scope="module")
def frame(assets):
    capture = cv2.VideoCapture(str(clip(assets, "face-demographics-walking-and-pause")))
    for _ in range(20):
        ok, image = capture.read()
    assert ok
    return image


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def eyes_in_crop(face, spec):
    matrix = alignment_matrix(face, spec)
    return [matrix @ np.array([*point, 1.0]) for point in face.landmarks[:2]]


@pytest.mark.parametrize("tilt", [0, 20, -20])
def test_crop_levels_the_eyes_and_centres_the_face(detector, frame, tilt):
    image = rotate(frame, tilt)
    faces = detector.detect(image)
    assert len(faces) >= 2  # rotation can push a face at the edge out of the frame
    spec = CropSpec(size=112, margin=0.3)
    for face in faces:
        crop = crop_face(image, face, spec)
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        right, left = eyes_in_crop(face, spec)
        assert abs(right[1] - left[1]) < 0.5, "eyes must be level in the crop"
        assert 30 < right[0] < 56 < left[0] < 82, "eyes either side of the centre"


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two crops in grey."""
    a, b = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float64).ravel() for x in (a, b))
    return float(np.corrcoef(a, b)[0, 1])


def box_crop(image: np.ndarray, face, size: int) -> np.ndarray:
    x, y, w, h = face.box.astype(int)
    return cv2.resize(image[max(0, y) : y + h, max(0, x) : x + w], (size, size))


def test_alignment_undoes_a_tilted_camera(detector, frame):
    """Each face cropped from a frame turned 20 degrees matches its upright crop better when aligned."""
    spec = CropSpec(64, 0.3)
    tilted_frame = rotate(frame, 20)
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 20, 1.0)
    aligned, plain = [], []
    for face in detector.detect(frame):
        moved = matrix @ np.array([*face.center, 1.0])
        tilted = min(detector.detect(tilted_frame), key=lambda f: np.hypot(*(np.array(f.center) - moved)))
        aligned.append(similarity(crop_face(frame, face, spec), crop_face(tilted_frame, tilted, spec)))
        plain.append(similarity(box_crop(frame, face, 64), box_crop(tilted_frame, tilted, 64)))
    assert len(aligned) == 3 and min(aligned) > 0.5
    assert np.mean(aligned) > np.mean(plain) + 0.1


def test_margin_widens_the_view(detector, frame):
    face = detector.detect(frame)[0]
    tight, wide = CropSpec(64, 0.0), CropSpec(64, 0.5)
    eye_gap = [np.linalg.norm(a - b) for a, b in (eyes_in_crop(face, tight), eyes_in_crop(face, wide))]
    assert eye_gap[0] == pytest.approx(eye_gap[1] * 2, rel=1e-3)


def test_main_face_is_found_in_a_tight_portrait(detector, frame):
    face = detector.detect(frame)[0]
    x, y, w, h = face.box.astype(int)
    portrait = frame[max(0, y - h // 5) : y + h + h // 5, max(0, x - w // 5) : x + w + w // 5]
    found = detect_main_face(portrait, detector)
    assert found is not None
    assert found.box[0] == pytest.approx(face.box[0] - max(0, x - w // 5), abs=4)


def test_quality_prefers_a_frontal_face_to_a_turned_one(detector, assets):
    capture = cv2.VideoCapture(str(clip(assets, "head-pose-face-detection-female-and-male")))
    scores = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        scores += [frontal_score(face) for face in detector.detect(image)]
    assert max(scores) > 0.9 and min(scores) < 0.4, "the clip has frontal and turned heads"


def test_quality_falls_with_blur_and_size(detector, frame):
    face = detector.detect(frame)[0]
    crop = crop_face(frame, face, CropSpec(112, 0.3))
    sharp = face_quality(face, crop)
    blurred = face_quality(face, cv2.GaussianBlur(crop, (0, 0), 4))
    assert 0 < blurred < sharp <= 1


def test_weighted_median_and_mixture_interval():
    values, weights = np.array([20.0, 30.0, 31.0, 90.0]), np.array([1.0, 1.0, 1.0, 0.1])
    assert weighted_median(values, weights) == 30.0
    means, stds = np.array([30.0]), np.array([5.0])
    assert mixture_quantile(0.5, means, stds, np.ones(1)) == pytest.approx(30.0, abs=1e-3)
    assert mixture_quantile(0.9, means, stds, np.ones(1)) == pytest.approx(30 + 1.2816 * 5, abs=1e-2)


def test_customer_estimate_is_robust_and_stops_when_stable():
    customer = CustomerAge(CustomerConfig())
    rng = np.random.default_rng(0)
    customer.add(75.0, 3.0, 0.9, now=0.0)  # one wild sample (a glance from behind a shelf)
    now = 0.0
    while customer.wants_sample(now := now + 0.5):
        customer.add(float(rng.normal(24, 1.0)), 3.0, 0.8, now)
    estimate = customer.estimate
    assert 22.5 < estimate.age < 25.5
    assert estimate.low < estimate.age < estimate.high
    assert 3 <= estimate.samples < CustomerConfig().max_samples


def test_each_estimate_carries_the_probability_of_being_under_the_policy_threshold():
    young, unsure = CustomerAge(CustomerConfig(), risk_age=25), CustomerAge(CustomerConfig(), risk_age=25)
    for second in range(3):
        young.add(20.0, 3.0, 0.9, now=second)
        unsure.add(25.0 + (-4, 0, 4)[second], 3.0, 0.9, now=second)
    assert young.estimate.p_under == pytest.approx(0.952, abs=0.01)  # one normal: Phi(5 / 3)
    assert unsure.estimate.p_under == pytest.approx(0.5, abs=0.01), "symmetric samples around 25"
    plain = CustomerAge(CustomerConfig())
    plain.add(20.0, 3.0, 0.9, now=0)
    assert plain.estimate.p_under is None, "no threshold given, no probability"


def test_the_model_distributions_are_pooled_by_quality_and_override_the_normals():
    pooled = CustomerAge(CustomerConfig(), risk_age=25)
    for second, (p_under, quality) in enumerate(((0.9, 0.9), (0.3, 0.3), (0.6, 0.6))):
        pooled.add(30.0, 3.0, quality, now=second, p_under=p_under)  # the normals alone would say ~0.05
    assert pooled.estimate.p_under == pytest.approx((0.81 + 0.09 + 0.36) / 1.8)
    mixed = CustomerAge(CustomerConfig(), risk_age=25)
    mixed.add(30.0, 3.0, 0.9, now=0, p_under=0.9)
    mixed.add(30.0, 3.0, 0.9, now=1)  # a sample without a distribution: the normals for all of them
    assert mixed.estimate.p_under == pytest.approx(0.048, abs=0.01)
    odd = CustomerAge(CustomerConfig(), risk_age=25)
    odd.add(30.0, 3.0, 0.9, now=0, p_under=1.5)  # not a probability: not trusted
    assert odd.estimate.p_under == pytest.approx(0.048, abs=0.01)


def test_low_quality_samples_are_ignored_and_do_not_make_it_stable():
    config = CustomerConfig()
    customer = CustomerAge(config)
    assert not customer.add(40.0, 3.0, config.min_quality / 2, now=0.0)
    for second in range(10):
        customer.add(40.0, 3.0, 0.1, now=second)  # tiny faces: 10 samples weigh only 1.0 in all
    assert customer.wants_sample(20.0), "ten tiny faces must not freeze the estimate"
    for second in range(20, 23):
        customer.add(40.0, 3.0, 0.9, now=second)
    assert not customer.wants_sample(30.0)


def test_a_sample_without_weight_is_ignored_even_with_no_minimum_quality():
    customer = CustomerAge(CustomerConfig(min_quality=0.0))
    assert not customer.add(40.0, 3.0, 0.0, now=0.0), "a profile face has quality 0: it carries no weight"
    assert customer.estimate is None and customer.wants_sample(0.1)
    assert customer.add(40.0, 3.0, 0.5, now=0.1) and customer.estimate.age == 40.0


def test_samples_of_one_customer_are_spaced_in_time():
    config = CustomerConfig(sample_interval_s=0.25)
    customer = CustomerAge(config)
    assert customer.wants_sample(10.0)
    assert not customer.add(30.0, 3.0, 0.0, now=10.0)  # refused for quality: the next frame may try
    assert customer.wants_sample(10.08)
    assert customer.add(30.0, 3.0, 0.9, now=10.08)
    assert not customer.wants_sample(10.16) and not customer.wants_sample(10.32)
    assert customer.wants_sample(10.33)


def test_batched_inference_equals_one_by_one(tiny_model, detector, frame):
    model = AgeModel(tiny_model, ["CPUExecutionProvider"], max_batch=2)
    crops = [crop_face(frame, face, model.info.crop) for face in detector.detect(frame)]
    crops += [np.full((32, 32, 3), level, np.uint8) for level in (0, 128, 255)]
    ages, stds = model.predict(crops)  # 6 crops in batches of 2, 2, 2
    assert ages.shape == stds.shape == (6,)
    single = np.concatenate([model.predict([crop])[0] for crop in crops])
    np.testing.assert_allclose(ages, single, rtol=1e-6)
    np.testing.assert_allclose(ages, [expected_age(crop) for crop in crops], rtol=1e-5)
    assert np.all(stds == 3.0)
    assert model.predict([])[0].shape == (0,)


def test_flip_averages_each_face_with_its_mirror_image(detector, frame, tmp_path):
    one_sided = save(brightness_model(probs=True, left_half=True), tmp_path / "left.onnx")  # not mirror-symmetric
    plain, flipped = (AgeModel(one_sided, ["CPUExecutionProvider"], flip=flip) for flip in (False, True))
    crops = [crop_face(frame, face, plain.info.crop) for face in detector.detect(frame)]
    mirrors = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
    once, mirrored, both = plain.samples(crops), plain.samples(mirrors), flipped.samples(crops)
    assert len(crops) >= 2 and both.valid.all() and not np.allclose(once.ages, mirrored.ages, atol=0.05)
    np.testing.assert_allclose(both.ages, (once.ages + mirrored.ages) / 2, atol=1e-4)
    np.testing.assert_allclose(both.probs, (once.probs + mirrored.probs) / 2, atol=1e-6)
    assert np.all(both.stds >= np.minimum(once.stds, mirrored.stds) - 1e-4)


def test_a_mirror_pair_is_valid_only_when_both_halves_are():
    samples = AgeSamples(np.array([10.0, 20, 14, np.nan]), np.full(4, 2.0), np.array([True, True, True, False]), None)
    pairs = samples.mirror_pairs(2)
    assert pairs.valid.tolist() == [True, False] and pairs.ages[0] == 12.0 and np.isnan(pairs.ages[1])
    assert pairs.stds[0] == pytest.approx(np.sqrt(4 + 4)), "the mixture's spread: each std and the gap"


def test_unusable_providers_fall_back_to_cpu_in_one_line(tiny_model, caplog):
    caplog.set_level("INFO")
    model = AgeModel(tiny_model, ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.session.get_providers()[-1] == "CPUExecutionProvider"
    lines = [record.getMessage() for record in caplog.records if record.name == "edge.vision.age_model"]
    assert len(lines) == 1 and model.provider in lines[0]
