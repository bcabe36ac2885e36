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


