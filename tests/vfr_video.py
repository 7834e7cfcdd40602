"""Variable-frame-rate MP4 files, as a camera or recorder that lowers its frame rate writes them: OpenCV writes
a constant-rate file, then its time-to-sample table (`stts`) is rewritten so that runs of frames last longer.
Only for OpenCV's own `mp4v` files (version-0 boxes, the sample data before the `moov` box)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

TABLE_PATH = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stts"]


def _boxes(data: bytearray, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        yield start, size, kind
        start += size


def _find(data: bytearray, path: list[bytes]) -> list[int]:
    """The offsets of the boxes along `path`, outermost first."""
    found, start, end = [], 0, len(data)
    for kind in path:
        start, size = next((pos, size) for pos, size, name in _boxes(data, start, end) if name == kind)
        found.append(start)
        start, end = start + 8, start + size
    return found


def _add(data: bytearray, offset: int, amount: int) -> None:
    data[offset : offset + 4] = struct.pack(">I", struct.unpack(">I", data[offset : offset + 4])[0] + amount)


def write_vfr(path: Path, runs: list[tuple[list[np.ndarray], float]], fps: float = 12.5) -> Path:
    """An MP4 of each run's frames, each frame of a run lasting `stretch` / fps seconds."""
    height, width = runs[0][0][0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for frames, _ in runs:
        for frame in frames:
            writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    chain = _find(data, TABLE_PATH)
    table = chain[-1]
    delta = struct.unpack(">I", data[table + 20 : table + 24])[0]
    entries = [(len(frames), round(delta * stretch)) for frames, stretch in runs]
    body = struct.pack(">I", len(entries)) + b"".join(struct.pack(">II", *entry) for entry in entries)
    old_size = struct.unpack(">I", data[table : table + 4])[0]
    data[table : table + old_size] = struct.pack(">I4s", 12 + len(body), b"stts") + data[table + 8 : table + 12] + body
    for parent in chain[:-1]:
        _add(data, parent, 12 + len(body) - old_size)
    media = _find(data, [b"moov", b"trak", b"mdia", b"mdhd"])[-1]
    extra = sum(count * length for count, length in entries) - delta * sum(count for count, _ in entries)
    _add(data, media + 24, extra)
    movie = _find(data, [b"moov", b"mvhd"])[-1]
    movie_extra = round(extra * struct.unpack(">I", data[movie + 20 : movie + 24])[0] / _scale(data, media))
    _add(data, movie + 24, movie_extra)  # the movie's, the track's and the edit list's lengths: nothing cuts it
    _add(data, _find(data, [b"moov", b"trak", b"tkhd"])[-1] + 28, movie_extra)
    _add(data, _find(data, [b"moov", b"trak", b"edts", b"elst"])[-1] + 16, movie_extra)
    path.write_bytes(data)
    return path


def _scale(data: bytearray, media: int) -> int:
    return struct.unpack(">I", data[media + 20 : media + 24])[0]


def glitch_stamp(path: Path, frame: int, seconds: float) -> Path:
    """The same file with one frame's presentation time stamp `seconds` late (a glitch in that frame's pts), by
    a composition-offset table (`ctts`); the edit list is lengthened so that the demuxer keeps the frame."""
    data = bytearray(path.read_bytes())
    chain = _find(data, TABLE_PATH)
    media = _find(data, [b"moov", b"trak", b"mdia", b"mdhd"])[-1]
    sizes = _find(data, [*TABLE_PATH[:-1], b"stsz"])[-1]
    count = struct.unpack(">I", data[sizes + 16 : sizes + 20])[0]
    late = round(seconds * _scale(data, media))
    entries = [(n, offset) for n, offset in [(frame, 0), (1, late), (count - frame - 1, 0)] if n]
    body = struct.pack(">I", len(entries)) + b"".join(struct.pack(">II", *entry) for entry in entries)
    box = struct.pack(">I4sI", 12 + len(body), b"ctts", 0) + body
    end = chain[-1] + struct.unpack(">I", data[chain[-1] : chain[-1] + 4])[0]
    data[end:end] = box  # after `stts`; the sample data lies before `moov`, so no chunk offset moves
    for parent in chain[:-1]:
        _add(data, parent, len(box))
    movie = _find(data, [b"moov", b"mvhd"])[-1]
    movie_scale = struct.unpack(">I", data[movie + 20 : movie + 24])[0]
    _add(data, _find(data, [b"moov", b"trak", b"edts", b"elst"])[-1] + 16, round(seconds * movie_scale))
    path.write_bytes(data)
    return path
