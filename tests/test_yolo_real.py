"""YOLO11n-pose on real weights: ../shared/data/models/yolo/yolo11n-pose.onnx (Ultralytics,
AGPL-3.0: test data only, never shipped or downloaded by edgepose), run by name through
the registry, its TFLite conversion (``edgepose convert from-onnx yolo11n-pose``, made by
.ci/prepare_models.sh) and the CLI; and Ultralytics' letterbox arithmetic, with no model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import IMAGES, MODELS, count_found, load_coco_people, need

ONNX = MODELS / "yolo" / "yolo11n-pose.onnx"
# Annotated people of the shared CrowdPose (2 + 2) and AIC (3 + 3 + 3) photos: all found.
# The worst matched person is at 0.14 of the 0.2 error count_found allows.
SETS = {"crowdpose": "test_crowdpose.json", "aic": "test_aic.json"}
# TFLite against ONNX Runtime on the same photos: measured 0.0004 px at most.
TFLITE_PX = 0.05


def converted_tflite():
    from edgepose.models import cache_dir

    path = cache_dir() / "converted" / "yolo11n-pose.tflite"
    if not path.is_file():
        pytest.skip(f"{path} is not converted here: bash .ci/prepare_models.sh (or edgepose "
                    "convert from-onnx yolo11n-pose)")
    return path


def photos():
    for name, ann in SETS.items():
        for file, people in load_coco_people(need(IMAGES / name / ann)).items():
            yield IMAGES / name / file, people


def test_yolo11n_pose_by_name_finds_the_annotated_people(tmp_path, monkeypatch):
    """By name, with no heads file made (test_yolo_heads.py runs that one): the export."""
    from edgepose import Pipeline
    from edgepose.sources import read_image

    need(ONNX)
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path))
    found = annotated = 0
    with Pipeline(model="yolo11n-pose", static_image_mode=True, max_people=20, threads=2) as pipe:
        facts = pipe.describe()
        assert facts["family"] == "yolo-pose" and facts["model_file"] == "yolo11n-pose.onnx"
        assert facts["runtime"] == "onnx/onnxruntime-cpu"
        for path, people in photos():
            poses = pipe.process(read_image(path)).poses
            n = count_found(people, [p.keypoints for p in poses])
            assert n == len(people), f"{path.name}: {n} of {len(people)} annotated people found"
            found, annotated = found + n, annotated + len(people)
    assert (found, annotated) == (13, 13)


def test_tflite_conversion_agrees_with_onnx_runtime():
    """The NHWC TFLite onnx2tf made of the NCHW ONNX file finds the same people, keypoints
    within TFLITE_PX image pixels; the verification the convert step wrote says the same
    in input pixels."""
    from edgepose import Pipeline
    from edgepose.sources import read_image

    need(ONNX)
    tflite = converted_tflite()
    kw = {"static_image_mode": True, "max_people": 20, "threads": 2}
    with Pipeline(model=str(ONNX), decoder="yolo-pose", **kw) as onnx, \
            Pipeline(model=str(tflite), decoder="yolo-pose", **kw) as lite:
        assert onnx.estimator.input_spec.channels == "first"
        assert lite.estimator.input_spec.channels == "last"
        assert lite.describe()["runtime"].startswith("tflite/")
        for path, _ in photos():
            image = read_image(path)
            a, b = onnx.process(image).poses, lite.process(image).poses
            assert len(a) == len(b) > 0, path.name
            for p, q in zip(a, b):
                assert abs(p.score - q.score) < 1e-3
                assert np.abs(p.coco17[:, :2] - q.coco17[:, :2]).max() < TFLITE_PX, path.name
    report = json.loads(tflite.with_name(tflite.name + ".verify.json").read_text())
    assert report["gate"]["passed"] and report["result"]["engine"].startswith("tflite/")
    assert report["people"]["person_anchors"] > 0
    assert report["people"]["keypoint_px_max"] < TFLITE_PX
    assert report["people"]["score_agreement"] > 0.999


def test_cli_runs_yolo11n_pose_with_no_decoder_flag(tmp_path):
    need(ONNX)
    env = dict(os.environ, EDGEPOSE_CACHE=str(tmp_path / "cache"))  # no heads file: the export
    image = IMAGES / "aic" / "fa436c914fe4a8ec1ec5474af4d3820b84d17561.jpg"
    out = tmp_path / "poses.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgepose", "run", str(need(image)), "--model",
                           "yolo11n-pose", "--max-people", "10", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "yolo11n-pose.onnx, onnx/onnxruntime-cpu" in proc.stderr + proc.stdout
    record = json.loads(out.read_text().splitlines()[0])
    assert len(record["poses"]) >= 3  # 3 annotated; 5 found with scores 0.55..0.94
    listing = subprocess.run([sys.executable, "-m", "edgepose", "models"], capture_output=True,
                             text=True, timeout=120, env=env)
    assert listing.returncode == 0
    lines = [ln for ln in listing.stdout.splitlines() if "yolo11n-pose" in ln or "AGPL" in ln]
    assert str(ONNX) in lines[0] and "license AGPL-3.0 (Ultralytics), not shipped" in lines[1]
    assert "ultralytics 8.4.190" in lines[1]


def test_missing_or_other_file_says_where_to_put_it(tmp_path, monkeypatch):
    """No download, ever: the message says where the file goes and that edgepose does not
    ship it; a file of that name with another digest is named, with the flag that runs it."""
    from edgepose import Pipeline
    from edgepose.errors import ModelError

    monkeypatch.setenv("EDGEPOSE_MODEL_PATH", str(tmp_path))
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))  # no heads file either
    with pytest.raises(ModelError) as err:
        Pipeline(model="yolo11n-pose")
    msg = str(err.value)
    for words in ("does not ship or download it", "AGPL-3.0", f"EDGEPOSE_MODEL_PATH ({tmp_path})",
                  "yolo/ subfolder", "yolo11n-pose.onnx (sha256 80456bf37449..)", "yolo export"):
        assert words in msg
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "yolo11n-pose.onnx").write_bytes(b"another export")
    with pytest.raises(ModelError, match=r"yolo11n-pose.onnx is another file \(its sha256 differs\): "
                                         r"run it with --model .* --decoder yolo-pose"):
        Pipeline(model="yolo11n-pose")
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.full((48, 64, 3), 90, np.uint8))
    proc = subprocess.run([sys.executable, "-m", "edgepose", "run", str(frame), "--model",
                           "yolo11n-pose"], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(lines) == 1 and "does not ship or download it" in lines[0]


@pytest.mark.parametrize("size", [(1280, 720), (333, 517), (640, 640), (100, 40)])
def test_letterbox_is_ultralytics_letterbox(size):
    """Letterbox makes the tensor Ultralytics' LetterBox + its preprocessing make (resize to
    the rounded fitting size, border rounded as round(d - 0.1) / round(d + 0.1), grey 114,
    BGR -> RGB, CHW, / 255), bit for bit, and maps input pixels back as scale_boxes does;
    a frame of another size after it redraws the border."""
    from edgepose.decoders.preprocess import InputSpec, Letterbox

    rng = np.random.default_rng(1)
    letterbox = Letterbox(InputSpec((640, 640), "first", "rgb", "unit", border=114.0))
    letterbox(rng.integers(0, 255, (200, 900, 3), dtype=np.uint8), "bgr")  # another size first
    w, h = size
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    x, to_image = letterbox(image, "bgr")
    r = min(640 / h, 640 / w)
    nw, nh = round(w * r), round(h * r)
    dw, dh = (640 - nw) / 2, (640 - nh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    padded = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    expected = padded[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
    assert x.shape == (1, 3, 640, 640) and x.dtype == np.float32
    np.testing.assert_array_equal(x, expected)
    corner = to_image @ np.array([left + nw, top + nh, 1.0])
    np.testing.assert_allclose(corner, [w, h], atol=1e-9)
