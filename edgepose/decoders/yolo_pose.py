"""YOLO-pose decoding (Ultralytics YOLOv8/YOLO11-pose raw export): per anchor a box, a
person score and K keypoints, then NMS.

Tensor: (1, 5 + 3K, A) channels first as Ultralytics exports it (e.g. (1, 56, 8400) for
K = 17 at 640x640), or (1, A, 5 + 3K). Per anchor: cx, cy, w, h (input pixels), score
(sigmoid applied), then K x (x, y, confidence) with x, y in input pixels and the
confidence sigmoid-applied (``keypoint_logits=True`` if your export left it raw). Exports
with NMS built in (``nms=True``) have another layout and are not handled here.
"""

from __future__ import annotations

import numpy as np

from edgepose.geometry import sigmoid
from edgepose.geometry import apply_transform, boxes_to_image, nms, xywh_to_xyxy
from edgepose.keypoints import COCO17, Layout, to_pose
from edgepose.types import Detection, Pose

# Ultralytics' predict defaults (ultralytics/cfg/default.yaml: conf 0.25, iou 0.7): a
# person scores above SCORE_THRESHOLD; boxes overlapping a better one by more than
# IOU_THRESHOLD are dropped.
SCORE_THRESHOLD = 0.25
IOU_THRESHOLD = 0.7


def _candidates(output: np.ndarray, num_keypoints: int, score_threshold: float) -> np.ndarray:
    """(N, 5 + 3K) rows of the anchors scoring above ``score_threshold``, whichever way
    round the export put them. The score row is read first and only the rows above it
    are gathered (a few of 8400: the whole tensor is never transposed or copied)."""
    out = np.asarray(output)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    width = 5 + 3 * num_keypoints
    if out.ndim == 2 and out.shape[0] == width:
        return out[:, out[4] > score_threshold].T.astype(np.float32)
    if out.ndim == 2 and out.shape[1] == width:
        return out[out[:, 4] > score_threshold].astype(np.float32)
    raise ValueError(f"YOLO-pose output must be (1, {width}, A) or (1, A, {width}) for "
                     f"{num_keypoints} keypoints, got {np.shape(output)}")


def decode(output: np.ndarray, to_image: np.ndarray, num_keypoints: int = 17,
           score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
           max_people: int | None = None, keypoint_logits: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People in image pixels: the anchors scoring above ``score_threshold``, greedy NMS
    at ``iou_threshold`` (class-agnostic, as Ultralytics' predict), at most ``max_people``.

    output: (1, 5 + 3K, A) or (1, A, 5 + 3K). to_image: (2, 3) affine from input pixels to
    image pixels (:class:`~edgepose.decoders.preprocess.Letterbox` gives it, or
    :func:`~edgepose.geometry.letterbox_transform`).
    Returns scores (N,), boxes (N, 4) x0, y0, x1, y1 and keypoints (N, K, 3) x, y,
    confidence, all float32, by descending score after NMS.
    """
    rows = _candidates(output, num_keypoints, score_threshold)
    boxes = xywh_to_xyxy(rows[:, :4])
    keep = nms(boxes, rows[:, 4], iou_threshold, max_people)
    rows, boxes = rows[keep], boxes[keep]
    kps = rows[:, 5:].reshape(-1, num_keypoints, 3).copy()
    if keypoint_logits:
        kps[:, :, 2] = sigmoid(kps[:, :, 2])
    kps[:, :, :2] = apply_transform(kps[:, :, :2], to_image)
    return (rows[:, 4].copy(), boxes_to_image(boxes, to_image).astype(np.float32),
            kps.astype(np.float32))


def to_results(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
               layout: str | Layout = COCO17) -> list[tuple[Detection, Pose]]:
    """Pair each person's Detection (box, keypoints (K, 2)) with its Pose (score = box score)."""
    return [(Detection(float(s), tuple(float(v) for v in b), k[:, :2].copy()),
             to_pose(k, layout, score=float(s)))
            for s, b, k in zip(scores, boxes, keypoints)]
