"""Your own pose model behind --decoder heatmap / simcc / yolo-pose (edgepose.estimators.topdown, edgepose.estimators.yolo_pose).

No real weights of these families are available offline, so the models are tiny ONNX
graphs built in code whose outputs follow their input: a bright spot in the frame is
where the stand-in model puts the keypoints, and the test checks that the crop, the
model, the decoder and the way back to image pixels all agree.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from onnx_models import constant_model, pose_colour_heatmap_model, pose_heatmap_model, pose_simcc_model

from edgepose import Pipeline
from edgepose.options import OptionError
from edgepose.errors import ModelError
from edgepose.types import Detection

# keypoint k of the stand-in heatmap model sits 12 heatmap cells from the spot, around it
ANGLES = 2 * np.pi * np.arange(17) / 17
OFFSETS = np.rint(12 * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)).astype(int)
COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]  # BlazePose rows


def spot_frame(x: int, y: int, size=(480, 640)) -> np.ndarray:
    """Black BGR frame with a white 10x10 spot centred at (x, y)."""
    frame = np.zeros((*size, 3), np.uint8)
    frame[y - 5:y + 5, x - 5:x + 5] = 255
    return frame


class BoxAround:
    """A person detector that boxes the bright spot (200 px tall, 120 wide); counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image_rgb):
        self.calls += 1
        ys, xs = np.nonzero(image_rgb[:, :, 0] > 128)
        cx, cy = xs.mean(), ys.mean()
        return [Detection(0.9, (cx - 60, cy - 100, cx + 60, cy + 100), np.zeros((0, 2)))]


@pytest.fixture(scope="module")
def heatmap_model(tmp_path_factory):
    return str(pose_heatmap_model(tmp_path_factory.mktemp("m") / "heatmap.onnx", OFFSETS))


def test_heatmap_model_keypoints_land_where_its_maps_point(heatmap_model):
    """Each keypoint lands where its map's peak says, mapped back through the crop: the
    spot minus the keypoint's offset, scaled by the crop."""
    from edgepose.geometry import box_crop_transform

    frame = spot_frame(300, 200)
    with Pipeline(model=heatmap_model, decoder="heatmap", normalize="unit",
                        person_detector=BoxAround(), static_image_mode=True, threads=1) as pipe:
        poses = pipe.process(frame).poses
    assert len(poses) == 1
    scale = box_crop_transform((240, 100, 360, 300), 192, 256)[0, 0]  # image px per input px
    expected = np.array([300.0, 200.0]) - 4 * scale * OFFSETS
    got = poses[0].keypoints[COCO, :2]
    assert np.abs(got - expected).max() < 4 * scale, np.abs(got - expected).max()
    assert poses[0].score > 0.2 and np.allclose(poses[0].keypoints[COCO, 3], poses[0].coco17[:, 3])


def two_spot_frame(head, feet, size=(480, 640)) -> np.ndarray:
    """Black BGR frame with a red 10x10 spot at ``head`` and a blue one at ``feet``."""
    frame = np.zeros((*size, 3), np.uint8)
    for (x, y), colour in ((head, (0, 0, 255)), (feet, (255, 0, 0))):
        frame[y - 5:y + 5, x - 5:x + 5] = colour
    return frame


class BoxAroundSpots(BoxAround):
    """Boxes everything lit: the two spots (a 'person' from head to feet)."""

    def __call__(self, image_rgb):
        self.calls += 1
        ys, xs = np.nonzero(image_rgb.max(axis=2) > 128)
        return [Detection(0.9, (xs.min() - 20.0, ys.min() - 10.0, xs.max() + 20.0, ys.max() + 10.0),
                          np.zeros((0, 2)))]


@pytest.mark.parametrize("redetect_every", [10, 3])
def test_heatmap_model_tracks_the_person_between_frames(tmp_path, redetect_every):
    """Video mode: the next crop follows the keypoints (here tied to the picture: keypoints
    0-8 on the red spot, 9-16 on the blue one, 200 px below), so they stay on the spots as
    the 'person' walks; one id. The detector runs on the first frame, then every
    redetect_every frames to re-anchor the crop, even with max_people tracked."""
    path = str(pose_colour_heatmap_model(tmp_path / "colour.onnx", [0] * 9 + [2] * 8))
    detector = BoxAroundSpots()
    steps = [(300 + 12 * i, 100 + 4 * i) for i in range(8)]
    with Pipeline(model=path, decoder="heatmap", normalize="unit", person_detector=detector,
                        redetect_every=redetect_every, threads=1) as pipe:
        results = [pipe.process(two_spot_frame((x, y), (x + 30, y + 200)), timestamp_ms=33.0 * i)
                   for i, (x, y) in enumerate(steps)]
    assert detector.calls == len(range(0, len(steps), redetect_every))
    assert [[p.track_id for p in r.poses] for r in results] == [[0]] * len(steps)
    for r, (x, y) in zip(results, steps):
        kp = r.poses[0].keypoints[COCO, :2]
        assert np.abs(kp[:9] - (x, y)).max() < 6 and np.abs(kp[9:] - (x + 30, y + 200)).max() < 6, kp


def test_simcc_model_finds_the_spot(tmp_path):
    """RTMPose layout: simcc_x / simcc_y at split ratio 2 (read from the vector length),
    ImageNet normalisation (the default)."""
    path = str(pose_simcc_model(tmp_path / "simcc.onnx"))
    with Pipeline(model=path, decoder="simcc", person_detector=BoxAround(),
                        static_image_mode=True, threads=1) as pipe:
        poses = pipe.process(spot_frame(420, 260)).poses
    assert len(poses) == 1
    got = poses[0].keypoints[COCO, :2]
    assert np.abs(got - [420, 260]).max() < 6, got


def test_simcc_outputs_listed_y_first_are_read_by_name(tmp_path):
    """An export that lists simcc_y before simcc_x: the names (or the split ratios) say
    which is which."""
    from edgepose.geometry import apply_transform, box_crop_transform

    x, y = np.zeros((1, 17, 384), np.float32), np.zeros((1, 17, 512), np.float32)
    x[..., 200], y[..., 100] = 5.0, 5.0  # input (100, 50) at split ratio 2
    path = str(constant_model(tmp_path / "yx.onnx", (1, 3, 256, 192), {"simcc_y": y, "simcc_x": x}))
    with Pipeline(model=path, decoder="simcc", person_detector=BoxAround(),
                        static_image_mode=True, threads=1) as pipe:
        pose = pipe.process(spot_frame(300, 200)).poses[0]
    box = (239.5, 99.5, 359.5, 299.5)  # BoxAround: the spot covers pixels 295..304, 195..204
    expected = apply_transform(np.array([[100.0, 50.0]]), box_crop_transform(box, 192, 256))
    np.testing.assert_allclose(pose.keypoints[COCO, :2], np.repeat(expected, 17, axis=0), atol=1e-3)


def yolo_rows(anchors: int = 20) -> np.ndarray:
    """(1, 56, anchors): one person at input (160, 200), box 100x200, score 0.9, 17
    keypoints on a vertical line, confidence 0.8; the other anchors score 0."""
    rows = np.zeros((anchors, 56), np.float32)
    rows[0, :5] = [160, 200, 100, 200, 0.9]
    kp = np.stack([np.full(17, 160.0), np.linspace(110, 290, 17), np.full(17, 0.8)], axis=1)
    rows[0, 5:] = kp.reshape(-1)
    rows[1, :5] = [60, 60, 20, 20, 0.1]  # below the threshold
    return rows.T[None]


def test_yolo_pose_model_undoes_the_letterbox(tmp_path):
    """Bottom-up: the whole 640x480 frame letterboxed into 320x320 (scale 0.5, 40 px of
    grey above and below); keypoints come back in frame pixels, one id across frames."""
    path = str(constant_model(tmp_path / "yolo.onnx", (1, 3, 320, 320), {"output0": yolo_rows()}))
    frame = np.full((480, 640, 3), 90, np.uint8)
    with Pipeline(model=path, decoder="yolo-pose", max_people=5, threads=1) as pipe:
        assert pipe.describe()["family"] == "yolo-pose" and pipe.estimator.input_spec.normalize == "unit"
        results = [pipe.process(frame, timestamp_ms=40.0 * i) for i in range(3)]
    for r in results:
        assert len(r.poses) == 1 and r.poses[0].track_id == 0
    kp = results[0].poses[0].keypoints[COCO]
    np.testing.assert_allclose(kp[:, 0], 320.0, atol=1e-3)
    np.testing.assert_allclose(kp[:, 1], (np.linspace(110, 290, 17) - 40) * 2, atol=1e-3)
    assert results[0].poses[0].score == pytest.approx(0.9)


def test_wrong_decoder_for_the_model_is_one_clear_error(tmp_path, heatmap_model):
    with pytest.raises(ModelError, match=r"no simcc output for 17 keypoints .*expected two \(1, 17, bins\)"):
        Pipeline(model=heatmap_model, decoder="simcc", person_detector=BoxAround())
    with pytest.raises(ModelError, match=r"no heatmap output for 33 keypoints"):
        Pipeline(model=heatmap_model, decoder="heatmap", keypoint_layout="blazepose33",
                       person_detector=BoxAround())
    with pytest.raises(ModelError, match="is not a file"):
        Pipeline(model="full", decoder="heatmap")
    dynamic = constant_model(tmp_path / "dyn.onnx", (1, 3, "h", "w"), {"output0": yolo_rows()})
    with pytest.raises(ModelError, match=r"dynamic size: give it \(--input-size HxW\)"):
        Pipeline(model=str(dynamic), decoder="yolo-pose")
    with Pipeline(model=str(dynamic), decoder="yolo-pose", input_size="320") as pipe:
        assert pipe.estimator.input_spec.size == (320, 320)
    with pytest.raises(ValueError, match="decoder must be one of heatmap, simcc, yolo-pose"):
        Pipeline(model=heatmap_model, decoder="hrnet")
    with pytest.raises(ModelError, match="does not fit .* whose input is 256x192"):
        Pipeline(model=heatmap_model, decoder="heatmap", input_size="320", person_detector=BoxAround())
    with pytest.raises(OptionError, match="detector=.centernet. .--detector. is not used by yolo-pose: it finds people itself"):
        Pipeline(model=str(dynamic), decoder="yolo-pose", input_size="320", detector="centernet")
    with pytest.raises(OptionError, match=r"segmentation=True \(--segmentation\) is not used by heatmap"):
        Pipeline(model=heatmap_model, decoder="heatmap", segmentation=True, person_detector=BoxAround())


def test_cli_runs_a_yolo_pose_model_from_flags(tmp_path):
    path = constant_model(tmp_path / "yolo.onnx", (1, 3, 320, 320), {"output0": yolo_rows()})
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((480, 640, 3), 90, np.uint8))
    out = tmp_path / "poses.jsonl"
    cmd = [sys.executable, "-m", "edgepose", "run", str(image), "--model", str(path),
           "--decoder", "yolo-pose", "--max-people", "5", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text().splitlines()[0])
    assert len(record["poses"]) == 1
    assert record["poses"][0]["keypoints"][0][:2] == pytest.approx([320.0, 140.0], abs=0.01)

    bad = subprocess.run(cmd[:-2] + ["--decoder", "simcc"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "no simcc output" in lines[0] and "Traceback" not in bad.stderr


def test_bench_times_a_custom_model(tmp_path):
    """`edgepose bench --decoder yolo-pose` times your own model like any other and says
    which decoder and how many people in the table."""
    path = constant_model(tmp_path / "yolo.onnx", (1, 3, 320, 320), {"output0": yolo_rows()})
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), np.full((480, 640, 3), 90, np.uint8))
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "edgepose", "bench", str(frames), "--models", str(path),
           "--decoder", "yolo-pose", "--max-people", "4", "--warmup", "1", "--runs", "3",
           "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = json.loads((out / "bench.json").read_text())["results"]
    assert result["decoder"] == "yolo-pose" and result["max_people"] == 4
    assert result["latency_ms"]["count"] == 3 and result["people_per_frame"] == 1.0
    assert "| none (yolo-pose finds people), 4 people | onnx/onnxruntime-cpu | 1 |" in (out / "bench.md").read_text()
