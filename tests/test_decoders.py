"""Decoders on inputs with known answers: hand-made tensors, and tiny ONNX models whose
outputs the test sets, run through the ONNX Runtime backend."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.backends import find_output
from edgepose.decoders import heatmap, movenet, simcc, yolo_pose
from edgepose.geometry import (apply_transform, box_crop_transform, letterbox_transform,
                                        nms, roi_from_box, stretch_transform)
from edgepose.decoders.preprocess import InputSpec, make_input, parse_size
from edgepose.backends import TensorSpec
from edgepose.keypoints import COCO17, measured_rows, to_pose
from edgepose.skeletons import BlazePoseLandmark as B
from edgepose.skeletons import CocoKeypoint as C
from edgepose.types import Roi


def gaussian_maps(centres: np.ndarray, h: int, w: int, sigma: float = 2.0) -> np.ndarray:
    """(K, H, W) Gaussians with peak 1 at the given (K, 2) sub-pixel x, y."""
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma ** 2)).astype(np.float32)


def onnx_outputs(tmp_path, input_shape, outputs, input_dtype=np.float32):
    """Run a constant ONNX model through the backend; returns (model, outputs)."""
    from onnx_models import constant_model

    from edgepose.backends.onnxruntime import OnnxModel

    path = constant_model(tmp_path / "m.onnx", input_shape, outputs, input_dtype)
    model = OnnxModel(str(path), threads=1)
    return model, model.run(np.zeros(input_shape, input_dtype))


# -- heatmap ------------------------------------------------------------------------------
HM_CENTRES = np.array([[10.3, 20.7], [30.6, 12.2], [24.0, 40.45]])  # x, y in a 48x64 map


@pytest.mark.parametrize("refine, tol", [("dark", 0.05), ("quarter", 0.26), ("none", 0.5)])
def test_heatmap_refinement_recovers_subpixel_peaks(refine, tol):
    hm = gaussian_maps(HM_CENTRES, 64, 48)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    got = heatmap.decode(hm, identity, (48, 64), refine=refine)  # input = heatmap size
    err = np.abs(got[:, :2] - HM_CENTRES)
    assert err.max() <= tol, err
    np.testing.assert_allclose(got[:, 2], hm.reshape(3, -1).max(axis=1))


def test_heatmap_dark_is_exact_on_a_gaussian_without_blur():
    hm = gaussian_maps(HM_CENTRES, 64, 48)
    pts = heatmap.refine_dark(heatmap.maxima(hm), hm, blur_kernel=None)
    np.testing.assert_allclose(pts[:, :2], HM_CENTRES, atol=1e-3)


def test_heatmap_quarter_moves_towards_the_true_peak():
    hm = gaussian_maps(HM_CENTRES, 64, 48)
    plain = heatmap.maxima(hm)
    quarter = heatmap.refine_quarter(plain, hm)
    # a peak exactly on a pixel (x = 24.0) has equal neighbours and stays put
    expected = np.where(HM_CENTRES == np.round(HM_CENTRES), 0.0, 0.25)
    np.testing.assert_allclose(np.abs(quarter[:, :2] - plain[:, :2]), expected)
    assert (np.abs(quarter[:, :2] - HM_CENTRES) <= np.abs(plain[:, :2] - HM_CENTRES) + 1e-6).all()


def test_heatmap_border_peak_is_left_alone():
    hm = gaussian_maps(np.array([[0.0, 63.0]]), 64, 48)
    for refine in ("dark", "quarter"):
        got = heatmap.decode(hm, np.array([[1.0, 0, 0], [0, 1.0, 0]]), (48, 64), refine=refine)
        np.testing.assert_allclose(got[0, :2], [0.0, 63.0])


def test_heatmap_channels_last_and_crop_to_image():
    hm = gaussian_maps(HM_CENTRES, 64, 48)
    box = (100.0, 50.0, 220.0, 330.0)
    to_image = box_crop_transform(box, 192, 256)
    first = heatmap.decode(hm[None], to_image, (192, 256))
    last = heatmap.decode(np.moveaxis(hm, 0, -1)[None], to_image, (192, 256), channels="last")
    np.testing.assert_allclose(first, last, atol=1e-5)
    # 64x48 map on a 256x192 input: stride 4, then the crop box (aspect 3:4, padded 1.25x)
    expected = apply_transform(HM_CENTRES * 4, to_image)
    np.testing.assert_allclose(first[:, :2], expected, atol=0.05 * 4 * to_image[0, 0])
    # the crop is centred on the box and holds it with the padding
    np.testing.assert_allclose(apply_transform(np.array([[96.0, 128.0]]), to_image), [[160.0, 190.0]])
    assert to_image[1, 1] * 256 == pytest.approx(280 * 1.25)


def test_heatmap_bad_shapes():
    with pytest.raises(ValueError, match="batch 1"):
        heatmap.to_khw(np.zeros((2, 17, 64, 48)))
    with pytest.raises(ValueError, match="refine must be one of"):
        heatmap.decode(np.zeros((17, 64, 48)), np.eye(2, 3), (48, 64), refine="taylor")


def test_heatmap_model_through_onnxruntime(tmp_path):
    centres = np.array([[5.25 + i, 8.5 + 2 * i] for i in range(17)])
    hm = gaussian_maps(centres, 64, 48)[None]
    model, (out,) = onnx_outputs(tmp_path, (1, 3, 256, 192), {"heatmaps": hm})
    assert model.outputs[0].shape == (1, 17, 64, 48)
    box = (40.0, 10.0, 160.0, 250.0)
    to_image = box_crop_transform(box, 192, 256)
    got = heatmap.decode(out, to_image, (192, 256))
    np.testing.assert_allclose(got[:, :2], apply_transform(centres * 4, to_image), atol=0.3)
    pose = to_pose(got, COCO17)
    np.testing.assert_allclose(pose.coco17[:, :2], got[:, :2])


# -- SimCC --------------------------------------------------------------------------------
def simcc_vectors(xy_bins: np.ndarray, bins_x: int, bins_y: int, peak_x, peak_y):
    k = len(xy_bins)
    sx = np.full((1, k, bins_x), -3.0, np.float32)
    sy = np.full((1, k, bins_y), -3.0, np.float32)
    sx[0, np.arange(k), xy_bins[:, 0]] = peak_x
    sy[0, np.arange(k), xy_bins[:, 1]] = peak_y
    return sx, sy


def test_simcc_split_ratio_and_confidence():
    bins = np.array([[0, 0], [101, 333], [383, 511]])
    sx, sy = simcc_vectors(bins, 384, 512, np.array([0.9, 0.4, 0.7]), np.array([0.5, 0.8, 0.7]))
    to_image = np.array([[2.0, 0, 10.0], [0, 2.0, 20.0]])
    got = simcc.decode(sx, sy, to_image, split_ratio=2.0)
    np.testing.assert_allclose(got[:, 0], bins[:, 0] / 2 * 2 + 10)
    np.testing.assert_allclose(got[:, 1], bins[:, 1] / 2 * 2 + 20)
    np.testing.assert_allclose(got[:, 2], [0.5, 0.4, 0.7])  # the smaller of the two peaks
    soft = simcc.decode(sx, sy, to_image, softmax=True)
    np.testing.assert_allclose(soft[:, :2], got[:, :2])
    assert (soft[:, 2] > 0).all() and (soft[:, 2] < 1).all()


def test_simcc_mismatched_k():
    with pytest.raises(ValueError, match="same K"):
        simcc.decode(np.zeros((1, 17, 384)), np.zeros((1, 16, 512)), np.eye(2, 3))


def test_simcc_model_through_onnxruntime(tmp_path):
    rng = np.random.default_rng(3)
    bins = np.stack([rng.integers(0, 384, 17), rng.integers(0, 512, 17)], axis=1)
    sx, sy = simcc_vectors(bins, 384, 512, 1.0, 1.0)
    # outputs listed y first: the caller finds them by shape, not order
    model, outs = onnx_outputs(tmp_path, (1, 3, 256, 192), {"simcc_y": sy, "simcc_x": sx})
    ix = find_output(model, (1, 17, 384), "simcc x", "rtmpose")
    iy = find_output(model, (1, 17, 512), "simcc y", "rtmpose")
    assert (ix, iy) == (1, 0)
    to_image = box_crop_transform((0.0, 0.0, 300.0, 400.0), 192, 256)
    got = simcc.decode(outs[ix], outs[iy], to_image)
    np.testing.assert_allclose(got[:, :2], apply_transform(bins / 2.0, to_image), atol=1e-3)


# -- YOLO-pose ----------------------------------------------------------------------------
def yolo_rows() -> tuple[np.ndarray, np.ndarray]:
    """(6, 56) anchors: two overlapping boxes on person A, one on person B, three weak.
    Returns the rows and person A's and B's keypoints (17, 3) in input pixels."""
    rng = np.random.default_rng(0)
    kp_a = np.column_stack([rng.uniform(100, 140, 17), rng.uniform(60, 200, 17), rng.uniform(0.5, 1, 17)])
    kp_b = np.column_stack([rng.uniform(220, 260, 17), rng.uniform(80, 220, 17), rng.uniform(0.5, 1, 17)])
    rows = np.zeros((6, 56), np.float32)
    rows[0, :5] = [120, 130, 60, 150, 0.80]
    rows[0, 5:] = kp_a.reshape(-1)
    rows[1, :5] = [122, 128, 62, 148, 0.70]  # same person, lower score: NMS drops it
    rows[1, 5:] = kp_a.reshape(-1) + 3
    rows[2, :5] = [240, 150, 50, 150, 0.90]
    rows[2, 5:] = kp_b.reshape(-1)
    rows[3:, :5] = [[50, 50, 20, 20, 0.1], [300, 300, 10, 10, 0.2], [10, 300, 5, 5, 0.0]]
    return rows, kp_a, kp_b


def test_yolo_pose_nms_and_letterbox():
    rows, kp_a, kp_b = yolo_rows()
    to_image = letterbox_transform(640, 480, 320, 320)  # scale 2, 80 px border top and bottom
    np.testing.assert_allclose(to_image, [[2, 0, 0], [0, 2, -80]])
    for layout in (rows.T[None], rows[None]):  # Ultralytics' (1, 56, A) and (1, A, 56)
        scores, boxes, kps = yolo_pose.decode(layout, to_image)
        np.testing.assert_allclose(scores, [0.9, 0.8])
        np.testing.assert_allclose(boxes[0], [2 * 215, 2 * 75 - 80, 2 * 265, 2 * 225 - 80])
        np.testing.assert_allclose(kps[1, :, 0], kp_a[:, 0] * 2, rtol=1e-6)
        np.testing.assert_allclose(kps[1, :, 1], kp_a[:, 1] * 2 - 80, rtol=1e-6)
        np.testing.assert_allclose(kps[0, :, 2], kp_b[:, 2], rtol=1e-6)
    results = yolo_pose.to_results(scores, boxes, kps)
    det, pose = results[0]
    assert det.score == pytest.approx(0.9) and pose.score == pytest.approx(0.9)
    np.testing.assert_allclose(pose.coco17[:, :2], kps[0, :, :2])
    np.testing.assert_allclose(det.keypoints, kps[0, :, :2])


def test_yolo_pose_thresholds_and_shape_check():
    rows, _, _ = yolo_rows()
    scores, _, _ = yolo_pose.decode(rows.T[None], np.eye(2, 3), iou_threshold=0.99)
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.7])  # nothing suppressed at IoU 0.99
    scores, _, _ = yolo_pose.decode(rows.T[None], np.eye(2, 3), score_threshold=0.85)
    assert len(scores) == 1
    with pytest.raises(ValueError, match=r"\(1, 56, A\) or \(1, A, 56\)"):
        yolo_pose.decode(np.zeros((1, 57, 10)), np.eye(2, 3))


def test_yolo_pose_model_through_onnxruntime(tmp_path):
    rows, kp_a, _ = yolo_rows()
    _, (out,) = onnx_outputs(tmp_path, (1, 3, 320, 320), {"output0": rows.T[None]})
    assert out.shape == (1, 56, 6)
    scores, boxes, kps = yolo_pose.decode(out, letterbox_transform(320, 320, 320, 320))
    np.testing.assert_allclose(scores, [0.9, 0.8])
    np.testing.assert_allclose(kps[1], kp_a, rtol=1e-6)


# -- MoveNet ------------------------------------------------------------------------------
def test_movenet_single_decode_through_crop():
    out = np.zeros((1, 1, 17, 3), np.float32)
    out[0, 0, :, 0] = np.linspace(0.1, 0.9, 17)  # y
    out[0, 0, :, 1] = np.linspace(0.9, 0.1, 17)  # x
    out[0, 0, :, 2] = 0.6
    crop = Roi(300.0, 200.0, 256.0)  # x 172..428, y 72..328
    pose = movenet.single_pose(out, crop, 192)
    np.testing.assert_allclose(pose.coco17[:, 0], 172 + 256 * out[0, 0, :, 1], rtol=1e-5)
    np.testing.assert_allclose(pose.coco17[:, 1], 72 + 256 * out[0, 0, :, 0], rtol=1e-5)
    assert pose.score == pytest.approx(0.6) and pose.roi == crop


def _tf_determine_crop_region(keypoints, image_height, image_width):
    """TensorFlow's MoveNet tutorial (normalised dicts), ported line by line as the reference."""
    kd = {k.name.lower(): k.value for k in C}
    target = {j: [keypoints[0, 0, i, 0] * image_height, keypoints[0, 0, i, 1] * image_width]
              for j, i in kd.items()}

    def init():
        if image_width > image_height:
            return {"y_min": (image_height / 2 - image_width / 2) / image_height, "x_min": 0.0,
                    "height": image_width / image_height, "width": 1.0}
        return {"y_min": 0.0, "x_min": (image_width / 2 - image_height / 2) / image_width,
                "height": 1.0, "width": image_height / image_width}

    s = keypoints[0, 0, :, 2]
    torso = ((s[kd["left_hip"]] > 0.2 or s[kd["right_hip"]] > 0.2)
             and (s[kd["left_shoulder"]] > 0.2 or s[kd["right_shoulder"]] > 0.2))
    if not torso:
        return init()
    cy = (target["left_hip"][0] + target["right_hip"][0]) / 2
    cx = (target["left_hip"][1] + target["right_hip"][1]) / 2
    ty = tx = by = bx = 0.0
    for j in ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]:
        ty, tx = max(ty, abs(cy - target[j][0])), max(tx, abs(cx - target[j][1]))
    for j in kd:
        if s[kd[j]] < 0.2:
            continue
        by, bx = max(by, abs(cy - target[j][0])), max(bx, abs(cx - target[j][1]))
    half = np.amax([tx * 1.9, ty * 1.9, by * 1.2, bx * 1.2])
    half = np.amin([half, np.amax([cx, image_width - cx, cy, image_height - cy])])
    if half > max(image_width, image_height) / 2:
        return init()
    return {"y_min": (cy - half) / image_height, "x_min": (cx - half) / image_width,
            "height": 2 * half / image_height, "width": 2 * half / image_width}


@pytest.mark.parametrize("seed", range(8))
def test_movenet_crop_region_matches_tensorflow_tutorial(seed):
    rng = np.random.default_rng(seed)
    width, height = (640, 480) if seed % 2 else (360, 640)
    norm = np.zeros((1, 1, 17, 3))
    spread = rng.uniform(0.05, 0.45)
    norm[0, 0, :, :2] = 0.5 + rng.uniform(-spread, spread, (17, 2))
    norm[0, 0, :, 2] = rng.uniform(0.0, 1.0, 17)
    if seed == 3:
        norm[0, 0, [C.LEFT_HIP, C.RIGHT_HIP], 2] = 0.1  # torso not visible
    ref = _tf_determine_crop_region(norm, height, width)
    pixels = np.column_stack([norm[0, 0, :, 1] * width, norm[0, 0, :, 0] * height, norm[0, 0, :, 2]])
    roi = movenet.next_crop_region(pixels, width, height)
    x0, y0 = roi.cx - roi.size / 2, roi.cy - roi.size / 2
    np.testing.assert_allclose([x0 / width, y0 / height, roi.size / width, roi.size / height],
                               [ref["x_min"], ref["y_min"], ref["width"], ref["height"]], atol=1e-9)
    assert roi.rotation == 0.0


def test_movenet_crop_region_known_case():
    kp = np.zeros((17, 3))
    kp[:, :2] = [320, 240]
    kp[:, 2] = 0.9
    kp[C.LEFT_HIP, :2], kp[C.RIGHT_HIP, :2] = [300, 260], [340, 260]  # hip centre (320, 260)
    kp[C.LEFT_SHOULDER, :2], kp[C.RIGHT_SHOULDER, :2] = [290, 200], [350, 200]
    kp[C.LEFT_ANKLE, :2] = [310, 360]
    # torso: max(|dx| 30, |dy| 60) x 1.9 = 114; body: ankle dy 100 x 1.2 = 120 -> half 120
    assert movenet.next_crop_region(kp, 640, 480) == Roi(320.0, 260.0, 240.0)
    assert movenet.initial_crop_region(640, 480) == Roi(320.0, 240.0, 640.0)


def test_movenet_multipose_pad_to_square():
    out = np.zeros((1, 6, 56), np.float32)
    out[0, :, 55] = [0.1, 0.7, 0.0, 0.9, 0.05, 0.15]
    for i in range(6):
        out[0, i, :51].reshape(17, 3)[:] = [0.2 + 0.01 * i, 0.3 + 0.01 * i, 0.5]
        out[0, i, 51:55] = [0.1, 0.2, 0.6, 0.4]  # ymin, xmin, ymax, xmax
    to_image = letterbox_transform(1280, 720, 256, 256)  # scale 5, 280 px border top/bottom
    scores, boxes, kps = movenet.decode_multipose(out, to_image, (256, 256))
    np.testing.assert_allclose(scores, [0.9, 0.7])
    np.testing.assert_allclose(boxes[0], [0.2 * 1280, 0.1 * 1280 - 280, 0.4 * 1280, 0.6 * 1280 - 280], rtol=1e-5)
    np.testing.assert_allclose(kps[0, 0], [0.33 * 1280, 0.23 * 1280 - 280, 0.5], rtol=1e-5)
    np.testing.assert_allclose(kps[1, 0], [0.31 * 1280, 0.21 * 1280 - 280, 0.5], rtol=1e-5)
    det, pose = movenet.multipose_results(scores, boxes, kps)[0]
    assert pose.score == pytest.approx(0.9) and det.box == pytest.approx(tuple(boxes[0]))


# -- geometry, keypoints, inputs ------------------------------------------------------------
def test_roi_from_box_and_nms():
    assert roi_from_box((10, 20, 110, 420)) == Roi(60.0, 220.0, 1.5 * 400, 0.0)
    with pytest.raises(ValueError, match="x1 > x0"):
        roi_from_box((10, 20, 5, 40))
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.1]), 0.5, max_out=1).tolist() == [1]


def test_coco17_pose_fills_rows_by_name():
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(100, 300, 17), rng.uniform(50, 400, 17), rng.uniform(0, 1, 17)])
    pose = to_pose(points, "coco17")
    np.testing.assert_allclose(pose.coco17[:, :2], points[:, :2], rtol=1e-6)
    np.testing.assert_allclose(pose.coco17[:, 3], points[:, 2], rtol=1e-6)  # visibility
    np.testing.assert_allclose(pose.coco17[:, 4], points[:, 2], rtol=1e-6)  # presence
    measured = measured_rows(COCO17)
    assert measured.sum() == 17
    assert (pose.keypoints[~measured, 3:] == 0).all()  # unmeasured rows: vis = presence = 0
    assert (pose.keypoints[:, 2] == 0).all()
    kp = pose.keypoints
    np.testing.assert_array_equal(kp[B.LEFT_HEEL, :2], kp[B.LEFT_ANKLE, :2])
    np.testing.assert_array_equal(kp[B.RIGHT_THUMB, :2], kp[B.RIGHT_WRIST, :2])
    np.testing.assert_array_equal(kp[B.MOUTH_LEFT, :2], kp[B.NOSE, :2])
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    assert pose.bbox == pytest.approx((x0, y0, x1 - x0, y1 - y0), rel=1e-5)
    assert pose.score == pytest.approx(points[:, 2].mean())
    with pytest.raises(ValueError, match=r"points must be \(17, 3\) for layout coco17, got \(16, 3\)"):
        to_pose(points[:16])


def test_input_spec_and_make_input():
    assert parse_size("256x192") == (192, 256) and parse_size("416") == (416, 416)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("256by192")
    nchw = InputSpec.from_tensor(TensorSpec("x", (1, 3, 256, 192), np.dtype(np.float32)))
    assert (nchw.size, nchw.channels) == ((192, 256), "first")
    nhwc = InputSpec.from_tensor(TensorSpec("x", (1, 192, 192, 3), np.dtype(np.int32)), normalize="raw")
    assert (nhwc.size, nhwc.channels, nhwc.dtype) == ((192, 192), "last", "int32")
    with pytest.raises(ValueError, match="dynamic size"):
        InputSpec.from_tensor(TensorSpec("x", (1, -1, -1, 3), np.dtype(np.int32)))

    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :, 0] = 255  # pure red in RGB
    before = image.copy()
    x = make_input(image, letterbox_transform(200, 100, 64, 64), InputSpec((64, 64)))
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 32, 32], [(255 - 123.675) / 58.395, -116.28 / 57.12, -103.53 / 57.375], rtol=1e-5)
    np.testing.assert_allclose(x[0, :, 2, 32], [-123.675 / 58.395, -116.28 / 57.12, -103.53 / 57.375], rtol=1e-5)  # border
    raw = make_input(image, stretch_transform(200, 100, 32, 32), InputSpec((32, 32), "last", normalize="raw", dtype="int32"))
    assert raw.dtype == np.int32 and raw[0, 5, 5].tolist() == [255, 0, 0]
    bgr = make_input(image[..., ::-1].copy(), stretch_transform(200, 100, 32, 32),
                     InputSpec((32, 32), "last", normalize="raw"), image_color="bgr")
    assert bgr[0, 5, 5].tolist() == [255, 0, 0]
    np.testing.assert_array_equal(image, before)
