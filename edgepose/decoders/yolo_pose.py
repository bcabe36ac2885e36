"""YOLO-pose decoding (Ultralytics YOLOv8/YOLO11-pose raw export): per anchor a box, a
person score and K keypoints, then NMS.

Tensor: (1, 5 + 3K, A) channels first as Ultralytics exports it (e.g. (1, 56, 8400) for
K = 17 at 640x640), or (1, A, 5 + 3K). Per anchor: cx, cy, w, h (input pixels), score
(sigmoid applied), then K x (x, y, confidence) with x, y in input pixels and the
confidence sigmoid-applied (``keypoint_logits=True`` if your export left it raw). Exports
with NMS built in (``nms=True``) have another layout and are not handled here.

Or the head's raw maps, per level (stride 8, 16, 32): box (1, 4 x 16, H, W) distances
as distribution logits (DFL), score (1, 1, H, W) logit, keypoints (1, 3K, H, W) raw, as
``edgepose convert yolo-heads`` cuts them out of an export (:func:`head_rows` decodes
them, only at the anchors that score). Those files take any input size, so a frame is
letterboxed only to the next multiple of the stride (Ultralytics' own ``rect``).
"""

from __future__ import annotations

import dataclasses

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


def candidates(output: np.ndarray, num_keypoints: int, score_threshold: float) -> np.ndarray:
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


@dataclasses.dataclass(frozen=True)
class HeadLevel:
    """Which of a heads file's outputs are one level's box, score and keypoint maps."""

    box: int
    score: int
    keypoints: int


def head_levels(shapes: list[tuple[int, ...]], num_keypoints: int) -> list[HeadLevel] | None:
    """The levels of a heads file from its output shapes (1, C, H, W), finest first: at
    each spatial size one map of 4 x R channels (R distribution bins), one of 1 and one
    of 3K. None when the outputs are not that. A dynamic file's sizes are only known
    from real outputs; its spec's (-1) sizes only say whether the channels fit."""
    by_size: dict[tuple, dict[str, int]] = {}
    for i, shape in enumerate(shapes):
        if len(shape) != 4 or shape[0] not in (1, -1):
            return None
        c = shape[1]
        role = ("score" if c == 1 else "keypoints" if c == 3 * num_keypoints
                else "box" if c > 0 and c % 4 == 0 else None)
        if role is None:
            return None
        size = tuple(shape[2:]) if min(shape[2:]) > 0 else (-(i // 3),)  # unknown: in file order
        if role in by_size.setdefault(size, {}):
            return None
        by_size[size][role] = i
    levels = [HeadLevel(**roles) for _, roles in sorted(by_size.items(), reverse=True)
              if set(roles) == {"box", "score", "keypoints"}]
    return levels if levels and len(levels) * 3 == len(shapes) else None


def _logit(p: float) -> float:
    """The x where sigmoid(x) = p: sigmoid(x) > p <=> x > logit(p), so the threshold test
    needs no sigmoid (p <= 0: every anchor; p >= 1: none)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    return float(np.log(p / (1.0 - p)))


def head_rows(outputs: list[np.ndarray], levels: list[HeadLevel], input_hw: tuple[int, int],
              num_keypoints: int = 17, score_threshold: float | None = SCORE_THRESHOLD) -> np.ndarray:
    """(N, 5 + 3K) rows, as the full export gives them (cx, cy, w, h, score, K x (x, y,
    confidence), input pixels), of the anchors scoring above ``score_threshold`` (None:
    every anchor, level by level). Only those anchors are decoded: a softmax over each
    side's R bins, the expected distance from the anchor's centre times the stride, and
    keypoints at (2 raw + cell) x stride, as Ultralytics' Pose head does it in-graph."""
    rows = []
    for level in levels:
        box, score, kps = (np.asarray(outputs[i])[0] for i in (level.box, level.score, level.keypoints))
        h, w = score.shape[1:]
        stride = input_hw[0] / h
        logit = score.reshape(-1)
        idx = (np.arange(h * w) if score_threshold is None
               else np.flatnonzero(logit > _logit(score_threshold)))
        if len(idx) == 0:
            continue
        cx, cy = (idx % w + 0.5).astype(np.float32), (idx // w + 0.5).astype(np.float32)
        bins = box.reshape(4, -1, h * w)[:, :, idx].astype(np.float32)  # (4, R, n)
        p = np.exp(bins - bins.max(axis=1, keepdims=True))
        dist = (p * np.arange(p.shape[1], dtype=np.float32)[None, :, None]).sum(1) / p.sum(1)
        x0, y0, x1, y1 = cx - dist[0], cy - dist[1], cx + dist[2], cy + dist[3]
        k = kps.reshape(num_keypoints, 3, h * w)[:, :, idx].astype(np.float32)
        out = np.empty((len(idx), 5 + 3 * num_keypoints), np.float32)
        out[:, 0], out[:, 1] = (x0 + x1) * (stride / 2), (y0 + y1) * (stride / 2)
        out[:, 2], out[:, 3] = (x1 - x0) * stride, (y1 - y0) * stride
        out[:, 4] = sigmoid(logit[idx])
        kp = out[:, 5:].reshape(-1, num_keypoints, 3)
        kp[:, :, 0] = ((k[:, 0] * 2.0 + (cx - 0.5)) * stride).T
        kp[:, :, 1] = ((k[:, 1] * 2.0 + (cy - 0.5)) * stride).T
        kp[:, :, 2] = sigmoid(k[:, 2]).T
        rows.append(out)
    return np.concatenate(rows) if rows else np.zeros((0, 5 + 3 * num_keypoints), np.float32)


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
    return decode_rows(candidates(output, num_keypoints, score_threshold), to_image,
                       num_keypoints, iou_threshold, max_people, keypoint_logits)


def decode_rows(rows: np.ndarray, to_image: np.ndarray, num_keypoints: int = 17,
                iou_threshold: float = IOU_THRESHOLD, max_people: int | None = None,
                keypoint_logits: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`decode` from the candidate rows (N, 5 + 3K) on: NMS, then image pixels."""
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
