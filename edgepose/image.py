"""Frame validation: what the pipeline accepts, and one clear error for anything else."""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.errors import InputError

COLORS = ("bgr", "rgb")


def as_color_image(frame: object, color: str = "bgr") -> tuple[np.ndarray, str]:
    """Return an (H, W, 3) uint8 image and its channel order, "bgr" or "rgb".

    Accepts (H, W) or (H, W, 1) grayscale, (H, W, 3) BGR or RGB, (H, W, 4) BGRA or RGBA,
    all uint8 and of any size. The caller's array is never modified.
    """
    if color not in COLORS:
        raise InputError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array (H, W, 3) uint8, got {type(frame).__name__}")
    if frame.size == 0:
        raise InputError(f"frame is empty (shape {frame.shape}): the camera or video gave no image")
    if frame.dtype != np.uint8:
        raise InputError(
            f"frame must be uint8, got {frame.dtype}: convert it, e.g. "
            "np.clip(frame * 255, 0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR), "rgb"  # grey: either
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise InputError(
            f"frame must be (H, W), (H, W, 3) or (H, W, 4) uint8, got shape {frame.shape}"
        )
    if frame.shape[2] == 4:
        frame = frame[..., :3]
    return np.ascontiguousarray(frame), color
