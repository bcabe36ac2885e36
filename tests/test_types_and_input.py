"""Result types, keypoint layouts and frame validation."""

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.image import as_color_image
from edgepose.skeletons import BLAZEPOSE_TO_COCO, BlazePoseLandmark, CocoKeypoint, blazepose_index
from edgepose.types import Pose


def test_coco_view_maps_by_name():
    assert BLAZEPOSE_TO_COCO == (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
    kp = np.zeros((33, 5), np.float32)
    kp[:, 0] = np.arange(33)
    pose = Pose(kp, 0.9)
    assert pose.coco17[CocoKeypoint.LEFT_ANKLE, 0] == BlazePoseLandmark.LEFT_ANKLE


def test_joint_names_from_other_layouts():
    assert blazepose_index("Right-ankle") == BlazePoseLandmark.RIGHT_ANKLE
    assert blazepose_index("left_shoulder") == BlazePoseLandmark.LEFT_SHOULDER
    assert blazepose_index("Right Hip") == BlazePoseLandmark.RIGHT_HIP
    assert blazepose_index("Head top") is None  # BlazePose has no such landmark


def test_pose_rejects_wrong_shape_with_expected_and_actual():
    with pytest.raises(ValueError, match=r"keypoints must be \(33, 5\), got \(17, 3\)"):
        Pose(np.zeros((17, 3)), 0.5)


def test_pose_json_contract():
    kp = np.random.default_rng(0).random((33, 5)).astype(np.float32) * 100
    d = Pose(kp, 0.8, track_id=3).to_dict()
    assert d["id"] == 3 and d["score"] == 0.8
    assert len(d["bbox"]) == 4 and d["bbox"][2] > 0
    assert len(d["keypoints"]) == 33 and all(len(row) == 5 for row in d["keypoints"])


@pytest.mark.parametrize("frame, order", [
    (np.zeros((10, 12), np.uint8), "rgb"),       # grey: the same either way
    (np.zeros((10, 12, 1), np.uint8), "rgb"),
    (np.zeros((10, 12, 3), np.uint8), "bgr"),
    (np.zeros((10, 12, 4), np.uint8), "bgr"),
])
def test_accepted_frames(frame, order):
    image, color = as_color_image(frame, "bgr")
    assert image.shape == (10, 12, 3) and color == order


@pytest.mark.parametrize("frame, message", [
    (None, "must be a numpy array"),
    ([[1, 2]], "must be a numpy array"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float32), "must be uint8"),
    (np.zeros((10, 10, 2), np.uint8), "got shape"),
    (np.zeros((2, 10, 10, 3), np.uint8), "got shape"),
])
def test_rejected_frames_say_why(frame, message):
    with pytest.raises(InputError, match=message):
        as_color_image(frame)


def test_unknown_color_order():
    with pytest.raises(InputError, match="'bgr' or 'rgb'"):
        as_color_image(np.zeros((4, 4, 3), np.uint8), "hsv")
