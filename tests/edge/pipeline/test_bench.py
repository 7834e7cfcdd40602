"""`agecam bench edge` on a real clip: rounds that alternate decode+detect and the pipeline, reported as JSON.
No timing is asserted (figures go in notes); the report's shape and its counts are."""

from __future__ import annotations

import json

from clips import clip


def test_bench_edge_reports_the_median_of_alternating_rounds(agecam, write_config, tiny_model, assets):
    video = clip(assets, "face-demographics-walking-and-pause")
    config = write_config(detector={"interval": 3})
    args = ["bench", "edge", video, "--model", tiny_model, "--loops", "3", "--min-frames", "50", "--json"]
    result = agecam("--config", config, *args)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    rounds = report["rounds_pipeline_vs_decode_detect"]
    assert len(rounds) == 3 and rounds == sorted(rounds)
    assert report["pipeline_vs_decode_detect"] == rounds[1]
    assert report["clip_frames"] == 41 and report["frames"] == 82, "the whole clip twice: at least 50 frames"
    assert report["pipeline"]["frames"] == report["pipeline_every_face"]["frames"] == 82
    assert report["detection_size"] == [640, 360] and report["detection_interval"] == 3
    assert 1 / 3 <= report["pipeline"]["full_detections_per_frame"] < 1
    assert report["pipeline"]["faces_per_frame"] > 2.5  # three people on nearly every frame
    every = report["pipeline_every_face"]
    assert every["age_inferences_per_frame"] == every["faces_per_frame"]
    assert 0 < report["pipeline"]["age_inferences_per_frame"] < every["age_inferences_per_frame"]


def test_bench_model_compares_padded_batches_with_plain_runs(agecam, write_config, tiny_model, assets):
    video = clip(assets, "face-demographics-walking-and-pause")
    for padding, padded in (("on", True), ("off", False)):
        config = write_config(age_model={"batch_padding": padding})
        result = agecam("--config", config, "bench", "model", tiny_model, "--video", video, "--repeats", "2", "--json")
        assert result.code == 0, result.err
        (report,) = json.loads(result.out)
        assert report["padded"] is padded and report["batch8_ms_per_face"] > 0
        assert ("unpadded_batch8_ms_per_face" in report) is padded
