"""The recipe files shipped in recipes/ load and say what their comments say."""

from __future__ import annotations

from pathlib import Path

from train.config import TrainConfig, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_bundled_models_recipe_is_the_default_with_a_longer_stage_2() -> None:
    recipe = load_recipe(str(RECIPES / "mobilenet_v2-e12.yaml"), {"data": ["d"]})
    default = TrainConfig(data=["d"])
    assert (recipe.stage2.epochs, recipe.stage2.lr) == (12, 3e-4)
    changed = {k for k, v in recipe.model_dump().items() if v != default.model_dump()[k]}
    assert changed == {"name", "stage2"}
