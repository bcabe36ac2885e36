"""Heatmap decoding (SimpleBaseline, HRNet, ViTPose, LiteHRNet...): one map per keypoint,
argmax, sub-pixel refinement, then heatmap -> input -> image.

Tensor: (1, K, H, W) or (K, H, W) channels first (PyTorch / ONNX exports), or
(1, H, W, K) / (H, W, K) channels last (TFLite). H, W are usually input / 4 (e.g. 64x48
for a 256x192 input). Values: the model's raw output (MSE-trained Gaussians, peak ~1).

Refinement (``refine``):
- "quarter": SimpleBaseline / mmpose ``refine_keypoints``: move 0.25 px towards the
  higher neighbour on each axis.
- "dark": DARK (Zhang et al. 2020, mmpose ``refine_keypoints_dark``): Gaussian-blur the
  map, take its log, and step to the maximum of the second-order Taylor expansion. Exact
  for a Gaussian peak away from the border.
- "none": the integer argmax.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.geometry import apply_transform

REFINEMENTS = ("dark", "quarter", "none")
DARK_BLUR_KERNEL = 11  # mmpose's default for 64x48 maps (sigma 2)


def to_khw(heatmaps: np.ndarray, channels: str = "first") -> np.ndarray:
    """(K, H, W) float32 view of (1, K, H, W) / (K, H, W) (``channels="first"``) or
    (1, H, W, K) / (H, W, K) (``channels="last"``)."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim == 4:
        if hm.shape[0] != 1:
            raise ValueError(f"heatmaps must have batch 1, got shape {hm.shape}")
        hm = hm[0]
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must be (1, K, H, W), (K, H, W) or channels-last, got {hm.shape}")
    if channels == "first":
        return hm
    if channels == "last":
        return np.ascontiguousarray(np.moveaxis(hm, -1, 0))
    raise ValueError(f"channels must be 'first' or 'last', got {channels!r}")


def maxima(hm: np.ndarray) -> np.ndarray:
    """(K, 3) float32 x, y (integer heatmap pixels) and value of each map's maximum.
    hm: (K, H, W)."""
    k, h, w = hm.shape
    flat = hm.reshape(k, -1)
    idx = flat.argmax(axis=1)
    return np.stack([idx % w, idx // w, flat[np.arange(k), idx]], axis=1).astype(np.float32)


def refine_quarter(points: np.ndarray, hm: np.ndarray) -> np.ndarray:
    """Shift each (K, 3) argmax point 0.25 px towards its higher neighbour per axis (an
    axis whose neighbours fall outside the map is left alone). Returns a new array."""
    k, h, w = hm.shape
    out = points.copy()
    x, y = points[:, 0].astype(np.int64), points[:, 1].astype(np.int64)
    ks = np.arange(k)
    in_x = (x > 0) & (x < w - 1)
    in_y = (y > 0) & (y < h - 1)
    right, left = np.minimum(x + 1, w - 1), np.maximum(x - 1, 0)
    down, up = np.minimum(y + 1, h - 1), np.maximum(y - 1, 0)
    dx = np.where(in_x, hm[ks, y, right] - hm[ks, y, left], 0.0)
    dy = np.where(in_y, hm[ks, down, x] - hm[ks, up, x], 0.0)
    out[:, 0] += 0.25 * np.sign(dx)
    out[:, 1] += 0.25 * np.sign(dy)
    return out


def _blur(hm: np.ndarray, kernel: int) -> np.ndarray:
    """mmpose's DARK modulation: zero-padded Gaussian blur, rescaled to the original peak."""
    out = np.empty_like(hm)
    for i, m in enumerate(hm):
        peak = m.max()
        b = cv2.GaussianBlur(m, (kernel, kernel), 0, borderType=cv2.BORDER_CONSTANT)
        out[i] = b * (peak / b.max()) if b.max() > 0 else b
    return out


def refine_dark(points: np.ndarray, hm: np.ndarray, blur_kernel: int | None = DARK_BLUR_KERNEL) -> np.ndarray:
    """DARK sub-pixel refinement of (K, 3) argmax points on (K, H, W) maps. Points within 2
    px of the border, or where the Hessian is singular, stay as they are. ``blur_kernel``
    None skips the blur (for maps that are already smooth). Returns a new array."""
    if blur_kernel is not None and (blur_kernel < 1 or blur_kernel % 2 == 0):
        raise ValueError(f"blur_kernel must be a positive odd number, got {blur_kernel}")
    k, h, w = hm.shape
    logs = np.log(np.maximum(_blur(hm, blur_kernel) if blur_kernel else hm, 1e-10))
    out = points.copy()
    x, y = points[:, 0].astype(np.int64), points[:, 1].astype(np.int64)
    ok = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    ks, x, y = np.arange(k)[ok], x[ok], y[ok]

    def at(dy: int, dx: int) -> np.ndarray:
        return logs[ks, y + dy, x + dx]

    gx = 0.5 * (at(0, 1) - at(0, -1))
    gy = 0.5 * (at(1, 0) - at(-1, 0))
    hxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    hyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    hxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = hxx * hyy - hxy ** 2
    good = det != 0
    safe = np.where(good, det, 1.0)
    # offset = -H^-1 g, with the 2x2 inverse written out
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(-hxy * gx + hxx * gy) / safe
    out[ks[good], 0] += ox[good]
    out[ks[good], 1] += oy[good]
    return out


def decode(heatmaps: np.ndarray, to_image: np.ndarray, input_size: tuple[int, int],
           channels: str = "first", refine: str = "dark",
           blur_kernel: int | None = DARK_BLUR_KERNEL, udp: bool = False) -> np.ndarray:
    """Keypoints in image pixels from one person's heatmaps.

    heatmaps: (1, K, H, W) / (K, H, W), or channels last with ``channels="last"``.
    to_image: (2, 3) affine from model-input pixels to image pixels (for a top-down
        model, :func:`~edgepose.geometry.box_crop_transform`).
    input_size: the model input (width, height) in pixels.
    udp: the heatmap corners align with the input corners (mmpose UDP codecs:
        input = heatmap * (input - 1) / (map - 1)); default: input = heatmap * input / map.
    Returns (K, 3) float32: x, y in image pixels, the heatmap peak value as confidence.
    """
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {REFINEMENTS}, got {refine!r}")
    hm = to_khw(heatmaps, channels)
    points = maxima(hm)
    if refine == "dark":
        points = refine_dark(points, hm, blur_kernel)
    elif refine == "quarter":
        points = refine_quarter(points, hm)
    _, h, w = hm.shape
    in_w, in_h = input_size
    if udp:
        scale = np.array([(in_w - 1) / (w - 1), (in_h - 1) / (h - 1)])
    else:
        scale = np.array([in_w / w, in_h / h])
    out = points.copy()
    out[:, :2] = apply_transform(points[:, :2] * scale, to_image)
    return out
