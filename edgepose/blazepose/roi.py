"""Region of interest from two alignment points (MediaPipe's AlignmentPointsRects +
RectTransformation: centre on the first point, size twice the distance, rotation so the
second point is straight above, enlarged 1.25x)."""

from __future__ import annotations

import math

import numpy as np

from edgepose.types import Roi

ROI_SCALE = 1.25
TARGET_ANGLE = math.pi / 2


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def roi_from_points(centre: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """Square ROI from (x, y) pixel points: centre (hip centre) and the size/rotation point."""
    cx, cy = float(centre[0]), float(centre[1])
    dx, dy = float(scale_point[0]) - cx, float(scale_point[1]) - cy
    size = 2.0 * math.hypot(dx, dy) * scale
    rotation = normalize_radians(TARGET_ANGLE - math.atan2(-dy, dx))
    return Roi(cx, cy, size, rotation)


def roi_iou(a: Roi, b: Roi) -> float:
    """IoU of the axis-aligned bounds of two ROIs."""
    ax0, ay0, ax1, ay1 = a.bounds()
    bx0, by0, bx1, by1 = b.bounds()
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0
