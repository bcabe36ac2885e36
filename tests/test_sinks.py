"""Output sinks (edgepose.sinks) and the run loop over them: each sink writes what it
should, a JSON Lines file is complete and valid after close, a video plays back with
every frame, and a window or q-press ends the loop cleanly. No model needed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose import sinks
from edgepose.errors import InputError
from edgepose.sources import Frame, Source
from edgepose.types import FrameResult, Pose

W, H = 160, 120


def pose(x: float, track_id: int = 0) -> Pose:
    kp = np.zeros((33, 5), np.float32)
    kp[:, 0] = np.linspace(x, x + 40, 33)
    kp[:, 1] = np.linspace(20, 100, 33)
    kp[:, 3:] = 1.0
    return Pose(kp, 0.9, track_id=track_id)


def frame(i: int, name: str = "clip.avi") -> Frame:
    """A frame whose grey level encodes its index, so a reader can tell frames apart."""
    return Frame(np.full((H, W, 3), 20 * i + 10, np.uint8), i, 40.0 * i, name)


def result(i: int) -> FrameResult:
    return FrameResult([pose(10.0 + i)], (W, H), 40.0 * i, {"landmark": 1.5}, i == 0)


class FakeSource(Source):
    def __init__(self, kind: str, total: int, fps: float | None = 25.0) -> None:
        self.kind, self.total, self.fps, self.name = kind, total, fps, f"fake {kind}"

    def __iter__(self):
        for i in range(self.total):
            yield frame(i, f"img{i}.png" if self.kind == "image" else self.name)


# -- annotated files ----------------------------------------------------------------------
def test_annotated_sink_is_chosen_by_the_path_and_the_source(tmp_path):
    video = FakeSource("video", 5)
    assert isinstance(sinks.annotated_sink(tmp_path / "a.avi", video), sinks.VideoSink)
    folder = sinks.annotated_sink(tmp_path / "frames", video)
    assert isinstance(folder, sinks.ImageSink) and (tmp_path / "frames").is_dir()
    one = sinks.annotated_sink(tmp_path / "sub" / "one.png", FakeSource("image", 1))
    assert isinstance(one, sinks.ImageSink) and one.single
    with pytest.raises(InputError, match="one image but the source has many frames"):
        sinks.annotated_sink(tmp_path / "one.jpg", FakeSource("image", 3))


def test_folder_of_images_names_files_by_image_or_by_index(tmp_path):
    by_name = sinks.annotated_sink(tmp_path / "images", FakeSource("image", 2))
    by_index = sinks.annotated_sink(tmp_path / "video", FakeSource("video", 2))
    for i in range(2):
        canvas = frame(i).image
        by_name.write(frame(i, f"photo{i}.png"), result(i), canvas)
        by_index.write(frame(i), result(i), canvas)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["photo0.jpg", "photo1.jpg"]
    assert sorted(p.name for p in (tmp_path / "video").iterdir()) == ["000000.jpg", "000001.jpg"]
    assert by_name.written == by_index.written == 2
    image = cv2.imread(str(tmp_path / "video" / "000001.jpg"))
    assert image.shape == (H, W, 3) and abs(float(image.mean()) - 30) < 3


def test_single_image_file_keeps_its_format(tmp_path):
    canvas = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    with sinks.ImageSink(tmp_path / "out.png", single=True) as sink:
        sink.write(frame(0, "in.jpg"), result(0), canvas)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out.png")), canvas)  # lossless
    assert sink.path == tmp_path / "out.png" and sink.written == 1


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_plays_back_every_frame_in_order(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    sink = sinks.VideoSink(path, fps=25.0)
    for i in range(8):
        sink.write(frame(i), result(i), frame(i).image)
    sink.close()
    sink.close()  # twice is harmless
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0, abs=0.1)
    levels = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image.shape == (H, W, 3)
        levels.append(float(image.mean()))
    cap.release()
    assert len(levels) == 8
    assert np.allclose(levels, [20 * i + 10 for i in range(8)], atol=4)


def test_video_without_a_frame_rate_gets_a_default(tmp_path):
    sink = sinks.annotated_sink(tmp_path / "v.avi", FakeSource("video", 2, fps=None))
    assert sink.fps == sinks.DEFAULT_FPS


# -- JSON Lines ---------------------------------------------------------------------------
def test_json_lines_file_is_complete_and_valid_after_close(tmp_path):
    from edgepose.cli.smooth import read_records

    path = tmp_path / "poses.jsonl"
    with sinks.JsonLinesSink(path, "clip.avi") as sink:
        for i in range(5):
            sink.write(frame(i), result(i), None)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and sink.written == 5 and sink.path == path
    for i, line in enumerate(lines):
        rec = json.loads(line)
        assert (rec["source"], rec["frame"], rec["image"]) == ("clip.avi", i, "clip.avi")
        assert rec["timestamp_ms"] == 40.0 * i and rec["image_size"] == [W, H]
        assert rec["stages_ms"] == {"landmark": 1.5}
        [p] = rec["poses"]
        assert p["id"] == 0 and len(p["keypoints"]) == 33 and p["keypoints"][0][0] == 10.0 + i
    assert len(read_records(path)) == 5  # what `edgepose smooth` reads back


def test_json_lines_to_a_stream_leaves_it_open():
    stream = io.StringIO()
    sink = sinks.JsonLinesSink(stream, "camera 0")
    sink.write(frame(0), result(0), None)
    sink.close()
    sink.close()
    assert not stream.closed and sink.path is None
    assert json.loads(stream.getvalue())["source"] == "camera 0"


def test_json_lines_makes_its_folder_as_out_does(tmp_path):
    """--json a/b/poses.jsonl makes a/b, as --out does (it used to fail on a missing folder)."""
    path = tmp_path / "a" / "b" / "poses.jsonl"
    with sinks.JsonLinesSink(path, "x") as sink:
        sink.write(frame(0), result(0), None)
    assert len(path.read_text().splitlines()) == 1
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match=r"could not write .*poses\.jsonl"):
        sinks.JsonLinesSink(tmp_path / "file" / "poses.jsonl", "x")  # a file where a folder must go


def test_json_lines_replace_an_earlier_file_only_when_the_run_ends_or_is_stopped(tmp_path):
    """Written to a temporary file beside it, renamed on close: a run that fails leaves the
    earlier file as it was (not 0 bytes); one stopped by Ctrl-C or a signal after some
    frames leaves those frames, whole; nothing half-written is left behind."""
    path = tmp_path / "poses.jsonl"
    path.write_text('{"earlier": true}\n')
    with pytest.raises(InputError):
        with sinks.JsonLinesSink(path, "clip.avi") as sink:
            sink.write(frame(0), result(0), None)
            assert path.read_text() == '{"earlier": true}\n'  # not truncated while running
            raise InputError("the video broke")
    assert path.read_text() == '{"earlier": true}\n'
    with pytest.raises(KeyboardInterrupt):
        with sinks.JsonLinesSink(path, "clip.avi", mode="video") as sink:
            for i in range(3):
                sink.write(frame(i), result(i), None)
            raise KeyboardInterrupt
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2] and records[0]["mode"] == "video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poses.jsonl"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_json_lines_through_a_symbolic_link_replace_the_file_it_names(tmp_path):
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "poses.jsonl"
    real.write_text("earlier\n")
    (tmp_path / "poses.jsonl").symlink_to(real)
    with sinks.JsonLinesSink(tmp_path / "poses.jsonl", "clip.avi") as sink:
        sink.write(frame(0), result(0), None)
    assert (tmp_path / "poses.jsonl").is_symlink()
    assert json.loads(real.read_text())["frame"] == 0


def test_json_lines_on_a_full_disk_names_the_file(tmp_path):
    """/dev/full fails every write with ENOSPC: the error names the file (a device is
    written directly, never replaced)."""
    import os

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(InputError, match="could not write /dev/full: No space left on device"):
        with sinks.JsonLinesSink("/dev/full", "clip.avi") as sink:
            sink.write(frame(0), result(0), None)
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")


def test_out_with_a_suffix_edgepose_does_not_write_is_refused(tmp_path):
    """--out result.xyz or .webm used to write a folder of JPEGs: now an error, and
    nothing is made; a name ending in a slash is a folder whatever its dots."""
    for name in ("result.xyz", "result.webm"):
        with pytest.raises(InputError, match=rf"{name}: edgepose writes no \.\w+ files"):
            sinks.annotated_sink(tmp_path / name, FakeSource("video", 2))
        assert not (tmp_path / name).exists()
    folder = sinks.annotated_sink(f"{tmp_path}/frames.v2/", FakeSource("video", 2))
    assert isinstance(folder, sinks.ImageSink) and (tmp_path / "frames.v2").is_dir()


def test_video_sink_says_why_it_cannot_write(tmp_path, monkeypatch):
    """The file system's reason before the run (not "try a .avi file"); a codec the
    OpenCV build lacks is named, with .avi offered only for other suffixes."""
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    target = folder / "out.mp4"
    if os.access(folder, os.W_OK):  # root writes anywhere: use sysfs, which nobody may write to
        target = Path("/sys/edgepose-test.mp4")
        try:
            target.open("ab").close()
            target.unlink()
            pytest.skip("no folder here that this user cannot write")
        except OSError:
            pass
    with pytest.raises(InputError, match=r"could not write video .*out\.mp4|edgepose-test\.mp4: Permission denied"):
        sinks.VideoSink(target)
    folder.chmod(0o700)

    class Closed:
        def __init__(self, *args): pass
        def isOpened(self): return False

    monkeypatch.setattr(cv2, "VideoWriter", Closed)
    sink = sinks.VideoSink(tmp_path / "out.mkv")
    assert not (tmp_path / "out.mkv").exists()  # the check leaves no empty file
    with pytest.raises(InputError, match=r"no mp4v encoder for \.mkv files; a \.avi file"):
        sink.write(frame(0), result(0), np.zeros((H, W, 3), np.uint8))


# -- window -------------------------------------------------------------------------------
def test_window_without_a_display_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(sinks.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not sinks.display_available()
    with pytest.raises(InputError, match="needs a display"):
        sinks.WindowSink("edgepose")


# -- the run loop over sinks --------------------------------------------------------------
class Recorder(sinks.Sink):
    def __init__(self, wants_canvas: bool, stop_after: int | None = None) -> None:
        super().__init__()
        self.wants_canvas = wants_canvas
        self.stop_after = stop_after
        self.canvases = []

    def write(self, frame, result, canvas):
        self.canvases.append(canvas)
        self.written += 1
        self.stopped = self.stop_after is not None and self.written >= self.stop_after


class FakePipeline:
    def process(self, image, timestamp_ms=None):
        return FrameResult([pose(10.0)], (W, H), timestamp_ms, {"landmark": 1.0}, True)


def run(sink_list):
    from edgepose.cli.run import run_frames
    from edgepose.profiler import Profiler

    stats = Profiler()
    run_frames(FakeSource("video", 6), FakePipeline(), sink_list, stats, verbose=True)
    return stats


def test_loop_draws_once_only_when_a_sink_shows_images():
    numbers = Recorder(wants_canvas=False)
    stats = run([numbers])
    assert numbers.written == 6 and all(c is None for c in numbers.canvases)
    assert "render" not in stats.stages and stats.frames == 6

    pictures, numbers = Recorder(wants_canvas=True), Recorder(wants_canvas=False)
    stats = run([pictures, numbers])
    assert all(c is not None and c.shape == (H, W, 3) for c in pictures.canvases)
    assert "render" in stats.stages and set(stats.stages) >= {"decode", "landmark"}
    original = frame(0).image
    assert (pictures.canvases[0] != original).any()  # the skeleton was drawn on a copy


def test_loop_ends_when_a_sink_is_stopped():
    window, json_sink = Recorder(wants_canvas=True, stop_after=3), Recorder(wants_canvas=False)
    stats = run([window, json_sink])
    assert window.written == json_sink.written == stats.frames == 3
