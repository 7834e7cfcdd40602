"""A real MJPEG-over-HTTP camera stream (multipart/x-mixed-replace, as many IP cameras serve it) on 127.0.0.1,
sending a clip's frames as JPEGs at a chosen rate. OpenCV reports 25 fps for such a stream whatever its rate."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2


def jpeg_frames(video: Path) -> list[bytes]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while (read := capture.read())[0]:
        frames.append(cv2.imencode(".jpg", read[1])[1].tobytes())
    return frames


def _serve(connection: socket.socket, frames: list[bytes], period_s: float, stop: threading.Event) -> None:
    with contextlib.suppress(OSError), connection:
        connection.recv(65536)
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\n\r\n")
        index = 0
        while not stop.is_set():
            jpeg = frames[index % len(frames)]
            part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
            connection.sendall(part + jpeg + b"\r\n")
            index += 1
            stop.wait(period_s)


@contextlib.contextmanager
def mjpeg_stream(video: Path, fps: float) -> Iterator[str]:
    """The stream's URL while the block runs; each connection gets the clip from its start, looping."""
    frames, stop = jpeg_frames(video), threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                threading.Thread(target=_serve, args=(connection, frames, 1 / fps, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/video.mjpg"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        time.sleep(0.05)
