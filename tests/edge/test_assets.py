"""Assets: pinned hashes, verified downloads (through file:// URLs, so no network), refusal of bad files."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from edge.assets import DETECTOR_ASSET, Asset, download, fetch, manifest, sha256_of, status, verified_path
from edge.errors import AssetError


def test_manifest_pins_the_shared_files(assets):
    for asset in manifest().values():
        assert status(asset, assets) == "ok", asset.name
        assert asset.url.startswith("https://")


def test_download_verifies_and_places_the_file(tmp_path, assets):
    source = assets / DETECTOR_ASSET
    asset = Asset(DETECTOR_ASSET, source.as_uri(), sha256_of(source), source.stat().st_size)
    download(asset, tmp_path / "cache")
    assert sha256_of(tmp_path / "cache" / DETECTOR_ASSET) == asset.sha256


def test_download_with_the_wrong_hash_is_refused_and_leaves_nothing(tmp_path, assets):
    source = assets / DETECTOR_ASSET
    asset = Asset(DETECTOR_ASSET, source.as_uri(), "0" * 64, source.stat().st_size)
    with pytest.raises(AssetError, match="does not match the pinned"):
        download(asset, tmp_path / "cache")
    assert list((tmp_path / "cache").rglob("*.onnx*")) == []


def test_unreachable_url_is_a_clear_error(tmp_path):
    asset = Asset("videos/x.gif", (tmp_path / "absent.gif").as_uri(), "0" * 64, 1)
    with pytest.raises(AssetError, match="cannot download") as error:
        download(asset, tmp_path / "cache")
    assert f"into {tmp_path / 'cache'} or point AGECAM_ASSETS at a folder" in str(error.value)


def test_fetch_keeps_good_files_and_list_reports_them(agecam, assets, monkeypatch):
    assert set(fetch(assets).values()) == {"ok"}
    monkeypatch.setenv("AGECAM_ASSETS", str(assets))
    result = agecam("assets", "list")
    assert result.code == 0 and result.out.count("ok") == len(manifest())


def test_tampered_asset_is_reported_and_not_used(agecam, tmp_path, assets, monkeypatch):
    shutil.copytree(assets / "models", tmp_path / "models")
    (tmp_path / DETECTOR_ASSET).chmod(0o644)
    (tmp_path / DETECTOR_ASSET).write_bytes(b"evil" * 100)
    monkeypatch.setenv("AGECAM_ASSETS", str(tmp_path))
    with pytest.raises(AssetError, match="bad hash"):
        verified_path(DETECTOR_ASSET)
    result = agecam("assets", "list")
    assert result.code == 7 and "bad hash" in result.out and "missing" in result.out


def test_a_download_cut_off_mid_chunk_is_a_clear_error(tmp_path):
    """http.client.IncompleteRead is no OSError: it ended `agecam assets fetch` with a traceback (exit 1)."""
    server = socket.create_server(("127.0.0.1", 0))

    def cut_off() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"x" * 100)

    thread = threading.Thread(target=cut_off, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/yunet.onnx"
    try:
        with pytest.raises(AssetError, match="cannot download"):
            download(Asset(DETECTOR_ASSET, url, "0" * 64, 1024), tmp_path / "cache")
    finally:
        thread.join(10)
        server.close()
    assert list((tmp_path / "cache").rglob("*.onnx*")) == []
