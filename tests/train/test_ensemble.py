"""`agecam ensemble`: exported models in one ONNX file that the till loads as one model. Its age_probs is the
mean of the members' tempered age_probs, its age the mean of their ages; with --flip each member also scores
the mirror images, exactly as the till's own flip does. Models that cannot share a crop are refused in one
line with nothing written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge.errors import EXIT_EXPORT
from edge.vision.age_model import AgeModel
from edge.vision.model_contract import CONTRACT_VERSION, metadata_props, temper_probs
from export.ensemble import ensemble_models
from export.exporter import export_checkpoint
from export.members import cut_members

from onnx_models import brightness_model, save


def _member(
    folder: Path, name: str, offset: float = 5.0, temperature: float | None = None, size: int = 32, opset: int = 17
) -> Path:
    """The brightness model with its age offset moved (a second, different member), a stored temperature, and
    another standard opset if asked (16 reads the same graph)."""
    extra = {} if temperature is None else {"age_temperature": str(temperature)}
    props = metadata_props(size, 0.3, 0, 100, backbone=name, precision="fp32", **extra)
    model = brightness_model(size=size, probs=True, metadata=props)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == "offset":
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(np.array(offset, np.float32), "offset"))
    model.opset_import[0].version = opset
    return save(model, folder / f"{name}.onnx")


def _real_crops(tiny_appa: Path, size: int) -> list[np.ndarray]:
    photos = sorted((tiny_appa / "images").iterdir())[:12]
    return [cv2.resize(cv2.imread(str(photo), cv2.IMREAD_COLOR), (size, size)) for photo in photos]


def test_the_ensemble_is_the_mean_of_its_tempered_members(
    run_cli, tiny_appa: Path, tiny_utk: Path, small_utk: Path, tmp_path: Path, capsys
) -> None:
    young = _member(tmp_path, "young", offset=5.0)
    older = _member(tmp_path, "older", offset=25.0, temperature=2.0)
    out = tmp_path / "pair.onnx"
    assert run_cli(["ensemble", str(young), str(older), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [member["file"] for member in report["members"]] == ["young.onnx", "older.onnx"]
    assert report["members"][1]["age_temperature"] == 2.0

    crops = _real_crops(tiny_appa, 32)
    members = [AgeModel(path, ["CPUExecutionProvider"]) for path in (young, older)]
    pooled = np.mean([temper_probs(m.predict_with_probs(crops)[2], m.info.age_temperature) for m in members], axis=0)
    till = AgeModel(out, ["CPUExecutionProvider"])
    ages, spreads, probs = till.predict_with_probs(crops)
    np.testing.assert_allclose(probs, pooled, atol=1e-6)
    young_ages, older_ages = (m.predict_with_probs(crops)[0] for m in members)
    np.testing.assert_allclose(ages, (young_ages + older_ages) / 2, atol=1e-3)  # a temperature moves no age
    assert np.all((ages > young_ages + 5) & (ages < older_ages - 5)), "the pool lies between its members"
    assert np.all(spreads > 9), "two members 20 years apart make a wide pool (each alone is 3 years wide)"
    assert till.info.metadata["backbone"] == "young + older" and till.info.age_temperature == 1.0
    assert till.info.metadata["code_version"].startswith("0.") and "checkpoint_sha256" not in till.info.metadata

    assert till.info.flip_tta is False and till.info.metadata["contract_version"] == CONTRACT_VERSION
    argv = ["calibrate", str(out), "--data", str(tiny_appa), str(tiny_utk), str(small_utk)]
    assert run_cli([*argv, "--cache-dir", str(tmp_path / "crops")]) == 0, "the documented next step runs on it"
    assert AgeModel(out, ["CPUExecutionProvider"]).info.age_temperature != 1.0


@pytest.mark.parametrize("problem", ["crop_size", "no_age_probs", "opset", "one_model", "tiny_temperature"])
def test_models_that_cannot_be_pooled_are_refused_in_one_line(run_cli, tmp_path: Path, capsys, problem: str) -> None:
    first = _member(tmp_path, "first")
    second = {
        "crop_size": lambda: _member(tmp_path, "second", size=48),
        "no_age_probs": lambda: save(brightness_model(), tmp_path / "second.onnx"),
        "opset": lambda: _member(tmp_path, "second", opset=16),
        "one_model": lambda: None,
        "tiny_temperature": lambda: _member(tmp_path, "second", temperature=1e-300),  # the till takes it
    }[problem]()
    models = [str(first)] + ([str(second)] if second else [])
    out = tmp_path / "pair.onnx"
    assert run_cli(["ensemble", *models, "--out", str(out)]) == EXIT_EXPORT
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    expected = {
        "crop_size": ["second.onnx", "input_size"],
        "no_age_probs": ["second.onnx", "age_probs"],
        "opset": ["first.onnx 17", "second.onnx 16"],
        "tiny_temperature": ["second.onnx", "age_temperature=1e-300", "agecam calibrate"],
    }
    assert all(word in line for word in expected.get(problem, ["at least two"]))
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_ensemble_of_int8_exports_keeps_every_member_graph(tiny_appa: Path, tmp_path: Path) -> None:
    """The bundled file's first int8 network twice over: quantised graphs merge, the pool of a model with
    itself is the model (tempered), and a renamed or lost member node would change the numbers."""
    bundled = Path(__file__).resolve().parents[2] / "models" / "agecam-mobilenetv2-int8.onnx"
    network = Path(cut_members(bundled, tmp_path)["members"][0]["out"])
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(network.read_bytes())
    out = tmp_path / "twice.onnx"
    ensemble_models([network, copy], out)
    alone, twice = AgeModel(network, ["CPUExecutionProvider"]), AgeModel(out, ["CPUExecutionProvider"])
    crops = _real_crops(tiny_appa, 224)
    expected = temper_probs(alone.predict_with_probs(crops)[2], alone.info.age_temperature)
    np.testing.assert_allclose(twice.predict_with_probs(crops)[2], expected, atol=1e-5)
    np.testing.assert_allclose(twice.predict_with_probs(crops)[0], alone.predict_with_probs(crops)[0], atol=1e-3)
    assert len(onnx.load(str(out)).graph.initializer) > len(onnx.load(str(network)).graph.initializer)


def test_a_pool_is_not_pooled_again(run_cli, tmp_path: Path, capsys) -> None:
    """A pool's age_probs are tempered, so an age read off them would move (children 0.6 years older, measured
    with the bundled file as a member): it is refused in one line that names the way round."""
    pair = tmp_path / "pair.onnx"
    ensemble_models([_member(tmp_path, "young"), _member(tmp_path, "older", offset=25.0, temperature=2.0)], pair)
    out = tmp_path / "nested.onnx"
    assert run_cli(["ensemble", str(pair), str(_member(tmp_path, "third")), "--out", str(out)]) == EXIT_EXPORT
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "pair.onnx" in line and "agecam members" in line
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_int8(checkpoint: Path, tiny_appa: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny trained model exported int8 through the exporter: a real network, not mirror-symmetric."""
    out = tmp_path_factory.mktemp("tiny-int8") / "tiny-int8.onnx"
    export_checkpoint(checkpoint, out, "int8", [str(tiny_appa)], parity_crops=12, calibration_crops=12)
    return out


def test_flip_in_the_file_is_the_tills_own_flip_and_is_not_applied_twice(
    run_cli, tiny_int8: Path, tiny_appa: Path, tmp_path: Path, capsys
) -> None:
    """A trained int8 model with --flip: the till's samples from the file equal those of the plain model with
    age_model.flip, and the till skips its own flip on such a file."""
    out = tmp_path / "mirrored.onnx"
    assert run_cli(["ensemble", str(tiny_int8), "--flip", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["flip_tta"] is True
    plain = AgeModel(tiny_int8, ["CPUExecutionProvider"])
    crops = _real_crops(tiny_appa, plain.info.crop.size)
    tills_flip = AgeModel(tiny_int8, ["CPUExecutionProvider"], flip=True).samples(crops)
    mirrored = AgeModel(out, ["CPUExecutionProvider"], flip=True)
    assert mirrored.flip is False and mirrored.info.flip_tta is True
    in_file = mirrored.samples(crops)
    np.testing.assert_allclose(in_file.ages, tills_flip.ages, atol=1e-3)
    np.testing.assert_allclose(in_file.stds, tills_flip.stds, atol=1e-3)
    np.testing.assert_allclose(in_file.probs, tills_flip.probs, atol=1e-6)
    assert np.abs(in_file.ages - plain.samples(crops).ages).max() > 0.01, "the mirror images changed something"
    assert run_cli(["ensemble", str(out), "--flip", "--out", str(tmp_path / "twice.onnx")]) == EXIT_EXPORT
    assert "flip_tta" in capsys.readouterr().out


def _at_opset_18(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph for ONNX opset 18, where ReduceMean takes its axes as an input."""
    for node in model.graph.node:
        if node.op_type == "ReduceMean":
            axes = next(attribute for attribute in node.attribute if attribute.name == "axes")
            name = f"{node.output[0]}_axes"
            model.graph.initializer.append(numpy_helper.from_array(np.array(axes.ints, np.int64), name))
            node.input.append(name)
            node.attribute.remove(axes)
    model.opset_import[0].version = 18
    onnx.checker.check_model(model)
    return model


def test_flip_in_the_file_at_opset_18_is_the_tills_flip(tiny_appa: Path, tmp_path: Path) -> None:
    """A one-sided test model (not mirror-symmetric) at opset 18: the in-file mean of each crop and its mirror
    uses that opset's ReduceMean, and still equals the till's own flip."""
    one_sided = save(_at_opset_18(brightness_model(probs=True, left_half=True)), tmp_path / "one-sided.onnx")
    out = tmp_path / "mirrored.onnx"
    ensemble_models([one_sided], out, flip=True)
    crops = _real_crops(tiny_appa, 32)
    tills_flip = AgeModel(one_sided, ["CPUExecutionProvider"], flip=True).samples(crops)
    in_file = AgeModel(out, ["CPUExecutionProvider"]).samples(crops)
    np.testing.assert_allclose(in_file.ages, tills_flip.ages, atol=1e-4)
    np.testing.assert_allclose(in_file.probs, tills_flip.probs, atol=1e-6)
    plain = AgeModel(one_sided, ["CPUExecutionProvider"]).samples(crops)
    assert np.abs(in_file.ages - plain.ages).max() > 0.05, "the mirror images changed something"


def test_members_cut_from_a_pool_score_as_they_did_before_it(run_cli, tiny_appa: Path, tmp_path: Path, capsys) -> None:
    """`agecam members`: each network of a pool comes back out with its own temperature and scores every crop
    exactly as the file it was pooled from."""
    young = _member(tmp_path, "young", offset=5.0)
    older = _member(tmp_path, "older", offset=25.0, temperature=2.0)
    pool = tmp_path / "pair.onnx"
    ensemble_models([young, older], pool)
    cut = tmp_path / "cut"
    cut.mkdir()
    assert run_cli(["members", str(pool), "--out", str(cut)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [Path(member["out"]).name for member in report["members"]] == ["young.onnx", "older.onnx"]
    crops = _real_crops(tiny_appa, 32)
    for original in (young, older):
        before = AgeModel(original, ["CPUExecutionProvider"])
        after = AgeModel(cut / original.name, ["CPUExecutionProvider"])
        (ages, spreads, probs), (cut_ages, cut_spreads, cut_probs) = (
            model.predict_with_probs(crops) for model in (before, after)
        )
        np.testing.assert_allclose(cut_probs, probs, atol=1e-6)
        # The cut reads age and age_std off age_probs, as every export does; the test model writes its own.
        np.testing.assert_allclose(cut_ages, ages, atol=1e-3)
        np.testing.assert_allclose(cut_spreads, spreads, atol=1e-3)
        assert after.info.age_temperature == before.info.age_temperature
        assert after.info.metadata["backbone"] == original.stem
        assert json.loads(after.info.metadata["cut_from"])["file"] == "pair.onnx"


def test_the_bundled_files_members_pool_back_to_the_same_file(tiny_appa: Path, tmp_path: Path) -> None:
    """The bundled int8 pool taken apart and pooled again with the same flip: the same numbers, so a member
    cut from it can be pooled with a new network."""
    bundled = Path(__file__).resolve().parents[2] / "models" / "agecam-mobilenetv2-int8.onnx"
    original = AgeModel(bundled, ["CPUExecutionProvider"])
    members = [Path(member["out"]) for member in cut_members(bundled, tmp_path)["members"]]
    recorded = json.loads(original.info.metadata["ensemble"])
    assert len(members) == len(recorded) >= 2
    cut = [AgeModel(path, ["CPUExecutionProvider"]) for path in members]
    assert [model.info.age_temperature for model in cut] == [origin["age_temperature"] for origin in recorded]
    assert all(model.info.flip_tta is False for model in cut), "the mirror images were the pool's"
    again = tmp_path / "again.onnx"
    ensemble_models(members, again, flip=original.info.flip_tta)
    crops = _real_crops(tiny_appa, 224)
    for was, now in zip(
        original.predict_with_probs(crops),
        AgeModel(again, ["CPUExecutionProvider"]).predict_with_probs(crops),
        strict=True,
    ):
        np.testing.assert_allclose(now, was, atol=1e-5)
    assert "cut_from" not in AgeModel(again, ["CPUExecutionProvider"]).info.metadata, "a member's, not the pool's"
    ages = [model.predict_with_probs(crops)[0] for model in cut]
    for first, second in itertools.combinations(ages, 2):
        assert np.abs(first - second).max() > 0.5, "different networks came out"


def test_a_pool_whose_second_member_fails_its_check_leaves_no_member_written(run_cli, tmp_path: Path, capsys) -> None:
    """A pool whose record gives its second member a temperature the till refuses: before, the first member was
    written and the command then ended with exit 10, half done, naming a temporary file that no longer existed."""
    pool = tmp_path / "pair.onnx"
    ensemble_models([_member(tmp_path, "young"), _member(tmp_path, "older", offset=25.0)], pool)
    model = onnx.load(pool)
    props = {prop.key: prop.value for prop in model.metadata_props}
    origins = json.loads(props["agecam.ensemble"])
    origins[1]["age_temperature"] = -3
    props["agecam.ensemble"] = json.dumps(origins)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, pool)
    cut = tmp_path / "cut"
    cut.mkdir()
    assert run_cli(["members", str(pool), "--out", str(cut)]) == EXIT_EXPORT
    assert not list(cut.iterdir())
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "age_temperature=-3" in line and str(cut / "older.onnx") in line
    assert ".agecam-" not in line


def test_a_file_that_is_no_pool_has_no_members(run_cli, tmp_path: Path, capsys) -> None:
    single = _member(tmp_path, "single")
    cut = tmp_path / "cut"
    cut.mkdir()
    assert run_cli(["members", str(single), "--out", str(cut)]) == EXIT_EXPORT
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "single.onnx" in line and "agecam.ensemble" in line
    assert not list(cut.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder no one can write in")
def test_a_folder_that_cannot_be_written_is_one_line_and_exit_10(run_cli, tmp_path: Path, capsys) -> None:
    # /proc: a folder that exists but takes no file, for root too (a read-only mount behaves the same).
    members = [str(_member(tmp_path, "young")), str(_member(tmp_path, "older", offset=25.0))]
    assert run_cli(["ensemble", *members, "--out", "/proc/agecam-pool.onnx"]) == EXIT_EXPORT
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "/proc/agecam-pool.onnx" in line and "writable folder" in line


@pytest.mark.parametrize("command", ["ensemble", "members"])
def test_a_missing_model_is_sent_back_to_the_command_line_not_to_the_config(agecam, tmp_path: Path, command) -> None:
    """The real CLI said 'age model X not found: set age_model.path in the config: only till-ready models can
    be ensembled' of a path typed on its command line: two remedies, and neither the one to take."""
    gone, out = tmp_path / "gone.onnx", tmp_path / "out"
    out.mkdir()
    arguments = {
        "ensemble": [gone, _member(tmp_path, "first"), "--out", out / "pool.onnx"],
        "members": [gone, "--out", out],
    }[command]
    result = agecam(command, *arguments)
    remedy = {
        "ensemble": "check the MODEL.onnx paths given to agecam ensemble",
        "members": "give an ONNX file written by agecam ensemble",
    }[command]
    assert result.code == EXIT_EXPORT and result.err.strip() == f"agecam: error: age model {gone} not found: {remedy}"
    assert not list(out.iterdir())
