"""The bundled model's card describes the file that is bundled: a re-bundle that forgets the card fails here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import onnxruntime as ort
import pytest

from edge.vision.model_contract import read_model_info

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "agecam-mobilenetv2-int8.onnx"
CARD = ROOT / "models" / "MODEL_CARD.md"


def card_row(name: str) -> str:
    """The text of the card's header-table row whose first cell is `name`."""
    for line in CARD.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 2 and cells[1] == name:
            return cells[2]
    raise AssertionError(f"{CARD.name} has no '{name}' row in its header table")


@pytest.fixture(scope="module")
def metadata() -> dict[str, str]:
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    return read_model_info(session, MODEL.name).metadata


def test_the_card_names_the_bundled_files_hash_and_size() -> None:
    digest = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert re.search(r"`([0-9a-f]{64})`", card_row("SHA-256")).group(1) == digest
    assert f"{MODEL.stat().st_size:,} bytes" in card_row("file")


def test_the_card_lists_each_pooled_network_and_the_files_temperature(metadata: dict[str, str]) -> None:
    members = json.loads(metadata["ensemble"])
    for number, member in enumerate(members, start=1):
        row, sha, checkpoint = card_row(f"network {number}"), member["sha256"], member["checkpoint_sha256"]
        assert row.startswith(f"`{sha[:8]}…{sha[-8:]}`: checkpoint")
        assert f"SHA-256 `{checkpoint[:8]}…{checkpoint[-8:]}`" in row
    with pytest.raises(AssertionError):
        card_row(f"network {len(members) + 1}")
    contract = card_row("contract")
    assert f"`agecam.age_temperature` {metadata['age_temperature']} on top" in contract
    own = [f"{member['age_temperature']}" for member in members]
    assert all(temperature in contract for temperature in own)
