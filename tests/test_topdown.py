"""Interchangeable person detectors in front of the BlazePose landmark model
(edgepose.detectors through Pipeline(person_detector=...))."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IMAGES, SHARED, need, read_rgb

from edgepose import Pipeline
from edgepose.blazepose.roi import roi_from_points
from edgepose.detectors import BlazePoseDetector, BoxDetector, CallableDetector

IMAGE = IMAGES / "mhp" / "10084.jpg"
CLIP = SHARED / "video" / "posetrack_000001"


@pytest.fixture(scope="module")
def detector(model_path):
    with_close = BlazePoseDetector(model_path("detector"), body_box=True, threads=2)
    yield with_close
    with_close.close()


class Counting:
    """Wraps a detector: counts calls; leaves closing to the fixture."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, image_rgb):
        self.calls += 1
        return self.inner(image_rgb)


def test_blazepose_detector_as_callable_matches_pipeline(image_pipeline, detector, model_path):
    """With the detector's own alignment points as the ROI rule, the top-down pipeline is
    the BlazePose pipeline: same poses, to float precision."""
    rgb = read_rgb(need(IMAGE))
    expected = image_pipeline.process(rgb, color="rgb")
    assert expected.poses, "the reference pipeline should find someone here"
    person = CallableDetector(Counting(detector), min_score=0.5,
                              roi_from_detection=lambda d: roi_from_points(d.keypoints[0], d.keypoints[1]))
    with Pipeline(person_detector=person, model=model_path("full"), static_image_mode=True,
                  threads=2) as pipe:
        got = pipe.process(rgb, color="rgb")
    assert len(got.poses) == len(expected.poses)
    for a, b in zip(got.poses, expected.poses):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
    assert got.detector_ran and "detector" in got.stages_ms


def test_box_roi_finds_the_same_person(image_pipeline, detector, model_path):
    """The default rule (box -> square, unrotated ROI) on the detector's body box lands on
    the same person. (On its face box, the model's own, it finds nobody: too small a crop.)"""
    rgb = read_rgb(need(IMAGE))
    expected = image_pipeline.process(rgb, color="rgb").poses[0]
    # no second pass: the pose comes from the box ROI itself
    with Pipeline(person_detector=CallableDetector(Counting(detector), min_score=0.5),
                  model=model_path("full"), static_image_mode=True, refine_box_crops=False,
                  threads=2) as pipe:
        got = pipe.process(rgb, color="rgb").poses
    assert got and got[0].roi.rotation == 0.0
    found = detector(rgb)[0]
    # body box -> ROI is about the size of BlazePose's own ROI from the same two points
    assert got[0].roi.size == pytest.approx(roi_from_points(*found.keypoints[:2]).size, rel=0.25)
    torso = [11, 12, 23, 24]
    err = np.linalg.norm(got[0].keypoints[torso, :2] - expected.keypoints[torso, :2], axis=1).mean()
    assert err < 0.05 * expected.roi.size, err


def test_a_box_a_found_person_fills_gets_no_crop_of_its_own(model_path):
    """Boxes come in overlapping (two detectors, or NMS leaving a near-copy): a box whose
    person a pose already found costs no landmark run, while a second person's box does."""
    from edgepose.types import Detection

    rgb = read_rgb(need(IMAGE))
    with Pipeline(model=model_path("full"), max_people=2, static_image_mode=True, threads=2) as pipe:
        reference = pipe.process(rgb, color="rgb").poses
    assert len(reference) == 2, "BlazePose's own pipeline finds the two people of this photo"
    (x, y, w, h), other = reference[0].bbox, reference[1].bbox
    near_copy = (x + 0.05 * w, y, x + 1.05 * w, y + h)
    boxes = [Detection(0.9, (x, y, x + w, y + h), np.zeros((0, 2))),
             Detection(0.8, near_copy, np.zeros((0, 2))),
             Detection(0.7, (other[0], other[1], other[0] + other[2], other[1] + other[3]), np.zeros((0, 2)))]
    with Pipeline(person_detector=lambda image: boxes, model=model_path("full"),
                  static_image_mode=True, max_people=3, threads=2) as pipe:
        runs = []
        run = pipe.estimator.model.run
        pipe.estimator.model.run = lambda *a, **k: runs.append(1) or run(*a, **k)
        poses = pipe.process(rgb, color="rgb").poses
    assert len(poses) == 2
    assert len(runs) == 4  # two boxes, each a first pass and its refined crop; no run for the copy


def test_crops_of_new_detections_per_frame_are_bounded(model_path):
    """A detector that returns many empty boxes costs at most max_people + EXTRA_CROPS
    landmark runs a frame, not one per box."""
    from edgepose.pipeline import EXTRA_CROPS
    from edgepose.types import Detection

    rgb = np.zeros((480, 640, 3), np.uint8)
    boxes = [Detection(0.9 - 0.01 * i, (40.0 * i, 10.0, 40.0 * i + 30, 70.0), np.zeros((0, 2)))
             for i in range(12)]
    with Pipeline(person_detector=lambda image: boxes, model=model_path("full"),
                  static_image_mode=True, max_people=1, threads=2) as pipe:
        runs = []
        run = pipe.estimator.model.run
        pipe.estimator.model.run = lambda *a, **k: runs.append(1) or run(*a, **k)
        assert pipe.process(rgb, color="rgb").poses == []
    assert len(runs) == 1 + EXTRA_CROPS


def test_video_mode_tracks_and_skips_the_detector(detector, model_path):
    import cv2

    frames = sorted(need(CLIP).glob("*.jpg"))
    counting = Counting(detector)
    with Pipeline(person_detector=CallableDetector(counting, min_score=0.5), model=model_path("full"),
                  max_people=1, threads=2) as pipe:
        results = [pipe.process(cv2.imread(str(f)), timestamp_ms=i * 33.3) for i, f in enumerate(frames)]
        ids = [[p.track_id for p in r.poses] for r in results]
        pipe.reset()
        assert pipe.process(cv2.imread(str(frames[0])), timestamp_ms=0.0).detector_ran
    assert all(i == [0] for i in ids), ids
    assert counting.calls == 1 + 1  # first frame, then tracking from landmarks; +1 after reset


def test_box_detector_on_onnx_centernet_layout(tmp_path, detector, model_path):
    """A CenterNet-layout ONNX model (constant output: the person's box, from the BlazePose
    detector, in 512-px stretched-input units) drives the pipeline through BoxDetector."""
    from onnx_models import constant_model

    from edgepose.backends.onnxruntime import OnnxModel
    from edgepose.geometry import stretch_transform
    from edgepose.detectors import BOX_DETECTORS

    rgb = read_rgb(need(IMAGE))
    box = np.array(detector(rgb)[0].box).reshape(2, 2)  # the body square
    to_image = stretch_transform(rgb.shape[1], rgb.shape[0], 512, 512)
    in_box = (box - to_image[:, 2]) / np.diag(to_image[:, :2])
    rows = np.zeros((1, 100, 6), np.float32)
    rows[0, 0] = [*in_box.reshape(-1), 0.8, 0]
    rows[0, 1] = [0, 0, 50, 50, 0.9, 5]  # a bus, ignored
    path = constant_model(tmp_path / "centernet.onnx", (1, 512, 512, 3), {"detections": rows})
    person = BOX_DETECTORS["centernet"](OnnxModel(str(path), threads=1))
    assert isinstance(person, BoxDetector)
    found = person.detect(rgb)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].box, box.reshape(-1), atol=1e-3)
    with Pipeline(person_detector=person, model=model_path("full"), static_image_mode=True,
                  threads=2) as pipe:
        poses = pipe.process(rgb, color="rgb").poses
    assert len(poses) == 1 and poses[0].score > 0.5


def test_rejects_a_non_callable_detector(model_path):
    with pytest.raises(TypeError, match="person detector must be callable"):
        Pipeline(person_detector="nanodet", model=model_path("full"))


def test_unconverted_detector_says_how_to_convert(tmp_path, monkeypatch, model_path):
    from edgepose.errors import ModelError

    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="edgepose convert tfjs centernet"):
        Pipeline(model=model_path("full"), detector="centernet")
    with pytest.raises(ModelError, match="unknown person detector 'yolo'"):
        Pipeline(model=model_path("full"), detector="yolo")
