"""Skeleton overlay with OpenCV. Draws on a copy unless asked to draw in place."""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.skeletons import BLAZEPOSE_CONNECTIONS, COCO_CONNECTIONS
from edgepose.types import Pose

LAYOUTS = ("blazepose", "coco")

_PALETTE = [(0, 200, 255), (255, 120, 0), (80, 220, 80), (220, 60, 220), (0, 90, 255),
            (255, 220, 0), (160, 160, 255), (40, 180, 180)]
PALETTE = _PALETTE  # BGR, one colour per track id (the kiosk page draws with the same)


def color_for(track_id: int) -> tuple[int, int, int]:
    return _PALETTE[track_id % len(_PALETTE)] if track_id >= 0 else (255, 255, 255)


def draw_poses(image: np.ndarray, poses: list[Pose], layout: str = "blazepose",
               min_visibility: float = 0.5, in_place: bool = False) -> np.ndarray:
    """Draw each pose's skeleton, keypoints and id on a BGR (or RGB) uint8 image."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    canvas = image if in_place else image.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for pose in poses:
        points = pose.keypoints if layout == "blazepose" else pose.coco17
        edges = BLAZEPOSE_CONNECTIONS if layout == "blazepose" else COCO_CONNECTIONS
        color = color_for(pose.track_id)
        xy = np.round(points[:, :2]).astype(int)
        shown = points[:, 3] >= min_visibility
        for a, b in edges:
            if shown[a] and shown[b]:
                cv2.line(canvas, tuple(xy[a]), tuple(xy[b]), color, thickness, cv2.LINE_AA)
        for (x, y), ok in zip(xy, shown):
            if ok:
                cv2.circle(canvas, (x, y), thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(canvas, (x, y), thickness + 1, color, -1, cv2.LINE_AA)
        if pose.track_id >= 0:
            x, y, _, _ = pose.bbox
            cv2.putText(canvas, f"#{pose.track_id} {pose.score:.2f}", (int(x), max(12, int(y) - 6)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness + 0.2, color, thickness, cv2.LINE_AA)
    return canvas


def draw_overlay(canvas: np.ndarray, fps: float | None, stages_ms: dict[str, float],
                 people: int) -> np.ndarray:
    """Write rolling FPS, people and per-stage ms in the top-left corner, in place."""
    lines = [f"{fps:.1f} FPS  {people} people" if fps else f"{people} people"]
    lines += [f"{name} {ms:.1f} ms" for name, ms in stages_ms.items()]
    scale = max(0.4, canvas.shape[0] / 1200)
    step = int(22 * scale / 0.5)
    for i, text in enumerate(lines):
        y = 10 + step * (i + 1)
        cv2.putText(canvas, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
