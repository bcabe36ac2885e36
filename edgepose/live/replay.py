"""A video file served as a live MJPEG stream over HTTP on loopback: a stand-in camera for
tests, benchmarks and demos, that can also misbehave on purpose (close the stream, reset
it, stall, trickle, send garbage) to exercise camera recovery and ``edgepose run``'s exit
on a lost stream.

    >>> server = ReplayServer.from_video("street.avi", fps=50, limit=100).start()
    >>> server.url            # 'http://127.0.0.1:PORT/stream.mjpg'
    >>> server.mode = "stall" # now: connections stay open, no bytes flow; "ok" resumes
    >>> server.kill()         # listening socket and every connection closed (RST)
    >>> server.start()        # back on the same port
    >>> ReplayServer(jpegs, end_after=12, ending="die")  # each connection: 12 frames, then RST

Frames are JPEG-encoded once, up front; each connection plays them from the first, in a
loop, at ``fps``. Standard library and OpenCV only.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import socketserver
import struct
import threading
import time
from typing import Self

import numpy as np

BOUNDARY = "edgeposeframe"
MODES = ("ok", "close", "die", "stall", "trickle", "garbage")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, *args) -> None:  # quiet: tests and benchmarks print their own lines
        pass

    def do_GET(self) -> None:
        replay = self.server.replay
        if self.path.split("?")[0] != "/stream.mjpg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        replay._track(self.connection, True)
        try:
            replay._stream(self.wfile, self.connection)
        except OSError:
            pass  # the client went away, or kill() closed the socket
        finally:
            replay._track(self.connection, False)


class _HttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    replay: ReplayServer


class ReplayServer:
    """Serves ``jpegs`` (encoded frames) at ``fps`` on http://127.0.0.1:PORT/stream.mjpg.

    ``mode``, for every connection from now on: "ok" (frames flow), "close" (the stream
    ends: closing boundary, then FIN), "die" (the connection is reset, RST, as when a
    server process is killed), "stall" (the connection stays open, nothing is sent),
    "trickle" (one more part is started, then a byte every half second: never quiet long
    enough for a client's read timeout, so its read blocks), "garbage" (random bytes, no
    MJPEG any more). Stall, trickle and garbage last while the mode does.
    ``end_after``: each connection then behaves as ``ending`` (a mode other than "ok")
    after that many frames, for good. ``sent`` counts frames sent, ``connections``
    requests served; ``ended`` is set once a connection reached its ending.
    """

    def __init__(self, jpegs: list[bytes], fps: float = 30.0, port: int = 0, *,
                 end_after: int | None = None, ending: str = "close") -> None:
        if not jpegs:
            raise ValueError("no frames to serve")
        if ending not in MODES[1:]:
            raise ValueError(f"ending {ending!r} is not one of {MODES[1:]}")
        self.jpegs = jpegs
        self.fps = fps
        self.port = port
        self.mode = "ok"
        self.end_after, self.ending = end_after, ending
        self.ended = threading.Event()
        self.sent = 0
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._rng = np.random.default_rng(0)

    @classmethod
    def from_video(cls, path: str | os.PathLike, fps: float | None = None, limit: int = 100,
                   scale: float = 1.0, quality: int = 85, port: int = 0, **ending) -> ReplayServer:
        """The first ``limit`` frames of a video file (resized by ``scale``), at ``fps``
        (default: the file's own rate); ``ending``: end_after, ending."""
        import cv2

        from edgepose.sources import read_video

        frames, file_fps = read_video(path, limit)
        jpegs = []
        for image in frames:
            if scale != 1.0:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            jpegs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
        return cls(jpegs, fps or file_fps or 30.0, port, **ending)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> ReplayServer:
        """Listen (again, on the same port after :meth:`kill` or :meth:`stop`)."""
        if self._server is not None:
            return self
        self._server = _HttpServer(("127.0.0.1", self.port), _Handler)
        self._server.replay = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="replay-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and end every stream with an orderly close (FIN)."""
        self._shutdown(abort=False)

    def kill(self) -> None:
        """As a crashed server: stop listening and reset every connection (RST)."""
        self._shutdown(abort=True)

    def close_streams(self) -> None:
        """End the streams now being served (FIN), and keep listening."""
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _shutdown(self, abort: bool) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                if abort:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._open.add(conn)
                self.connections += 1
            else:
                self._open.discard(conn)

    def _stream(self, out, conn: socket.socket) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        i = 0
        while self._server is not None:
            ending = self.end_after is not None and i >= self.end_after
            if ending and not self.ended.is_set():  # end_after=0: ends at once
                self.ended.set()
            mode = self.ending if ending else self.mode
            if mode != "ok":
                if self._misbehave(mode, out, conn, for_good=ending):
                    return
                due = time.monotonic()
                continue
            data = self.jpegs[i % len(self.jpegs)]
            out.write(self._part_head(len(data)) + data + b"\r\n")
            out.flush()
            self.sent += 1
            i += 1
            if i == self.end_after:  # the last frame is out: what comes now is the ending
                self.ended.set()
            due += period
            time.sleep(max(0.0, due - time.monotonic()))
            if due < time.monotonic() - 1.0:  # far behind (a slow reader): do not burst
                due = time.monotonic()

    @staticmethod
    def _part_head(length: int) -> bytes:
        return f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {length}\r\n\r\n".encode("ascii")

    def _misbehave(self, mode: str, out, conn: socket.socket, for_good: bool) -> bool:
        """One turn of ``mode`` on a connection: True when the connection is over.
        ``for_good``: the connection's ending, else :attr:`mode` (which may change)."""
        if mode == "close":
            out.write(f"--{BOUNDARY}--\r\n".encode("ascii"))
            out.flush()
            return True
        if mode == "die":  # SO_LINGER 0: close() sends RST, as the kernel does for a killed process
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return True
        if mode == "garbage":
            out.write(self._rng.integers(0, 256, 65536, dtype=np.uint8).tobytes())
            out.flush()
            time.sleep(0.02)
        elif mode == "trickle":  # a part that never completes, a byte at a time
            jpeg = self.jpegs[0]
            out.write(self._part_head(len(jpeg)))
            out.flush()
            for byte in jpeg[:-1]:
                time.sleep(0.5)
                if self._server is None or not (for_good or self.mode == "trickle"):
                    return True  # the part cannot be finished: the connection is over
                out.write(bytes([byte]))
                out.flush()
        else:  # stall
            time.sleep(0.05)
        return False
