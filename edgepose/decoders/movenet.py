"""MoveNet: single-pose Lightning / Thunder with its crop-region tracking, and MultiPose.

Single pose: input int32 (1, 192, 192, 3) Lightning or (1, 256, 256, 3) Thunder, RGB
0..255, a square crop of the image; output (1, 1, 17, 3) rows of y, x, score (COCO-17
order), y and x in [0, 1] of the input. Between frames the crop follows the person
(:func:`next_crop_region`, the logic of TensorFlow's MoveNet tutorial); with nobody
confident it falls back to the whole image padded to a square (:func:`initial_crop_region`).
Crops are :class:`~edgepose.types.Roi` (rotation 0): warp with ``roi.crop_to_image(size)``
and a zero border, as ``tf.image.crop_and_resize`` does.

MultiPose: input int32 (1, H, W, 3) RGB 0..255 (fixed 256x256 after TFLite conversion:
pad the image to a square first, :func:`~edgepose.geometry.letterbox_transform`);
output (1, 6, 56): per person 17 x (y, x, score), then box ymin, xmin, ymax, xmax, then
the person score, all coordinates in [0, 1] of the input.
"""

from __future__ import annotations

import numpy as np

from edgepose.geometry import apply_transform, boxes_to_image
from edgepose.keypoints import to_pose
from edgepose.skeletons import CocoKeypoint
from edgepose.types import Detection, Pose, Roi

NUM_KEYPOINTS = 17
MAX_PEOPLE = 6
# TensorFlow's MoveNet tutorial: joints below this score do not steer the crop.
MIN_CROP_KEYPOINT_SCORE = 0.2
TORSO_MARGIN = 1.9  # crop half-size >= 1.9 x the largest torso-joint distance from the hips
BODY_MARGIN = 1.2  # ... and >= 1.2 x the largest confident-joint distance
MULTIPOSE_SCORE = 0.2
_C = CocoKeypoint
_TORSO = [_C.LEFT_SHOULDER, _C.RIGHT_SHOULDER, _C.LEFT_HIP, _C.RIGHT_HIP]


def _yx_to_xy(yxs: np.ndarray, input_size: tuple[int, int], to_image: np.ndarray) -> np.ndarray:
    """(..., 3) y, x, score normalised to the input -> (..., 3) x, y image pixels, score."""
    out = np.empty(yxs.shape, dtype=np.float32)
    xy = yxs[..., 1::-1] * np.asarray(input_size, dtype=np.float64)
    out[..., :2] = apply_transform(xy, to_image)
    out[..., 2] = yxs[..., 2]
    return out


def decode_single(output: np.ndarray, to_image: np.ndarray,
                  input_size: tuple[int, int]) -> np.ndarray:
    """(17, 3) float32 x, y in image pixels and score from the (1, 1, 17, 3) output.

    to_image: (2, 3) affine from input pixels to image pixels (``roi.crop_to_image(size)``
    for the crop region); input_size: (width, height) of the model input."""
    out = np.asarray(output, dtype=np.float32)
    if out.size != NUM_KEYPOINTS * 3:
        raise ValueError(f"MoveNet output must be (1, 1, 17, 3), got {out.shape}")
    return _yx_to_xy(out.reshape(NUM_KEYPOINTS, 3), input_size, to_image)


def initial_crop_region(width: int, height: int) -> Roi:
    """The whole image padded to a square, centred."""
    return Roi(width / 2, height / 2, float(max(width, height)))


def _torso_visible(keypoints: np.ndarray, min_score: float) -> bool:
    s = keypoints[:, 2]
    hips = s[_C.LEFT_HIP] > min_score or s[_C.RIGHT_HIP] > min_score
    shoulders = s[_C.LEFT_SHOULDER] > min_score or s[_C.RIGHT_SHOULDER] > min_score
    return bool(hips and shoulders)


def next_crop_region(keypoints: np.ndarray, width: int, height: int,
                     min_score: float = MIN_CROP_KEYPOINT_SCORE) -> Roi:
    """Crop for the next frame from this frame's (17, 3) x, y (image pixels), score.

    With the torso visible (a hip and a shoulder above ``min_score``): a square centred on
    the hip centre, half-size the larger of 1.9 x the torso joints' and 1.2 x the confident
    joints' largest x or y distance from it, capped at the farthest image edge from the
    centre; when that exceeds half the longer image side, or the torso is not visible,
    :func:`initial_crop_region`.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be ({NUM_KEYPOINTS}, 3), got {kp.shape}")
    if not _torso_visible(kp, min_score):
        return initial_crop_region(width, height)
    centre = (kp[_C.LEFT_HIP, :2] + kp[_C.RIGHT_HIP, :2]) / 2
    torso_range = np.abs(kp[_TORSO, :2] - centre).max()
    confident = kp[kp[:, 2] >= min_score, :2]
    body_range = np.abs(confident - centre).max() if len(confident) else 0.0
    half = max(TORSO_MARGIN * torso_range, BODY_MARGIN * body_range)
    cx, cy = centre
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2:
        return initial_crop_region(width, height)
    return Roi(float(cx), float(cy), float(2 * half))


def single_pose(output: np.ndarray, crop: Roi, input_size: int) -> Pose:
    """Pose (COCO-17 rows filled, score = mean keypoint score) for a square crop."""
    kps = decode_single(output, crop.crop_to_image(input_size), (input_size, input_size))
    return to_pose(kps, "coco17", roi=crop)


def decode_multipose(output: np.ndarray, to_image: np.ndarray, input_size: tuple[int, int],
                     score_threshold: float = MULTIPOSE_SCORE
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People from the (1, 6, 56) MultiPose output, by descending score.

    Returns scores (N,), boxes (N, 4) x0, y0, x1, y1 and keypoints (N, 17, 3) x, y, score,
    in image pixels, float32; people below ``score_threshold`` are dropped."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != NUM_KEYPOINTS * 3 + 5:
        raise ValueError(f"MoveNet MultiPose output must be (1, N, 56), got {out.shape}")
    people = out[0][out[0][:, 55] >= score_threshold]
    people = people[np.argsort(-people[:, 55], kind="stable")]
    kps = _yx_to_xy(people[:, :51].reshape(-1, NUM_KEYPOINTS, 3), input_size, to_image)
    box_yx = people[:, 51:55].reshape(-1, 2, 2)[:, :, ::-1] * np.asarray(input_size)
    boxes = boxes_to_image(box_yx.reshape(-1, 4), to_image).astype(np.float32)
    return people[:, 55].copy(), boxes, kps


def multipose_results(scores: np.ndarray, boxes: np.ndarray,
                      keypoints: np.ndarray) -> list[tuple[Detection, Pose]]:
    """Each person's Detection (its own box) and Pose (score = person score)."""
    return [(Detection(float(s), tuple(float(v) for v in b), k[:, :2].copy()),
             to_pose(k, "coco17", score=float(s)))
            for s, b, k in zip(scores, boxes, keypoints)]
