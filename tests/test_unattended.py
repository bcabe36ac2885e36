"""`edgepose run` left alone (a kiosk, a systemd service), on loopback only:

- a live stream that is lost (closed, reset, stalled, garbage) ends the run with exit
  code 3 and one line on stderr, within a bounded time, after saving what was done;
- SIGTERM, SIGINT and SIGHUP stop a run cleanly: exit 0, the summary, every processed
  frame in the JSON Lines, the .mp4 playable with exactly those frames (each frame of the
  clip carries its index as a bar code, read back frame by frame), no false warning;
- the sd_notify protocol, read from a real unix datagram socket: READY=1 after the first
  frame, WATCHDOG=1 pings from the frame loop at half of WATCHDOG_USEC, STOPPING=1 at the
  end; and pings stop while the loop has no frame to process (a stalled source), which is
  what makes systemd restart a hung service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, STREET, need
from live_helpers import NotifySocket

from edgepose.errors import InputError
from edgepose.live.replay import ReplayServer
from edgepose.sources import Frame, Source
from edgepose.stopping import StopSignals
from edgepose.unattended import StallGuard

CLIP_FRAMES = 100
SIZE = (320, 180)
BITS, CELL = 8, 16  # the frame index as 8 black/white squares along the top edge
RUN = [sys.executable, "-m", "edgepose", "run"]
FAST = ["--threads", "1"]


# -- fixtures -----------------------------------------------------------------------------
def stamp(image: np.ndarray, index: int) -> None:
    for bit in range(BITS):
        on = (index >> bit) & 1
        image[:CELL, bit * CELL:(bit + 1) * CELL] = 255 if on else 0


def read_stamp(image: np.ndarray) -> int:
    cells = [image[2:CELL - 2, bit * CELL + 2:(bit + 1) * CELL - 2].mean() for bit in range(BITS)]
    return sum(1 << bit for bit, value in enumerate(cells) if value > 127)


@pytest.fixture(scope="module")
def stamped_clip(tmp_path_factory) -> Path:
    """100 frames of the street video at 320x180, each with its index stamped on it."""
    cap = cv2.VideoCapture(str(need(STREET)))
    path = tmp_path_factory.mktemp("stamped_clip") / "stamped.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, SIZE)
    for i in range(CLIP_FRAMES):
        ok, frame = cap.read()
        assert ok, "the street video is shorter than expected"
        frame = cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)
        stamp(frame, i)
        writer.write(frame)
    writer.release()
    cap.release()
    return path


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    """10 frames of the street video, 320x180, as JPEG."""
    return ReplayServer.from_video(need(STREET), limit=10, scale=0.25).jpegs


def loopback(jpegs, frames: int | None, ending: str = "close") -> ReplayServer:
    """The loopback MJPEG server (edgepose.live.replay) at 25 fps: each connection gets
    ``frames`` frames (None: for ever), then ends as ``ending`` says."""
    return ReplayServer(jpegs, fps=25, end_after=frames, ending=ending)


@pytest.fixture
def notify_socket():
    with NotifySocket() as sock:
        yield sock


def start(args, env=None) -> subprocess.Popen:
    return subprocess.Popen([*RUN, *map(str, args), *FAST], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def frames_done(fields: dict[str, str]) -> int:
    """The frame count of a STATUS line ("12 frame(s), 24.0 FPS")."""
    return int(fields.get("STATUS", "0 ").split()[0]) if "WATCHDOG" in fields else 0


def nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def json_frames(path: Path) -> list[int]:
    return [json.loads(line)["frame"] for line in path.read_text().splitlines()]


def summary_frames(stdout: str) -> int:
    head = next(line for line in stdout.splitlines() if line.startswith("edgepose "))
    return int(head.split(": ", 1)[1].split()[0])


# -- a lost stream ------------------------------------------------------------------------
@pytest.mark.parametrize("ending", ["close", "die", "stall", "trickle", "garbage"])
def test_a_lost_stream_exits_3_with_one_line_and_keeps_what_was_done(jpegs, tmp_path, ending):
    """It used to end with exit code 0 and no message (systemd's Restart=on-failure never
    restarted it). A stall is detected by the run's own timeout, also where OpenCV's read
    would block for good (trickle: a byte every half second)."""
    out = tmp_path / "poses.jsonl"
    with loopback(jpegs, 12, ending) as stream:
        began = time.monotonic()
        proc = start([stream.url, "--json", out, "--stall-timeout", "1"])
        stdout, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - began
    lines = nonblank(stderr)
    assert proc.returncode == 3 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"edgepose: error: {stream.url}: ") and "run again" in lines[0]
    expected = "no frame for 1 s after" if ending in ("stall", "trickle") else "the stream ended after"
    assert expected in lines[0]
    n = summary_frames(stdout)
    assert 1 <= n <= 12 and json_frames(out) == list(range(n))
    if ending != "die":  # a reset may drop what the client had not read yet
        assert n == 12
    assert took < 60  # a stall no longer blocks: 1 s timeout + start-up


class Blocking(Source):
    """A live source that sends ``frames`` frames, then blocks in its read (as OpenCV can on
    RTSP) until released, or fails with ``error``."""

    kind, name = "stream", "blocking"

    def __init__(self, frames: int = 0, error: Exception | None = None) -> None:
        self.frames, self.error = frames, error
        self.release, self.closed = threading.Event(), False

    def __iter__(self):
        for i in range(self.frames):
            yield Frame(np.zeros((4, 4, 3), np.uint8), i, float(i), self.name)
        if self.error is not None:
            raise self.error
        self.release.wait()

    def close(self) -> None:
        self.closed = True


def test_stall_guard_ends_a_read_that_blocks():
    source = Blocking(frames=3)
    guard = StallGuard(source, timeout=0.3)
    began = time.monotonic()
    assert [f.index for f in guard] == [0, 1, 2]
    assert 0.3 <= time.monotonic() - began < 5
    assert guard.lost == "no frame for 0.3 s after 3 frame(s): the stream stalled"
    guard.close()  # the read is still blocked: the source is left to the process's end
    assert not source.closed
    source.release.set()
    guard.reader.join(5)
    guard.close()
    assert source.closed


def test_stall_guard_ends_at_once_on_a_stop():
    stop = StopSignals()
    source = Blocking()
    guard = StallGuard(source, timeout=30, stop=stop)
    threading.Timer(0.2, stop.request).start()
    began = time.monotonic()
    assert list(guard) == [] and guard.lost is None
    assert time.monotonic() - began < 5
    source.release.set()
    guard.close()
    assert source.closed


def test_stall_guard_raises_an_error_before_the_first_frame_and_reports_one_after():
    with pytest.raises(InputError, match="no frame could be read"):
        list(StallGuard(Blocking(error=InputError("no frame could be read")), timeout=5))
    guard = StallGuard(Blocking(frames=2, error=RuntimeError("camera unplugged")), timeout=5)
    assert len(list(guard)) == 2
    assert guard.lost == "the stream failed after 2 frame(s): camera unplugged"


def test_a_killed_live_run_keeps_every_line_and_restarts_add_to_the_file(jpegs, tmp_path, notify_socket):
    """For a camera or stream, --json is appended to a line at a time: a run killed
    outright (the watchdog's SIGABRT, SIGKILL, power) keeps what it wrote, a line it cut
    short is removed at the next start, and a service's restarts add to one file (it
    used to be a hidden temporary file, lost on a kill and replaced on each restart)."""
    poses = tmp_path / "poses.jsonl"
    with loopback(jpegs, None) as stream:
        proc = start([stream.url, "--json", poses], env={"NOTIFY_SOCKET": notify_socket.name,
                                                          "WATCHDOG_USEC": "100000"})
        try:
            done = frames_done(notify_socket.wait_for(lambda f: frames_done(f) >= 5, proc=proc))
            proc.kill()
            proc.communicate(timeout=60)
        finally:
            proc.kill()
    lines = poses.read_text().splitlines()
    whole = [json.loads(line) for line in lines[:-1]]  # the last one may be cut short
    assert [r["frame"] for r in whole] == list(range(len(whole))) and len(lines) >= done
    with poses.open("a") as file:
        file.write('{"source": "cut short by a ki')  # as a kill mid-line leaves it
    with loopback(jpegs, 6, "close") as stream:
        proc = start([stream.url, "--json", poses])
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    records = [json.loads(line) for line in poses.read_text().splitlines()]  # whole lines only
    frames = [r["frame"] for r in records]
    restart = len(frames) - 6
    assert restart >= len(whole) and frames[restart:] == list(range(6))
    assert frames[:restart] == list(range(restart)) and f"wrote: {poses}" in stdout


# -- signals ------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_mid_run_stops_cleanly(stamped_clip, tmp_path, notify_socket, signum):
    """SIGTERM/SIGHUP used to leave an .mp4 with no index and lose the last frames of
    JSON; SIGINT exited 1 with a false "truncated" warning and a frame missing."""
    video, poses = tmp_path / "annotated.mp4", tmp_path / "poses.jsonl"
    proc = start([stamped_clip, "--out", video, "--json", poses],
                 env={"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "100000"})
    try:
        notify_socket.wait_for(lambda f: frames_done(f) >= 5, proc=proc)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    n = summary_frames(stdout)
    stopped = f"edgepose: interrupted by {signal.Signals(signum).name}: stopped after {n} frame(s)"
    assert nonblank(stderr) == [stopped]
    assert 5 <= n < CLIP_FRAMES, "the signal came after the stamped_clip's end: the test proves nothing"
    assert "people:" in stdout and f"wrote: {video}, {poses}" in stdout
    records = [json.loads(line) for line in poses.read_text().splitlines()]  # whole lines
    assert [r["frame"] for r in records] == list(range(n))
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened(), "the .mp4 was not finalised"
    stamps = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape[:2] == (SIZE[1], SIZE[0])
        stamps.append(read_stamp(image))
    cap.release()
    assert stamps == list(range(n))  # every rendered frame, in order, none missing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "poses.jsonl"]
    assert list(notify_socket.messages[-1][1]) == ["STOPPING", "STATUS"]


def test_a_stop_is_not_held_by_a_stalled_read(jpegs, tmp_path, notify_socket):
    """SIGTERM while the stream sends nothing: the run stops at once (exit 0), not when
    the 30 s stall timeout ends."""
    poses = tmp_path / "poses.jsonl"
    with loopback(jpegs, 8, "stall") as stream:
        proc = start([stream.url, "--json", poses, "--stall-timeout", "30"],
                     env={"NOTIFY_SOCKET": notify_socket.name})
        try:
            notify_socket.wait_for(lambda f: "READY" in f, proc=proc)
            assert stream.ended.wait(30)
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=60)
            took = time.monotonic() - sent
        finally:
            proc.kill()
    assert proc.returncode == 0 and took < 10, (took, stderr)
    assert json_frames(poses) == list(range(summary_frames(stdout)))


# -- systemd's notify protocol ------------------------------------------------------------
def test_ready_watchdog_pings_and_stopping_reach_systemd(stamped_clip, notify_socket):
    began = time.monotonic()
    proc = start([stamped_clip], env={"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "200000"})
    _, stderr = proc.communicate(timeout=180)
    took = time.monotonic() - began
    assert proc.returncode == 0, stderr
    messages = [m for _, m in notify_socket.messages]
    assert messages[0]["READY"] == "1" and messages[0]["STATUS"].startswith("1 frame(s)")
    assert messages[-1]["STOPPING"] == "1"
    assert messages[-1]["STATUS"] == f"{CLIP_FRAMES} frame(s); ended: source"
    pings = [frames_done(m) for m in messages if m.get("WATCHDOG") == "1"]
    assert len(pings) >= 2 and pings == sorted(pings) and pings[-1] <= CLIP_FRAMES, messages
    # rate-limited to one per 0.1 s (half of WATCHDOG_USEC; the exact limit is unit-tested)
    assert len(pings) <= took / 0.1 + 1


def test_the_watchdog_stops_pinging_while_the_loop_has_no_frame(jpegs, notify_socket):
    """A source whose read blocks stands for a hung loop: no frame processed, no ping, so
    systemd (WatchdogSec) would kill and restart the service. The pings come from the
    loop, not from a timer thread that would keep a hung process looking alive."""
    with loopback(jpegs, 8, "trickle") as stream:
        proc = start([stream.url, "--json", "-", "--stall-timeout", "30"],
                     env={"NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "100000",
                          "PYTHONUNBUFFERED": "1"})
        try:
            lines = [proc.stdout.readline() for _ in range(8)]  # each frame's JSON, as it comes
            assert [json.loads(line)["frame"] for line in lines] == list(range(8))
            assert stream.ended.is_set()
            time.sleep(0.3)  # the last frame's ping is out
            quiet_from = time.monotonic()
            time.sleep(2.0)  # 20 ping intervals
            assert proc.poll() is None, "the run ended: the stall timeout did not hold"
            late = [m for t, m in notify_socket.messages if t > quiet_from]
            assert late == [], late
            assert any(m.get("WATCHDOG") == "1" for _, m in notify_socket.messages)
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert notify_socket.messages[-1][1]["STOPPING"] == "1"


# -- memory over a long run ---------------------------------------------------------------
def test_the_run_profiler_holds_bounded_memory_however_long_the_run():
    """It kept every frame's stage times in Python lists: 0.28 MB per 1,000 frames (28 MB
    per 100,000 frames, measured), hundreds of MB a day for a kiosk. Now a window of the
    last ``window_frames`` frames, exact up to it; a stage a frame skipped counts as 0."""
    from edgepose.profiler import Profiler

    stats = Profiler(window_frames=1000)
    for i in range(5000):
        stats.add({"landmark": float(i % 10), **({"detector": 5.0} if i % 100 == 0 else {})})
    assert all(len(w.values()) == 1000 and w.values().nbytes == 4000 for w in stats.stages.values())
    s = stats.summary()
    assert s["frames"] == 5000 and s["stages_ms"]["landmark"]["mean"] == 4.5
    assert s["stages_ms"]["detector"]["count"] == 1000 and s["stages_ms"]["detector"]["mean"] == 0.05
    short = Profiler()
    for i in range(10):  # exact while the run is shorter than the window
        short.add({"decode": 1.0, **({"render": 2.0} if i >= 5 else {})})
    assert short.summary()["stages_ms"]["render"] == {
        "count": 10, "mean": 1.0, "std": 1.0, "min": 0.0, "p50": 1.0, "p90": 2.0, "p99": 2.0, "max": 2.0}
