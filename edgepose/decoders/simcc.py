"""SimCC decoding (RTMPose, top-down): per keypoint, one classification vector
over x and one over y, each ``split_ratio`` bins per input pixel.

Tensors (two outputs, found by shape): simcc_x (1, K, W * split_ratio) and simcc_y
(1, K, H * split_ratio), e.g. (1, 17, 384) and (1, 17, 512) for RTMPose-m 256x192 with
split ratio 2.0. Values: raw logits as mmpose/rtmlib exports leave them.
"""

from __future__ import annotations

import numpy as np

from edgepose.geometry import apply_transform

SPLIT_RATIO = 2.0  # RTMPose's simcc_split_ratio


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _as_kn(v: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 2:
        raise ValueError(f"{name} must be (1, K, bins) or (K, bins), got {v.shape}")
    return v


def decode(simcc_x: np.ndarray, simcc_y: np.ndarray, to_image: np.ndarray,
           split_ratio: float = SPLIT_RATIO, softmax: bool = False) -> np.ndarray:
    """Keypoints in image pixels from one person's SimCC vectors.

    simcc_x: (1, K, Wx) or (K, Wx); simcc_y: (1, K, Hy) or (K, Hy).
    to_image: (2, 3) affine from model-input pixels to image pixels.
    softmax: turn the logits into probabilities first, so the confidence is in [0, 1]
        (RTMPose and rtmlib score the raw maxima; thresholds tuned there assume that).
    Returns (K, 3) float32 x, y in image pixels and the confidence: the smaller of the x
    and y maxima, as mmpose's ``get_simcc_maximum``.
    """
    sx, sy = _as_kn(simcc_x, "simcc_x"), _as_kn(simcc_y, "simcc_y")
    if sx.shape[0] != sy.shape[0]:
        raise ValueError(f"simcc_x and simcc_y must have the same K, got {sx.shape} and {sy.shape}")
    if split_ratio <= 0:
        raise ValueError(f"split_ratio must be > 0, got {split_ratio}")
    if softmax:
        sx, sy = _softmax(sx), _softmax(sy)
    ix, iy = sx.argmax(axis=1), sy.argmax(axis=1)
    k = np.arange(sx.shape[0])
    conf = np.minimum(sx[k, ix], sy[k, iy])
    xy = np.stack([ix, iy], axis=1) / split_ratio
    out = np.empty((sx.shape[0], 3), dtype=np.float32)
    out[:, :2] = apply_transform(xy, to_image)
    out[:, 2] = conf
    return out
