"""The bundled model's card describes the file that is bundled: a re-bundle that forgets the card fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnxruntime as ort
import pytest

from edge.assets import sha256_of
from edge.vision.model_contract import read_model_info

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "agecam-mobilenetv2-int8.onnx"
CARD = ROOT / "models" / "MODEL_CARD.md"


@pytest.fixture(scope="module")
def rows() -> dict[str, str]:
    """The card's header table, read once: each row's first cell to its second."""
    table = {}
    for line in CARD.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 2:
            table.setdefault(cells[1], cells[2])
    return table


@pytest.fixture(scope="module")
def metadata() -> dict[str, str]:
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    return read_model_info(session, MODEL.name).metadata


def test_the_card_names_the_bundled_files_hash_and_size(rows: dict[str, str]) -> None:
    assert re.search(r"`([0-9a-f]{64})`", rows["SHA-256"]).group(1) == sha256_of(MODEL)
    assert f"{MODEL.stat().st_size:,} bytes" in rows["file"]


def test_the_card_lists_each_pooled_network_and_the_files_temperature(
    rows: dict[str, str], metadata: dict[str, str]
) -> None:
    members = json.loads(metadata["ensemble"])
    for number, member in enumerate(members, start=1):
        row, sha, checkpoint = rows[f"network {number}"], member["sha256"], member["checkpoint_sha256"]
        assert row.startswith(f"`{sha[:8]}…{sha[-8:]}`: checkpoint")
        assert f"SHA-256 `{checkpoint[:8]}…{checkpoint[-8:]}`" in row
    assert f"network {len(members) + 1}" not in rows
    contract = rows["contract"]
    assert f"`agecam.age_temperature` {metadata['age_temperature']} on top" in contract
    assert all(f"{member['age_temperature']}" in contract for member in members)
