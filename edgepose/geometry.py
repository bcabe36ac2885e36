"""Geometry shared by every step: model-input <-> image affines, IoU, NMS, box -> ROI.

An affine ``to_image`` is a (2, 3) float64 matrix taking model-input pixel coordinates
(x right, y down) to image pixels; preprocessing warps with it (``cv2.WARP_INVERSE_MAP``)
and decoders map their points through it, so the two can never disagree.
"""

from __future__ import annotations

import numpy as np

from edgepose.types import Roi

# Box -> ROI enlargement for the BlazePose landmark model. BlazePose's own ROI (twice the
# hip-to-scale-point distance, x1.25) is about 1.5x a standing person's height. Measured
# with benchmarks/eval_models.py (full model, mean AP over the shared sets): CenterNet
# boxes 0.347 at 1.25, 0.391 at 1.5, 0.321 at 1.75; NanoDet 0.291, 0.334, 0.308.
BOX_ROI_SCALE = 1.5
# mmpose's top-down crop: the box (after aspect-ratio fix) enlarged 1.25x.
TOP_DOWN_PADDING = 1.25


def sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warning for large negative float32 logits
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def apply_transform(points: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine; a new float64 array."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ to_image[:, :2].T + to_image[:, 2]


def letterbox_transform(width: int, height: int, input_w: int, input_h: int) -> np.ndarray:
    """(2, 3) affine of a letterbox: the image scaled to fit ``input_w`` x ``input_h`` with
    its aspect kept and centred (equal borders). MoveNet MultiPose's "pad to square", the
    BlazePose detector and YOLO's letterbox are this (YOLO rounds its border to whole
    pixels; the difference is under half an input pixel)."""
    scale = max(width / input_w, height / input_h)
    return np.array([[scale, 0.0, (width - input_w * scale) / 2],
                     [0.0, scale, (height - input_h * scale) / 2]])


def stretch_transform(width: int, height: int, input_w: int, input_h: int) -> np.ndarray:
    """(2, 3) affine of a plain resize to ``input_w`` x ``input_h`` (aspect not kept)."""
    return np.array([[width / input_w, 0.0, 0.0], [0.0, height / input_h, 0.0]])


def box_crop_transform(box: tuple[float, float, float, float], input_w: int, input_h: int,
                       padding: float = TOP_DOWN_PADDING) -> np.ndarray:
    """(2, 3) affine of a top-down crop (mmpose / rtmlib): the box (x0, y0, x1, y1 pixels)
    grown to the input's aspect ratio about its centre, enlarged by ``padding``, then
    mapped onto the ``input_w`` x ``input_h`` input."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * padding, (y1 - y0) * padding
    aspect = input_w / input_h
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[w / input_w, 0.0, cx - w / 2], [0.0, h / input_h, cy - h / 2]])


def roi_from_box(box: tuple[float, float, float, float], scale: float = BOX_ROI_SCALE) -> Roi:
    """Square, unrotated ROI for the BlazePose landmark model from a person box (x0, y0,
    x1, y1 pixels): centred on the box, side ``scale`` x its longer side. A box carries no
    rotation; in video mode the pipeline's tracking then rotates the ROI from landmarks."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0), 0.0)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (M, 4) boxes, all x0, y0, x1, y1."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_iou(a, b) -> float:
    """IoU of two boxes (x0, y0, x1, y1); 0 when either is None or empty."""
    if a is None or b is None or len(a) == 0 or len(b) == 0:
        return 0.0
    return float(iou(np.asarray(a, np.float64), np.asarray([b], np.float64))[0])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_out: int | None = None) -> np.ndarray:
    """Greedy (hard) NMS, class-agnostic. boxes: (N, 4) x0, y0, x1, y1; scores: (N,).
    Returns the kept indices (M,) int64 by descending score."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size and (max_out is None or len(keep) < max_out):
        best = order[0]
        keep.append(best)
        order = order[1:][iou(boxes[best], boxes[order[1:]]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, y, width, height -> (N, 4) x0, y0, x1, y1."""
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def boxes_to_image(boxes: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """(N, 4) x0, y0, x1, y1 in input pixels -> image pixels (axis-aligned affines only)."""
    corners = apply_transform(boxes.reshape(-1, 2, 2), to_image)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
