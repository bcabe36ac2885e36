"""A loopback MJPEG-over-HTTP server for tests: JPEG frames (e.g. from the street clip) sent
as ``multipart/x-mixed-replace``, as IP cameras and ``mjpg-streamer`` do, on 127.0.0.1
only. After ``frames`` frames it ends the way it is told to:

- ``close``: ends the response and closes the connection (a server that stops cleanly);
- ``die``: resets the connection (RST, as when the server process is killed);
- ``stall``: keeps the connection open and sends nothing more;
- ``garbage``: sends random bytes instead of frames;
- ``trickle``: starts one more frame, then sends a byte every half second, for ever (the
  connection never goes quiet long enough for OpenCV's read timeout: its read blocks);
- ``loop``: never ends (the frames again and again).

Use as a context manager; ``url`` is the stream's address."""

from __future__ import annotations

import http.server
import socket
import struct
import threading
import time

import numpy as np

BOUNDARY = b"edgeposeframe"
ENDINGS = ("close", "die", "stall", "garbage", "trickle", "loop")


class LoopbackStream:
    def __init__(self, jpegs: list[bytes], frames: int, ending: str = "close", fps: float = 25.0) -> None:
        if ending not in ENDINGS:
            raise ValueError(f"ending {ending!r} is not one of {ENDINGS}")
        self.jpegs, self.frames, self.ending, self.fps = jpegs, frames, ending, fps
        self.sent = 0
        self.finished = threading.Event()  # set once the ending happened
        self._release = threading.Event()  # frees a stalled handler at shutdown
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                stream._serve(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        out = handler.wfile
        i = 0
        try:
            while self.ending == "loop" or i < self.frames:
                jpeg = self.jpegs[i % len(self.jpegs)]
                out.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                          + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                out.flush()
                i += 1
                self.sent = i
                if self._release.is_set():
                    return
                time.sleep(1.0 / self.fps)
            self._end(handler)
        except OSError:  # the client went away
            pass
        finally:
            self.finished.set()

    def _end(self, handler) -> None:
        out = handler.wfile
        if self.ending == "close":
            out.write(b"--" + BOUNDARY + b"--\r\n")
            out.flush()
            handler.close_connection = True
        elif self.ending == "die":
            # SO_LINGER 0: close() sends RST, as the kernel does for a killed process
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        elif self.ending == "stall":
            self.finished.set()
            self._release.wait()
        elif self.ending == "trickle":
            jpeg = self.jpegs[0]
            out.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                      + f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
            out.flush()
            self.finished.set()
            for byte in jpeg:
                if self._release.wait(0.5):
                    break
                out.write(bytes([byte]))
                out.flush()
        elif self.ending == "garbage":
            rng = np.random.default_rng(0)
            self.finished.set()
            while not self._release.is_set():
                out.write(rng.integers(0, 256, 65536, dtype=np.uint8).tobytes())
                out.flush()
                time.sleep(0.02)


def street_jpegs(video, count: int = 20, width: int = 320) -> list[bytes]:
    """``count`` frames of a video, shrunk to ``width`` pixels wide, as JPEG bytes."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    jpegs = []
    try:
        while len(jpegs) < count:
            ok, image = cap.read()
            if not ok:
                break
            h, w = image.shape[:2]
            image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
            jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
    finally:
        cap.release()
    if not jpegs:
        raise ValueError(f"{video}: no frame could be read")
    return jpegs
