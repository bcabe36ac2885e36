"""The edgepose command as a user meets it: real runs, and bad input that must end in one
clear line and a non-zero exit, never a traceback or a hang."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import IMAGES, MODELS, ROOT, STREET, edgepose, need


def bad_inputs(tmp):
    corrupt = tmp / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 20)
    empty = tmp / "empty"
    empty.mkdir()
    junk_model = tmp / "junk.tflite"
    junk_model.write_bytes(b"definitely not a flatbuffer" * 50)
    truncated_mp4 = tmp / "truncated.mp4"
    truncated_mp4.write_bytes(need(STREET.parent / "pedestrians_960x540_5fps.mp4").read_bytes()[:60_000])
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    return {
        "missing file": ([tmp / "nope.jpg"], "does not exist"),
        "corrupt image": ([corrupt], "could not be decoded"),
        "empty folder": ([empty], "has no images"),
        "truncated video": ([truncated_mp4], "could not be opened as a video"),
        "unreadable camera": (["9"], "camera 9 could not be opened"),
        "non-model file": ([image, "--model", junk_model], "not a TFLite model"),
        "wrong model": ([image, "--model", MODELS / "pose_detection.tflite"], "expected one float32 input"),
        "unknown model": ([image, "--model", "huge"], "unknown landmark model"),
        "bad option": ([image, "--max-people", "0"], "max_people must be a whole number >= 1"),
        "delegate missing": ([image, "--delegate", tmp / "libedgetpu.so.1"], "does not exist"),
    }


CASES = ["missing file", "corrupt image", "empty folder", "truncated video", "unreadable camera",
         "non-model file", "wrong model", "unknown model", "bad option", "delegate missing"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_line(case, tmp_path):
    args, expected = bad_inputs(tmp_path)[case]
    code, out, err = edgepose("run", *args, timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("edgepose: error: ") and expected in lines[0]


def test_truncated_avi_processes_what_it_can_then_fails(tmp_path):
    data = need(STREET).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = edgepose("run", cut, "--json", tmp_path / "cut.jsonl")
    assert code != 0 and "Traceback" not in err
    assert "truncated" in err
    frames = (tmp_path / "cut.jsonl").read_text().splitlines()
    assert 0 < len(frames) < 205


def test_unwritable_json_path_is_one_line_and_closes_cleanly(tmp_path):
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    (tmp_path / "file").write_text("")  # a missing folder is made (as --out does); a file is in the way
    code, _, err = edgepose("run", image, "--json", tmp_path / "file" / "poses.jsonl")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("edgepose: error:") and "poses.jsonl" in lines[0]


def test_folder_run_writes_jsonl_contract_and_images(tmp_path, model_path):
    folder = need(IMAGES / "mpii")
    out = tmp_path / "annotated"
    code, stdout, err = edgepose("run", folder, "--json", tmp_path / "poses.jsonl", "--out", out,
                                 "--threads", 2)
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "poses.jsonl").read_text().splitlines()]
    assert len(records) == 5
    for i, rec in enumerate(records):
        assert rec["frame"] == i and rec["source"] == str(folder)
        assert "timestamp_ms" in rec and set(rec["stages_ms"]) >= {"detector", "landmark"}
        for pose in rec["poses"]:
            assert {"id", "score", "bbox", "keypoints"} <= set(pose)
            assert len(pose["bbox"]) == 4 and len(pose["keypoints"]) == 33
            assert all(len(k) == 5 for k in pose["keypoints"])
            w, h = rec["image_size"]
            xs = np.array(pose["keypoints"])[:, 0]
            assert -w < xs.mean() < 2 * w  # pixels, not normalised
    assert sum(len(r["poses"]) for r in records) >= 4
    assert len(list(out.glob("*.jpg"))) == 5
    assert "people:" in stdout and "stages ms" in stdout


def test_video_run_tracks_and_writes_video(clip, tmp_path):
    out = tmp_path / "annotated.avi"
    code, stdout, err = edgepose("run", clip, "--out", out, "--json", "-", "--threads", 2)
    assert code == 0, err
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert records[1]["timestamp_ms"] == pytest.approx(20.0, abs=0.5)
    assert all(len(r["poses"]) == 1 and r["poses"][0]["id"] == 0 for r in records)
    assert "detector blazepose ran on 1 of 12 frames" in err  # summary goes to stderr with --json -
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_summary_says_whole_frame_search_for_a_model_that_finds_people_itself(clip, tmp_path):
    pytest.importorskip("onnx", reason="needs the test extra (onnx) to build the stand-in model")
    from onnx_models import constant_model

    rows = np.zeros((20, 56), np.float32)  # YOLO-pose: one person, 17 keypoints on a line
    rows[0, :5] = [160, 200, 100, 200, 0.9]
    rows[0, 5:] = np.stack([np.full(17, 160.0), np.linspace(110, 290, 17), np.full(17, 0.8)], 1).ravel()
    model = constant_model(tmp_path / "yolo.onnx", (1, 3, 320, 320), {"output0": rows.T[None]})
    code, out, err = edgepose("run", clip, "--model", model, "--decoder", "yolo-pose",
                              "--max-people", 3, "--threads", 1)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("people:"))
    assert "12 pose(s) found" in line and "detector" not in line
    assert re.search(r"; whole-frame search on \d+ of 12 frames$", line), line


@pytest.fixture
def served(clip):
    """An HTTP server on loopback serving the short clip's folder."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stream_url_is_read_and_a_dead_one_fails_fast(served, tmp_path):
    code, out, err = edgepose("run", f"{served}/clip.avi", "--json", "-", timeout=120)
    assert code == 0, err
    assert len(out.splitlines()) == 12
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    code, _, err = edgepose("run", f"http://127.0.0.1:{dead}/live.mp4", timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "could not be opened" in lines[0]


def test_offline_smoothing_of_a_json_file(clip, tmp_path):
    raw, smooth = tmp_path / "raw.jsonl", tmp_path / "smooth.jsonl"
    code, _, err = edgepose("run", clip, "--json", raw, "--smoothing", "none")
    assert code == 0, err
    code, out, err = edgepose("smooth", raw, "--out", smooth, "--zero-lag", "--preset", "strong")
    assert code == 0, err
    assert "zero-lag" in out
    a = [json.loads(line) for line in raw.read_text().splitlines()]
    b = [json.loads(line) for line in smooth.read_text().splitlines()]
    assert len(a) == len(b) == 12
    assert a[5]["poses"][0]["keypoints"] != b[5]["poses"][0]["keypoints"]
    code, _, err = edgepose("smooth", tmp_path / "nope.jsonl", "--out", smooth)
    assert code == 1 and err.strip().startswith("edgepose: error:") and "Traceback" not in err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"frame": 0, "poses": [{"score": 1}]}\n')
    code, _, err = edgepose("smooth", broken, "--out", smooth)
    assert code == 1 and "broken.jsonl:1 is not an 'edgepose run --json' record" in err
    # its folders are made, as edgepose run makes those of --json
    code, _, err = edgepose("smooth", raw, "--out", tmp_path / "no" / "such" / "dir" / "out.jsonl")
    assert code == 0, err
    assert len((tmp_path / "no" / "such" / "dir" / "out.jsonl").read_text().splitlines()) == 12


def test_first_run_with_no_source_uses_a_shipped_photo(tmp_path):
    from edgepose.sources import demo_image

    if demo_image() is None:
        pytest.skip("neither scikit-image nor matplotlib is installed: no demo photo")
    code, out, err = edgepose("run", cwd=tmp_path)
    assert code == 0, err
    assert "people: 1 pose(s)" in out
    image = cv2.imread(str(tmp_path / "edgepose_demo.jpg"))
    assert image is not None and image.shape[0] > 100


@pytest.mark.parametrize("backend", ["mediapipe", "mediapipe-tasks"])
def test_mediapipe_backends_behind_the_same_cli(backend, tmp_path):
    pytest.importorskip("mediapipe", reason="needs the mediapipe extra")
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    code, out, err = edgepose("run", image, "--backend", backend, "--json", "-")
    assert code == 0, err
    record = json.loads(out.splitlines()[0])
    assert len(record["poses"]) == 1 and len(record["poses"][0]["keypoints"]) == 33
    assert "mediapipe" in record["stages_ms"]


def test_legacy_mediapipe_is_single_person():
    pytest.importorskip("mediapipe", reason="needs the mediapipe extra")
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    code, _, err = edgepose("run", image, "--backend", "mediapipe", "--max-people", 3)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "mediapipe-tasks" in lines[0]


def test_show_without_display_is_one_clear_line(monkeypatch):
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = edgepose("run", image, "--show")
    assert code == 1 and err.strip() == "edgepose: error: --show needs a display (DISPLAY is not set): use --out to save frames"


def test_show_opens_a_window_on_a_virtual_display():
    import shutil

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt install xvfb) to give --show a display")
    image = next(need(IMAGES / "mpii").glob("*.jpg"))
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-m", "edgepose", "run", str(image), "--show"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "people: 1 pose(s)" in proc.stdout


def test_models_lists_known_models():
    code, out, err = edgepose("models", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"detector", "lite", "full", "heavy", "movenet-lightning", "movenet-thunder",
                         "movenet-multipose", "nanodet", "centernet", "efficientpose", "posenet",
                         "openpose", "yolo11n-pose"}
    assert all(len(r["sha256"]) == 64 for r in rows.values())
