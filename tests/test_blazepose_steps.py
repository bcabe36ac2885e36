"""The pure pre/post-processing steps, on inputs with known answers."""

import math

import cv2
import numpy as np
import pytest

from edgepose.blazepose import detector as det
from edgepose.blazepose import landmarks as lmk
from edgepose.blazepose.roi import normalize_radians, roi_from_points
from edgepose.types import Roi


def test_anchors_match_mediapipe_layout():
    a = det.anchors()
    assert a.shape == (2254, 2)
    # stride 8: 28x28 cells, two anchors each, first cell centre at 0.5 / 28
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])
    # the last block is the 7x7 stride-32 grid with 6 anchors per cell
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert a.min() > 0 and a.max() < 1


def test_decode_places_box_and_keypoints_relative_to_anchor():
    raw = np.zeros((2254, 12), np.float32)
    logits = np.full((2254, 1), -10.0, np.float32)
    anchor = det.anchors()[100]
    raw[100] = [22.4, -11.2, 44.8, 67.2, 0, 0, 11.2, 0, 0, 0, 0, 0]
    logits[100] = 3.0
    scores, boxes, kps = det.decode(raw, logits, min_score=0.5)
    assert scores.shape == (1,) and scores[0] == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-6)
    cx, cy = anchor[0] + 0.1, anchor[1] - 0.05
    np.testing.assert_allclose(boxes[0], [cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], anchor, atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], [anchor[0] + 0.05, anchor[1]], atol=1e-6)


def test_weighted_nms_averages_overlapping_candidates_by_score():
    scores = np.array([0.9, 0.6, 0.8])
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    kps = np.zeros((3, 4, 2))
    kps[:, 0, 0] = [1.0, 2.0, 5.0]
    out = det.weighted_nms(scores, boxes, kps)
    assert [round(s, 2) for s, _, _ in out] == [0.9, 0.8]
    expected_x0 = (0.1 * 0.9 + 0.12 * 0.6) / 1.5
    assert out[0][1][0] == pytest.approx(expected_x0)
    assert out[0][2][0, 0] == pytest.approx((1.0 * 0.9 + 2.0 * 0.6) / 1.5)
    assert out[1][2][0, 0] == pytest.approx(5.0)


def test_letterbox_maps_input_square_to_image_centre():
    m = det.letterbox_transform(1280, 720)
    corners = np.array([[0, 0, 1], [224, 224, 1]]) @ m.T
    np.testing.assert_allclose(corners, [[0, -280], [1280, 1000]])


@pytest.mark.parametrize("dx, dy, rotation", [
    (0, -10, 0.0),             # second point straight above: upright, no rotation
    (10, 0, math.pi / 2),      # to the right: the body lies along +x, turn by 90 deg
    (0, 10, math.pi),          # below: upside down (pi and -pi are the same turn)
])
def test_roi_rotation_puts_second_point_above(dx, dy, rotation):
    roi = roi_from_points(np.array([100.0, 100.0]), np.array([100.0 + dx, 100.0 + dy]))
    assert abs(normalize_radians(roi.rotation - rotation)) < 1e-9
    assert roi.size == pytest.approx(2 * 10 * 1.25)
    # the second point lands straight above the centre of the crop
    to_crop = cv2.invertAffineTransform(roi.crop_to_image(256))
    u, v = to_crop @ np.array([100.0 + dx, 100.0 + dy, 1.0])
    assert u == pytest.approx(128, abs=1e-6) and v < 128


def test_crop_warp_and_projection_are_inverse():
    image = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(image, (400, 150), 4, (255, 255, 255), -1)
    roi = Roi(380.0, 170.0, 120.0, rotation=0.7)
    crop, to_image = lmk.preprocess(image, roi, "rgb")
    weight = crop[0, :, :, 0]
    vs, us = np.mgrid[0:256, 0:256]
    u, v = (us * weight).sum() / weight.sum(), (vs * weight).sum() / weight.sum()
    x, y = to_image @ np.array([u, v, 1.0])
    assert math.hypot(x - 400, y - 150) < 0.5


def test_heatmap_refinement_moves_point_to_peak_and_keeps_weak_ones():
    hm = np.full((64, 64, 39), -8.0, np.float32)
    hm[20, 30, 0] = 6.0  # landmark 0: confident peak at col 30, row 20
    hm[20, 31, 0] = 6.0
    xy = np.full((39, 2), 0.5, np.float32)
    xy[0] = [31.9 / 64, 21.2 / 64]
    out = lmk.refine_with_heatmap(xy, hm)
    assert out[0, 0] == pytest.approx(30.5 / 64, abs=1e-3)
    assert out[0, 1] == pytest.approx(20 / 64, abs=1e-3)
    np.testing.assert_array_equal(out[1:], xy[1:])  # no confident window: untouched


def test_decode_projects_crop_centre_to_roi_centre():
    raw = np.zeros((1, 195), np.float32)
    raw[0, 0::5] = 128.0
    raw[0, 1::5] = 128.0
    roi = Roi(300.0, 200.0, 100.0, 0.3)
    kps, aux = lmk.decode(raw, None, roi)
    assert kps.shape == (33, 5)
    np.testing.assert_allclose(kps[:, :2], np.tile([300.0, 200.0], (33, 1)), atol=1e-4)
    np.testing.assert_allclose(kps[:, 3:], 0.5)  # sigmoid(0)
    assert aux.shape == (2, 2)
