"""One behavioural suite over every model family and engine behind ``Pipeline`` (the
norfair pattern): empty and bad frames, bad and repeated timestamps, static-mode ids, the
detection schedule, ids across a short gap, reset() and close().

BlazePose, the MediaPipe engines and YOLO11n-pose's heads file (any input size: the
photo runs at its own aspect) run their real models on a real photo; the other
families run tiny ONNX models built in code whose outputs follow the frame (a bright
frame or spot is a person, a black frame nobody), so MoveNet, YOLO-pose, heatmap and
SimCC paths all run in CI without converted weights.
"""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest

from conftest import IMAGES, MODELS, need
from onnx_models import brightness_model, pose_heatmap_model, pose_simcc_model

from edgepose import Pipeline
from edgepose.errors import InputError, UsageError
from edgepose.types import Detection

FAMILIES = ["blazepose", "heatmap", "simcc", "yolo-pose", "yolo-pose heads", "movenet-single",
            "movenet-multipose", "mediapipe", "mediapipe-tasks"]
BOTTOM_UP = {"yolo-pose", "yolo-pose heads", "movenet-multipose", "mediapipe", "mediapipe-tasks"}


class SpotBox:
    """A person detector that boxes the bright spot of a frame, or finds nobody."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.block, self.entered = block, threading.Event()

    def __call__(self, image_rgb):
        self.entered.set()
        if self.block is not None:
            self.block.wait(10)
        ys, xs = np.nonzero(image_rgb[:, :, 0] > 128)
        if len(xs) == 0:
            return []
        cx, cy = xs.mean(), ys.mean()
        return [Detection(0.9, (cx - 60, cy - 100, cx + 60, cy + 100), np.zeros((0, 2)))]


def spot_frame(x: int = 320, y: int = 240) -> np.ndarray:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[y - 5:y + 5, x - 5:x + 5] = 255
    return frame


def _body(n: int = 17) -> np.ndarray:
    """(17, 2) y, x in [0, 1]: a standing figure in the middle of the input."""
    y = np.linspace(0.2, 0.8, n)
    x = 0.5 + 0.08 * np.sin(np.arange(n))
    return np.stack([y, x], axis=1)


def movenet_single_model(path):
    template = np.zeros((1, 1, 17, 3), np.float32)
    template[0, 0, :, :2] = _body()
    mask = np.zeros_like(template, bool)
    mask[..., 2] = True
    return brightness_model(path, (1, 192, 192, 3), template, mask, input_dtype=np.int32)


def movenet_multipose_model(path):
    template = np.zeros((1, 6, 56), np.float32)
    template[0, 0, :51].reshape(17, 3)[:, :2] = _body()
    template[0, 0, 51:55] = (0.15, 0.35, 0.85, 0.65)  # ymin, xmin, ymax, xmax
    mask = np.zeros_like(template, bool)
    mask[0, 0, 2:51:3] = True
    mask[0, 0, 55] = True
    return brightness_model(path, (1, 256, 256, 3), template, mask, input_dtype=np.int32)


def yolo_model(path):
    row = np.zeros(56, np.float32)
    row[:4] = (160, 160, 100, 200)  # cx, cy, w, h in input pixels
    body = _body() * 320
    row[5:].reshape(17, 3)[:, 0], row[5:].reshape(17, 3)[:, 1] = body[:, 1], body[:, 0]
    mask = np.zeros(56, bool)
    mask[4] = True
    mask[7::3] = True
    # the input is /255 already: mean brightness is the score
    return brightness_model(path, (1, 3, 320, 320), row.reshape(1, 56, 1), mask.reshape(1, 56, 1), scale=1.0)


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(need(IMAGES / "mpii" / "004645041.jpg")))


@pytest.fixture(scope="module")
def case(request, tmp_path_factory, model_path, photo):
    """(options, person frame, empty frame, person detector or None) of a family."""
    family = request.param
    folder = tmp_path_factory.mktemp(family)
    grey = np.full((480, 640, 3), 200, np.uint8)
    if family == "blazepose":
        return dict(model=model_path("full"), detector=model_path("detector"), threads=1), photo, None
    if family in ("mediapipe", "mediapipe-tasks"):
        pytest.importorskip("mediapipe", reason="needs mediapipe (pip install 'edgepose[mediapipe]')")
        model_path("full")
        return dict(backend=family, model="full"), photo, None
    if family == "heatmap":
        offsets = np.rint(12 * np.stack([np.cos(np.arange(17)), np.sin(np.arange(17))], 1)).astype(int)
        path = pose_heatmap_model(folder / "h.onnx", offsets)
        return dict(model=str(path), decoder="heatmap", normalize="unit", threads=1), spot_frame(), SpotBox
    if family == "simcc":
        path = pose_simcc_model(folder / "s.onnx")
        return dict(model=str(path), decoder="simcc", normalize="unit", threads=1), spot_frame(), SpotBox
    if family == "yolo-pose":
        return dict(model=str(yolo_model(folder / "y.onnx")), decoder="yolo-pose", threads=1), grey, None
    if family == "yolo-pose heads":
        pytest.importorskip("onnx", reason="needs the test extra (onnx) to cut the export")
        from converters import yolo_heads

        heads = folder / "heads.onnx"
        yolo_heads.convert(need(MODELS / "yolo" / "yolo11n-pose.onnx"), heads)
        return dict(model=str(heads), decoder="yolo-pose", threads=1), photo, None
    make = movenet_single_model if family == "movenet-single" else movenet_multipose_model
    return dict(model=str(make(folder / "m.onnx")), threads=1), grey, None


def open_case(case, **overrides) -> Pipeline:
    options, _, detector = case
    return Pipeline(person_detector=detector() if detector else None, **{**options, **overrides})


def person(case) -> np.ndarray:
    return case[1]


def empty(case) -> np.ndarray:
    return np.zeros_like(case[1])


pytestmark = pytest.mark.parametrize("case", FAMILIES, indirect=True)


def test_a_person_is_found_and_nobody_is_an_empty_result(case):
    for static in (True, False):
        with open_case(case, static_image_mode=static) as pipe:
            found = pipe.process(person(case), timestamp_ms=0.0)
            height, width = person(case).shape[:2]
            assert len(found.poses) == 1 and found.image_size == (width, height)
            assert found.poses[0].keypoints.shape == (33, 5)
            none = pipe.process(empty(case), timestamp_ms=40.0)
            assert none.poses == [] and none.image_size == found.image_size


def test_bad_frames_are_input_errors_and_the_pipeline_goes_on(case):
    with open_case(case) as pipe:
        for bad in (np.zeros((48, 64, 3), np.float32), np.zeros(10, np.uint8), None, "frame.jpg",
                    np.zeros((0, 0, 3), np.uint8)):
            with pytest.raises(InputError):
                pipe.process(bad)
        assert pipe.process(person(case), timestamp_ms=0.0).poses


def test_bad_timestamps_are_input_errors_and_the_pipeline_goes_on(case):
    with open_case(case) as pipe:
        assert pipe.process(person(case), timestamp_ms=0.0).poses
        for bad in (float("nan"), float("inf"), "40"):
            with pytest.raises(InputError, match="finite number"):
                pipe.process(person(case), timestamp_ms=bad)
        later = pipe.process(person(case), timestamp_ms=40.0)
        assert later.poses and "smoothing" in later.stages_ms


def test_a_constant_timestamp_falls_back_to_the_monotonic_clock(case, caplog):
    with caplog.at_level(logging.WARNING, logger="edgepose.pipeline"), open_case(case) as pipe:
        results = [pipe.process(person(case), timestamp_ms=1000.0) for _ in range(5)]
    assert all(r.poses and "smoothing" in r.stages_ms for r in results)
    assert caplog.text.count("monotonic clock") == 1


def test_static_mode_ids_are_the_index_in_the_image(case):
    with open_case(case, static_image_mode=True) as pipe:
        for _ in range(3):
            result = pipe.process(person(case))
            assert [p.track_id for p in result.poses] == [0] and result.detector_ran
            assert "smoothing" not in result.stages_ms


def test_a_person_lost_for_a_few_frames_gets_their_id_back_and_reset_forgets(case):
    with open_case(case) as pipe:
        first = pipe.process(person(case), timestamp_ms=0.0).poses[0].track_id
        for i in range(1, 4):
            assert pipe.process(empty(case), timestamp_ms=40.0 * i).poses == []
        back = pipe.process(person(case), timestamp_ms=160.0)
        assert [p.track_id for p in back.poses] == [first]
        pipe.reset()
        fresh = pipe.process(person(case), timestamp_ms=0.0)
        assert fresh.detector_ran and fresh.poses[0].track_id > first  # ids are never reused


def test_the_detection_schedule(case):
    """Top-down families run the detector until someone is tracked, then follow them; a
    lost person brings it back. Bottom-up models search every frame (MediaPipe: while
    fewer than max_people are found)."""
    family = case[0].get("decoder") or case[0].get("backend") or ""
    with open_case(case) as pipe:
        ran = [pipe.process(frame, timestamp_ms=40.0 * i).detector_ran
               for i, frame in enumerate([person(case)] * 3 + [empty(case)] + [person(case)] * 2)]
    if pipe.estimator.finds_people and not family.startswith("mediapipe"):
        assert ran == [True] * 6
    else:
        assert ran == [True, False, False, False, True, False]


def test_close_frees_the_models_and_later_use_is_a_clear_error(case):
    pipe = open_case(case)
    pipe.process(person(case))
    pipe.close()
    pipe.close()  # twice is fine
    with pytest.raises(UsageError, match="closed"):
        pipe.process(person(case))
