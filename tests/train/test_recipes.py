"""The recipe files shipped in recipes/ load and say what their comments say."""

from __future__ import annotations

from pathlib import Path

from train.config import TrainConfig, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_bundled_models_recipe_is_the_default_with_more_views_and_a_longer_stage_2() -> None:
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-gpu.yaml"), {"data": ["d"]})
    default = TrainConfig(data=["d"])
    assert recipe.views == 8
    assert (recipe.stage2.epochs, recipe.stage2.lr) == (20, default.stage2.lr)
    changed = {k for k, v in recipe.model_dump().items() if v != default.model_dump()[k]}
    assert changed == {"name", "views", "stage2"}


def test_the_balanced_candidates_are_the_bundles_recipe_with_balance_and_the_last_epoch_kept() -> None:
    bundle = load_recipe(str(RECIPES / "mobilenet_v2-gpu.yaml"), {"data": ["d"]}).model_dump()
    for name, backbone in (
        ("mobilenet_v2-balanced-gpu", "mobilenet_v2"),
        ("efficientnet_lite0-balanced-gpu", "efficientnet_lite0"),
    ):
        recipe = load_recipe(str(RECIPES / f"{name}.yaml"), {"data": ["d"]})
        assert (recipe.name, recipe.backbone, recipe.balance, recipe.keep) == (name, backbone, 0.5, "last")
        changed = {k for k, v in recipe.model_dump().items() if v != bundle[k]}
        assert changed <= {"name", "backbone", "balance", "keep"}


def test_the_short_balanced_candidate_differs_from_the_balanced_one_only_in_its_stage_2_length() -> None:
    balanced = load_recipe(str(RECIPES / "mobilenet_v2-balanced-gpu.yaml"), {"data": ["d"]}).model_dump()
    short = load_recipe(str(RECIPES / "mobilenet_v2-balanced-12-gpu.yaml"), {"data": ["d"]}).model_dump()
    assert (short["stage2"]["epochs"], balanced["stage2"]["epochs"]) == (12, 20)
    assert {k: v for k, v in short["stage2"].items() if k != "epochs"} == {
        k: v for k, v in balanced["stage2"].items() if k != "epochs"
    }
    assert {k for k, v in short.items() if v != balanced[k]} == {"name", "stage2"}


def test_the_framing_candidate_is_the_bundles_recipe_with_framing_and_the_last_epoch_kept() -> None:
    bundle = load_recipe(str(RECIPES / "mobilenet_v2-gpu.yaml"), {"data": ["d"]}).model_dump()
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-framing-gpu.yaml"), {"data": ["d"]})
    assert (recipe.name, recipe.augment, recipe.keep) == ("mobilenet_v2-framing-gpu", "framing", "last")
    assert {k for k, v in recipe.model_dump().items() if v != bundle[k]} == {"name", "augment", "keep"}


def test_the_motion_candidate_is_the_framing_recipe_with_walking_streaks() -> None:
    framing = load_recipe(str(RECIPES / "mobilenet_v2-framing-gpu.yaml"), {"data": ["d"]}).model_dump()
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-motion-gpu.yaml"), {"data": ["d"]})
    assert (recipe.name, recipe.augment, recipe.keep) == ("mobilenet_v2-motion-gpu", "motion", "last")
    assert {k for k, v in recipe.model_dump().items() if v != framing[k]} == {"name", "augment"}


def test_network_2s_recipe_is_the_balanced_one_with_framing() -> None:
    balanced = load_recipe(str(RECIPES / "mobilenet_v2-balanced-gpu.yaml"), {"data": ["d"]}).model_dump()
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-balanced-framing-gpu.yaml"), {"data": ["d"]})
    assert (recipe.name, recipe.augment, recipe.balance, recipe.keep) == (
        "mobilenet_v2-balanced-framing-gpu",
        "framing",
        0.5,
        "last",
    )
    assert {k for k, v in recipe.model_dump().items() if v != balanced[k]} == {"name", "augment"}


def test_the_balanced_motion_candidate_is_network_2s_recipe_with_walking_streaks() -> None:
    balanced_framing = load_recipe(str(RECIPES / "mobilenet_v2-balanced-framing-gpu.yaml"), {"data": ["d"]})
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-balanced-motion-gpu.yaml"), {"data": ["d"]})
    assert (recipe.name, recipe.augment, recipe.balance, recipe.keep) == (
        "mobilenet_v2-balanced-motion-gpu",
        "motion",
        0.5,
        "last",
    )
    before = balanced_framing.model_dump()
    assert {k for k, v in recipe.model_dump().items() if v != before[k]} == {"name", "augment"}
