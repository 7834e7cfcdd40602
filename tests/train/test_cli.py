"""User mistakes end with one line and a documented exit code; data describe writes its report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from train.backbones import build_blocks
from train.errors import TrainError

from onnx_models import brightness_model, save

ROOT = Path(__file__).resolve().parents[2]


def test_train_on_missing_folder_is_exit_8(
    run_cli, assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    code = run_cli(["train", "--data", str(tmp_path / "nope"), "--runs-dir", str(runs), "--name", "first"])
    out = capsys.readouterr().out
    assert code == 8 and out.count("\n") == 1 and "nope" in out
    assert not (runs / "first").exists(), "a run that failed on its data leaves nothing behind"


def test_bad_recipe_is_exit_9(run_cli, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("stage1: {epochs: -1, lr: 0.001}\n")
    assert run_cli(["train", "--recipe", str(recipe), "--data", str(tmp_path)]) == 9
    assert "stage1.epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("age_min: 50\nage_max: 10\n", "age_min (50) must be below age_max (10)"),
        ("age_min: 30\nage_max: 30\n", "age_min (30) must be below age_max (30)"),
        ("age_max: 1000\n", "age_max"),
        ("device: gpu0\n", "device"),
        ("cut: -3\n", "cut"),
    ],
)
def test_recipe_values_that_would_fail_mid_run_are_exit_9(
    run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture, setting: str, named: str
) -> None:
    # Each used to pass validation and end in a traceback (or a model the till refuses) after the crops.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(setting)
    argv = ["train", "--recipe", str(recipe), "--data", str(tiny_appa), "--runs-dir", str(tmp_path / "runs")]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 9
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and named in out and str(recipe) in out


def test_a_cuda_device_without_a_gpu_is_exit_9(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["train", "--device", "cuda", "--data", str(tiny_appa), "--runs-dir", str(tmp_path / "runs")]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 9
    assert "no CUDA GPU" in capsys.readouterr().out


def test_eval_missing_model_is_exit_9(run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli(["eval", "--model", str(tmp_path / "m.pt"), "--data", str(tiny_appa)]) == 9
    assert "m.pt" in capsys.readouterr().out


def test_eval_not_a_checkpoint_is_exit_9(run_cli, tiny_appa: Path, tmp_path: Path) -> None:
    fake = tmp_path / "m.pt"
    fake.write_bytes(b"junk")
    assert run_cli(["eval", "--model", str(fake), "--data", str(tiny_appa)]) == 9


def test_missing_weights_offline_names_the_file(assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):  # no network, whatever the machine
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    with pytest.raises(TrainError) as error:
        build_blocks("resnet50", pretrained=True)
    assert "resnet50-" in str(error.value) and str(tmp_path) in str(error.value)


def test_describe_writes_report(run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report"
    assert run_cli(["data", "describe", str(tiny_appa), "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "| train | 24 |" in summary and "| valid | 12 |" in summary
    for name in ("age_histogram.png", f"contact_sheet-{tiny_appa.name}.png", "bad_rows.csv"):
        assert (out / name).stat().st_size > 0
    assert "Dataset summary" in capsys.readouterr().out


def test_eval_writes_under_the_current_folder_not_beside_the_model(
    run_cli, tiny_appa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bundled = ROOT / "models" / "agecam-mobilenetv2-int8.onnx"
    before = sorted((ROOT / "models").iterdir())
    monkeypatch.chdir(tmp_path)
    argv = ["eval", "--model", str(bundled), "--data", str(tiny_appa), "--cache-dir", str(tmp_path / "crops")]
    assert run_cli(argv) == 0
    report = Path("runs") / f"eval-agecam-mobilenetv2-int8-{tiny_appa.name}-valid"
    assert (tmp_path / report / "metrics.json").is_file()
    assert capsys.readouterr().out.count(f"report: {report}") == 1
    assert sorted((ROOT / "models").iterdir()) == before


def test_eval_says_how_many_label_rows_it_left_out(
    run_cli, tiny_appa: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A labels file with a missing image, a text file named .jpg and an age of 150: before, the printed report
    read as a clean score of the rows left, the skipped ones only in metrics.json and bad_rows.csv."""
    data = tmp_path / "odd"
    shutil.copytree(tiny_appa, data)
    (data / "images" / "note.jpg").write_text("not a photo")
    labels = (data / "labels.csv").read_text()
    first = labels.splitlines()[1].split(",")[0]
    extra = f"gone.jpg,30,valid\nnote.jpg,30,valid\n{first}x,150,valid\n"
    (data / "labels.csv").write_text(labels + extra)
    argv = ["eval", "--model", str(tiny_model), "--data", str(data), "--out", str(tmp_path / "report")]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "3 rows left out" in first_line and "bad_rows.csv" in first_line
    assert len((tmp_path / "report" / "bad_rows.csv").read_text().splitlines()) == 4


def test_an_eval_into_an_earlier_reports_folder_leaves_none_of_its_plots(
    run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A model with age_probs, then one without, into one --out: before, the first model's reliability.png stayed
    beside the second one's metrics.json, read as its calibration."""
    out, cache = tmp_path / "report", ["--cache-dir", str(tmp_path / "crops")]
    (out / "notes.txt").parent.mkdir()
    (out / "notes.txt").write_text("mine")
    for name, probs in (("with-probs", True), ("plain", False)):
        model = save(brightness_model(probs=probs), tmp_path / f"{name}.onnx")
        assert run_cli(["eval", "--model", str(model), "--data", str(tiny_appa), "--out", str(out), *cache]) == 0
    assert capsys.readouterr().out.count("report: ") == 2
    assert not (out / "reliability.png").exists()
    assert json.loads((out / "metrics.json").read_text())["model"].endswith("plain.onnx")
    assert (out / "notes.txt").read_text() == "mine", "files that are not the report's stay"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder no one can write in")
def test_report_folders_that_cannot_be_written_are_exit_6(
    run_cli, tiny_appa: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # /proc takes no folder, for root too (a read-only mount behaves the same); each used to end in a traceback.
    assert run_cli(["data", "describe", str(tiny_appa), "--out", "/proc/agecam-report"]) == 6
    assert capsys.readouterr().out.count("\n") == 1
    runs = ["--runs-dir", "/proc/agecam-runs", "--cache-dir", str(tmp_path / "crops")]
    assert run_cli(["train", "--data", str(tiny_appa), *runs, "--epochs1", "1", "--crop-size", "64"]) == 6
    assert "/proc/agecam-runs" in capsys.readouterr().out.splitlines()[-1]
