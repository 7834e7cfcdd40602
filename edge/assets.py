"""Downloadable assets (the YuNet detector, sample clips): a manifest of public URLs pinned by SHA-256,
kept in $AGECAM_ASSETS (default ~/.cache/agecam) in the layout models/NAME, videos/NAME."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edge.errors import AssetError

MANIFEST = Path(__file__).with_name("assets.json")
DETECTOR_ASSET = "models/face_detection_yunet_2026may.onnx"
DEMO_CLIP = "videos/face-demographics-walking-and-pause.gif"


@dataclass(frozen=True)
class Asset:
    name: str
    url: str
    sha256: str
    size: int


def manifest() -> dict[str, Asset]:
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["assets"]
    return {name: Asset(name, entry["url"], entry["sha256"], entry["size"]) for name, entry in entries.items()}


def assets_dir() -> Path:
    return Path(os.environ.get("AGECAM_ASSETS") or Path.home() / ".cache" / "agecam").expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def status(asset: Asset, folder: Path) -> str:
    """'ok', 'missing', 'bad hash' (a partial or corrupt file) or 'unreadable' (another user's 0600 file)."""
    path = folder / asset.name
    if not path.is_file():
        return "missing"
    try:
        return "ok" if path.stat().st_size == asset.size and sha256_of(path) == asset.sha256 else "bad hash"
    except OSError:  # a PermissionError here ended `agecam run` and `assets list` in a traceback
        return "unreadable"


_FIX = {
    "missing": "is missing",
    "bad hash": "has a bad hash (a partial or corrupt download)",
    "unreadable": "cannot be read by this user: make it readable (chmod a+r), or",
}


def verified_path(name: str) -> Path:
    """The path of an asset that is present and has the pinned hash, or an AssetError saying what to do."""
    asset = manifest()[name]
    path = assets_dir() / name
    state = status(asset, assets_dir())
    if state != "ok":
        fix = _FIX[state] + ("" if state == "unreadable" else ":")
        raise AssetError(f"asset {path} {fix} run 'agecam assets fetch' (AGECAM_ASSETS={assets_dir()})")
    return path


def _temporary_beside(target: Path, folder: Path) -> tuple[int, str]:
    """A new file in the target's folder, made first: an assets folder that cannot be written (a file in the
    way, another user's folder) ended `agecam assets fetch` in a traceback."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as error:
        raise AssetError(
            f"cannot write into {target.parent} ({error.strerror}): make the assets folder {folder} writable by "
            "this user, or point AGECAM_ASSETS at another folder"
        ) from None


def download(asset: Asset, folder: Path) -> None:
    """Download to a temporary file beside the target, check the hash, then move it into place."""
    target = folder / asset.name
    handle, temporary = _temporary_beside(target, folder)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(asset.url, timeout=60) as response:
            while block := response.read(1 << 20):
                out.write(block)
        actual = sha256_of(Path(temporary))
        if actual != asset.sha256:
            raise AssetError(f"refused {asset.url}: SHA-256 {actual} does not match the pinned {asset.sha256}")
        # mkstemp's 0600 would keep the file from every other user: systemd/install.sh fetches as root for
        # the service's own user. The assets are public files.
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    # A connection dropped inside a chunked reply raises http.client.IncompleteRead, which is no OSError.
    except (OSError, http.client.HTTPException) as error:
        raise AssetError(
            f"cannot download {asset.url} to {target} ({error}): check the network and the folder, or, on a "
            f"machine without network, copy the assets (models/, videos/) into {folder} or point AGECAM_ASSETS "
            "at a folder that has them"
        ) from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def fetch(folder: Path) -> dict[str, str]:
    """Download what is missing or fails its hash; returns each asset's outcome."""
    outcomes = {}
    for asset in manifest().values():
        state = status(asset, folder)
        if state != "ok":
            download(asset, folder)
            state = "downloaded" if state == "missing" else f"replaced ({state})"
        outcomes[asset.name] = state
    return outcomes
