"""Landmark model: rotated crop in, 39 landmarks decoded, refined and projected out.

Follows MediaPipe's ``pose_landmark_by_roi_cpu.pbtxt`` and its post-processing graph.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.geometry import sigmoid
from edgepose.types import Roi

INPUT_SIZE = 256
NUM_OUTPUT_LANDMARKS = 39  # 33 body + 2 auxiliary (next ROI) + 4 unused
NUM_BODY = 33
AUX_CENTRE, AUX_SCALE = 33, 34
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5

# Output shapes, used to find each output whatever order a (converted) model lists them in.
SHAPES = {
    "landmarks": (1, NUM_OUTPUT_LANDMARKS * 5),
    "presence": (1, 1),
    "segmentation": (1, INPUT_SIZE, INPUT_SIZE, 1),
    "heatmap": (1, 64, 64, NUM_OUTPUT_LANDMARKS),
    "world": (1, NUM_OUTPUT_LANDMARKS * 3),
}


def preprocess(image: np.ndarray, roi: Roi, color: str) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``roi`` to a (1, 256, 256, 3) float32 RGB tensor in [0, 1] (edge pixels
    replicated, as MediaPipe's ImageToTensor does by default). Also returns the (2, 3)
    crop-to-image affine used."""
    to_image = roi.crop_to_image(INPUT_SIZE)
    crop = cv2.warpAffine(
        image, to_image, (INPUT_SIZE, INPUT_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
    )
    if color == "bgr":
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # 20x faster than crop[..., ::-1].astype
    x = crop.astype(np.float32)
    x *= 1.0 / 255.0
    return x[None], to_image


def refine_with_heatmap(xy: np.ndarray, heatmap: np.ndarray,
                        kernel: int = HEATMAP_KERNEL,
                        min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """Replace each landmark by the sigmoid-weighted mean of its heatmap window.

    xy: (L, 2) in [0, 1] of the crop. heatmap: (H, W, L) logits. A landmark moves only
    when the window's peak confidence reaches ``min_confidence``; windows are clipped at
    the heatmap edge. Like MediaPipe, points left of or above the heatmap are kept as they
    are, and coordinates are truncated toward zero to find the window centre.
    """
    h, w, n = heatmap.shape
    cols = (xy[:, 0] * w).astype(np.int64)
    rows = (xy[:, 1] * h).astype(np.int64)
    inside = (cols >= 0) & (cols < w) & (rows >= 0)
    offsets = np.arange(kernel) - (kernel - 1) // 2
    win_r = rows[:, None] + offsets  # (L, k)
    win_c = cols[:, None] + offsets
    valid = ((win_r >= 0) & (win_r < h))[:, :, None] & ((win_c >= 0) & (win_c < w))[:, None, :]
    r = np.clip(win_r, 0, h - 1)[:, :, None]
    c = np.clip(win_c, 0, w - 1)[:, None, :]
    conf = sigmoid(heatmap[r, c, np.arange(n)[:, None, None]]) * valid  # (L, k, k)
    total = conf.sum(axis=(1, 2))
    peak = conf.max(axis=(1, 2))
    mean_r = (conf * win_r[:, :, None]).sum(axis=(1, 2))
    mean_c = (conf * win_c[:, None, :]).sum(axis=(1, 2))
    refine = inside & (peak >= min_confidence) & (total > 0)
    out = xy.copy()
    safe = np.where(total > 0, total, 1.0)
    out[refine, 0] = mean_c[refine] / w / safe[refine]
    out[refine, 1] = mean_r[refine] / h / safe[refine]
    return out


def decode(
    raw_landmarks: np.ndarray, heatmap: np.ndarray | None, roi: Roi
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks in image pixels.

    raw_landmarks: (1, 195) model output. heatmap: (1, 64, 64, 39) or None to skip the
    refinement. Returns (33, 5) body keypoints x, y, z (pixels), visibility, presence,
    and (2, 2) auxiliary points (x, y) for the next frame's ROI.
    """
    raw = raw_landmarks.reshape(NUM_OUTPUT_LANDMARKS, 5)
    xy = raw[:, :2] / INPUT_SIZE
    if heatmap is not None:
        xy = refine_with_heatmap(xy, heatmap[0])
    to_image = roi.crop_to_image(1)
    xy_img = xy @ to_image[:, :2].T + to_image[:, 2]
    out = np.empty((NUM_BODY, 5), dtype=np.float32)
    out[:, :2] = xy_img[:NUM_BODY]
    out[:, 2] = raw[:NUM_BODY, 2] / INPUT_SIZE * roi.size
    out[:, 3:5] = sigmoid(raw[:NUM_BODY, 3:5])
    return out, xy_img[AUX_CENTRE:AUX_SCALE + 1]


def decode_world(raw_world: np.ndarray, roi: Roi) -> np.ndarray:
    """(33, 3) world landmarks in metres, rotated back by the ROI rotation."""
    world = raw_world.reshape(NUM_OUTPUT_LANDMARKS, 3)[:NUM_BODY].astype(np.float32)
    c, s = np.cos(roi.rotation), np.sin(roi.rotation)
    x, y = world[:, 0].copy(), world[:, 1].copy()
    world[:, 0] = c * x - s * y
    world[:, 1] = s * x + c * y
    return world


def decode_mask(raw_segmentation: np.ndarray, to_image: np.ndarray,
                image_size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 person probability in image pixels from (1, 256, 256, 1) logits."""
    logits = raw_segmentation.reshape(INPUT_SIZE, INPUT_SIZE)
    # to_image maps crop -> image, so it is the forward map of this warp.
    warped = cv2.warpAffine(
        logits, to_image, image_size, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=-100.0,
    )
    return sigmoid(warped).astype(np.float32)
