"""YOLO11n-pose's heads file (``edgepose convert yolo-heads``): the export cut at its head's
last convolutions, any input size, decoded by edgepose. On real weights
(../shared/data/models/yolo/yolo11n-pose.onnx, AGPL-3.0: test data only): the same people as
the export where both see the same input, a 16:9 frame at 640x384, the registry running it
in place of the export, and clear errors; and the rect letterbox's arithmetic, with no model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import IMAGES, MODELS, STREET, count_found, load_coco_people, need

ONNX = MODELS / "yolo" / "yolo11n-pose.onnx"
SETS = {"crowdpose": "test_crowdpose.json", "aic": "test_aic.json"}


def convert(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", "convert", "yolo-heads", *args],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    pytest.importorskip("onnx", reason="needs the test extra (onnx) to cut the export")
    need(ONNX)
    out = tmp_path_factory.mktemp("heads") / "yolo11n-pose_heads.onnx"
    proc = convert(str(ONNX), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"wrote {out}: the same outputs as yolo11n-pose.onnx")
    return out


def square(image: np.ndarray) -> np.ndarray:
    side = min(image.shape[:2])
    return np.ascontiguousarray(image[:side, :side])


def test_heads_file_gives_the_exports_people_on_the_same_input(heads):
    """A square photo fills the same 640x640 input in both: every person, box score and
    keypoint agrees (the in-graph decoding and edgepose's differ by float rounding only)."""
    from edgepose import Pipeline
    from edgepose.sources import read_image

    kw = {"decoder": "yolo-pose", "static_image_mode": True, "max_people": 20, "threads": 2}
    with Pipeline(model=str(ONNX), **kw) as export, Pipeline(model=str(heads), **kw) as cut:
        assert cut.estimator.levels is not None and export.estimator.levels is None
        compared = 0
        for name, ann in SETS.items():
            for file in load_coco_people(need(IMAGES / name / ann)):
                image = square(read_image(IMAGES / name / file))
                a, b = export.process(image).poses, cut.process(image).poses
                assert cut.estimator.letterbox.input_hw == (640, 640)
                assert len(a) == len(b) > 0, file
                for p, q in zip(a, b):
                    assert abs(p.score - q.score) < 1e-4
                    assert np.abs(p.keypoints[:, :2] - q.keypoints[:, :2]).max() < 0.01, file
                compared += len(a)
    assert compared >= 9


def test_a_wide_frame_runs_at_640x384_and_the_photos_people_are_found(heads):
    """The street clip's 1280x720 frame is letterboxed to 640x384 (Ultralytics' rect), and
    at each photo's own shape every annotated CrowdPose and AIC person is still found."""
    from edgepose import Pipeline
    from edgepose.sources import read_image

    kw = {"decoder": "yolo-pose", "static_image_mode": True, "max_people": 20, "threads": 2}
    with Pipeline(model=str(heads), **kw) as pipe:
        cap = cv2.VideoCapture(str(need(STREET)))
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape[:2] == (720, 1280)
        poses = pipe.process(frame[..., ::-1].copy()).poses
        assert pipe.estimator.letterbox.input_hw == (384, 640)
        assert len(poses) >= 3 and all(0 <= p.keypoints[:, 0].mean() < 1280 for p in poses)
        found = annotated = 0
        for name, ann in SETS.items():
            for file, people in load_coco_people(need(IMAGES / name / ann)).items():
                image = read_image(IMAGES / name / file)
                n = count_found(people, [p.keypoints for p in pipe.process(image).poses])
                found, annotated = found + n, annotated + len(people)
                h, w = pipe.estimator.letterbox.input_hw
                assert max(h, w) == 640 and h % 32 == 0 and w % 32 == 0
    assert (found, annotated) == (13, 13)


def test_by_name_runs_the_heads_file_once_made(tmp_path, heads):
    """`--model yolo11n-pose` runs the heads file of the converted folder, and `edgepose
    models` says so; one made from another export is refused with what to do."""
    env = dict(os.environ, EDGEPOSE_CACHE=str(tmp_path / "cache"))
    image = need(IMAGES / "aic" / "fa436c914fe4a8ec1ec5474af4d3820b84d17561.jpg")

    def run():
        return subprocess.run([sys.executable, "-m", "edgepose", "run", str(image), "--model",
                               "yolo11n-pose", "--max-people", "10", "--json", str(tmp_path / "p.jsonl")],
                              capture_output=True, text=True, timeout=300, env=env)

    listing = subprocess.run([sys.executable, "-m", "edgepose", "models"], capture_output=True,
                             text=True, timeout=120, env=env)
    assert "edgepose convert yolo-heads yolo11n-pose" in listing.stdout
    proc = convert("yolo11n-pose", env=env)
    made = tmp_path / "cache" / "converted" / "yolo11n-pose_heads.onnx"
    assert proc.returncode == 0 and made.is_file(), proc.stderr
    proc = run()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(yolo11n-pose_heads.onnx float32 of yolo11n-pose.onnx, onnx/onnxruntime-cpu)" in proc.stdout
    assert len(json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])["poses"]) >= 3
    listing = subprocess.run([sys.executable, "-m", "edgepose", "models"], capture_output=True,
                             text=True, timeout=120, env=env)
    assert str(made) in listing.stdout and "convert yolo-heads" not in listing.stdout

    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(ONNX))  # the same network in another file: another sha256
    model.doc_string = "another export"
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    proc = convert(str(other), "--out", str(made), env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run()
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1
    assert "was not made from yolo11n-pose's pinned export" in lines[0]
    assert "edgepose convert yolo-heads yolo11n-pose" in lines[0]

    # another file of the pinned name, converted with no --out: it does not take the name's place
    (tmp_path / "mine").mkdir()
    mine = tmp_path / "mine" / "yolo11n-pose.onnx"
    onnx.save(model, str(mine))
    made.unlink()
    proc = convert(str(mine), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not made.exists() and len(list(made.parent.glob("yolo11n-pose-*_heads.onnx"))) == 1


def test_what_is_not_a_yolo_pose_export_is_refused_in_one_line(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    need(ONNX)
    dynamic = onnx.load(str(ONNX))  # `yolo export dynamic=True`: no size to check against
    dims = dynamic.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    onnx.save(dynamic, str(tmp_path / "dynamic.onnx"))

    bad = tmp_path / "not.onnx"
    bad.write_bytes(b"\x00garbage, not protobuf" * 10)
    conv = tmp_path / "conv.onnx"
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], np.ones(12, np.float32))
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="/model.0/conv/Conv")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    onnx.save(helper.make_model(graph), str(conv))
    for path, words in ((bad, "is not an ONNX model"), (conv, "no YOLO Pose head"),
                        (tmp_path / "dynamic.onnx", "has no fixed input size (its input is 1x3xheightxwidth)"),
                        (tmp_path / "absent.onnx", "is not a file or a known YOLO-pose name")):
        proc = convert(str(path), "--out", str(tmp_path / "out.onnx"))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and words in lines[0], proc.stderr
        assert not (tmp_path / "out.onnx").exists()


def test_an_input_size_off_the_stride_is_rounded_up(heads, caplog):
    """--input-size must divide into the three levels: 600 becomes 608, as Ultralytics'
    check_imgsz makes it, with a warning, and the frame runs."""
    from edgepose import Pipeline

    with caplog.at_level("WARNING"), Pipeline(model=str(heads), decoder="yolo-pose",
                                              input_size="600x500", static_image_mode=True) as pipe:
        assert pipe.estimator.input_spec.size == (512, 608)
        pipe.process(np.full((720, 1280, 3), 90, np.uint8))
        assert pipe.estimator.letterbox.input_hw == (288, 512)
    assert "--input-size 600x500 is not a multiple of the stride 32: using 608x512" in caplog.text


@pytest.mark.parametrize("size, canvas", [((1280, 720), (640, 384)), ((720, 1280), (384, 640)),
                                          ((300, 200), (640, 448)), ((640, 640), (640, 640)),
                                          ((100, 40), (640, 256))])
def test_rect_letterbox_pads_to_the_stride_only(size, canvas):
    """Ultralytics' LetterBox(auto=True, stride=32): the fitted image plus (640 - side) mod
    32 of border, centred as round(d - 0.1); the canvas follows the frame's size."""
    from edgepose.decoders.preprocess import InputSpec, Letterbox

    rng = np.random.default_rng(2)
    letterbox = Letterbox(InputSpec((640, 640), "first", "rgb", "unit", border=114.0), stride=32)
    letterbox(rng.integers(0, 255, (500, 500, 3), dtype=np.uint8))  # another size first
    w, h = size
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    x, to_image = letterbox(image, "rgb")
    assert x.shape == (1, 3, canvas[1], canvas[0]) and letterbox.input_hw == (canvas[1], canvas[0])
    r = min(640 / w, 640 / h)
    nw, nh = round(w * r), round(h * r)
    left, top = round((canvas[0] - nw) / 2 - 0.1), round((canvas[1] - nh) / 2 - 0.1)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    np.testing.assert_array_equal(x[0, :, top:top + nh, left:left + nw],
                                  resized.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    assert np.all(x[0, :, :top] == np.float32(114 / 255.0))
    np.testing.assert_allclose(to_image @ np.array([left + nw, top + nh, 1.0]), [w, h], atol=1e-9)


def test_head_levels_reads_only_a_heads_layout():
    from edgepose.decoders.yolo_pose import HeadLevel, head_levels

    shapes = [(1, 64, 80, 80), (1, 1, 80, 80), (1, 51, 80, 80), (1, 64, 40, 40), (1, 1, 40, 40), (1, 51, 40, 40)]
    assert head_levels(shapes, 17) == [HeadLevel(0, 1, 2), HeadLevel(3, 4, 5)]
    # finest first, by size, whatever the file's order
    assert head_levels(shapes[3:] + shapes[:3], 17) == [HeadLevel(3, 4, 5), HeadLevel(0, 1, 2)]
    dynamic = [(1, c, -1, -1) for c in (64, 1, 51, 64, 1, 51)]
    assert head_levels(dynamic, 17) == [HeadLevel(0, 1, 2), HeadLevel(3, 4, 5)]
    assert head_levels(shapes[:5], 17) is None  # a level without keypoints
    assert head_levels([(1, 56, 8400)], 17) is None  # the export's one tensor
    assert head_levels([(1, 64, 80, 80), (1, 1, 80, 80), (1, 39, 80, 80)], 17) is None  # 13 keypoints


def test_wrong_heads_layout_says_what_it_expected(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edgepose import Pipeline
    from edgepose.errors import ModelError

    path = tmp_path / "two_maps.onnx"
    w = helper.make_tensor("w", TensorProto.FLOAT, [65, 3, 1, 1], np.ones(195, np.float32))
    graph = helper.make_graph([helper.make_node("Conv", ["images", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 65, 64, 64])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=r"per level box \(1, 64, H, W\), score \(1, 1, H, W\)"):
        Pipeline(model=str(path), decoder="yolo-pose")


def test_head_rows_keeps_the_anchors_above_any_threshold():
    """The logit test agrees with sigmoid > threshold, including 0 (every anchor) and 1 (none)."""
    from edgepose.decoders.yolo_pose import head_levels, head_rows

    rng = np.random.default_rng(3)
    outs = [rng.normal(size=(1, c, 8, 12)).astype(np.float32) for c in (64, 1, 51)]
    levels = head_levels([o.shape for o in outs], 17)
    scores = 1 / (1 + np.exp(-outs[1].ravel()))
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        rows = head_rows(outs, levels, (64, 96), 17, t)
        assert len(rows) == int((scores > t).sum()) and np.all(rows[:, 4] > t)
    every = head_rows(outs, levels, (64, 96), 17, None)
    assert every.shape == (96, 56) and np.all((every[:, 2:4] > 0))  # widths and heights
