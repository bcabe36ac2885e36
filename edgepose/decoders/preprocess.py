"""Model input as data: size, channel order, colour order, normalisation and border, so a
user's model is described by flags (``--input-size 256x192 --normalize imagenet``), not code.

``make_input`` warps the image with the same (2, 3) ``to_image`` affine the decoders
take, so preprocessing and decoding always agree.
"""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np

from edgepose.backends import TensorSpec

# name -> (mean, std) applied to RGB 0..255 values: x = (pixel - mean) / std.
NORMALIZATIONS = {
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # mmpose / timm
    "unit": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),  # [0, 1]: YOLO, BlazePose landmarks
    "signed": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),  # [-1, 1]: BlazePose detector
    "raw": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # 0..255 as float or int: MoveNet, CenterNet
}


def parse_size(text: str) -> tuple[int, int]:
    """'256x192' -> (width 192, height 256). HEIGHTxWIDTH, as model names (rtmpose-m
    ...-256x192) and NCHW shapes write it; a single number is a square."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise ValueError(f"input size must be HEIGHTxWIDTH (e.g. 256x192) or one number, got {text!r}")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if h < 1 or w < 1:
        raise ValueError(f"input size must be positive, got {text!r}")
    return w, h


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How to turn an image region into the model's input tensor.

    size: (width, height) in pixels. channels: "first" (N, 3, H, W) or "last" (N, H, W, 3).
    color: "rgb" or "bgr" channel order. normalize: a NORMALIZATIONS name. dtype: numpy
    dtype name of the tensor (float32, int32, uint8...). border: fill value outside the
    image (0; YOLO pads with 114).
    """

    size: tuple[int, int]
    channels: str = "first"
    color: str = "rgb"
    normalize: str = "imagenet"
    dtype: str = "float32"
    border: float = 0.0

    def __post_init__(self) -> None:
        if self.channels not in ("first", "last"):
            raise ValueError(f"channels must be 'first' or 'last', got {self.channels!r}")
        if self.color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', got {self.color!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {self.normalize!r}")
        if min(self.size) < 1:
            raise ValueError(f"size must be positive (width, height), got {self.size}")
        np.dtype(self.dtype)  # fails fast on a bad name

    @classmethod
    def from_tensor(cls, spec: TensorSpec, **fields) -> InputSpec:
        """Size, channel order and dtype read from a 4-D image input (1, 3, H, W) or
        (1, H, W, 3); ``fields`` override them (needed when the size is dynamic, -1)."""
        shape = tuple(spec.shape)
        if len(shape) != 4:
            raise ValueError(f"input {spec} is not a 4-D image tensor")
        if shape[1] == 3 and shape[3] != 3:
            channels, (h, w) = "first", shape[2:4]
        elif shape[3] == 3:
            channels, (h, w) = "last", shape[1:3]
        else:
            raise ValueError(f"input {spec}: no axis of 3 colour channels at 1 or 3")
        base = {"size": (w, h), "channels": channels, "dtype": np.dtype(spec.dtype).name}
        base.update(fields)
        if min(base["size"]) < 1:
            raise ValueError(f"input {spec} has a dynamic size: give it (--input-size HxW)")
        return cls(**base)


def make_input(image: np.ndarray, to_image: np.ndarray, spec: InputSpec,
               image_color: str = "rgb") -> np.ndarray:
    """(1, 3, H, W) or (1, H, W, 3) tensor of ``spec`` from a uint8 (H, W, 3) image.

    to_image: (2, 3) affine from input pixels to image pixels (the region to sample).
    The caller's image is not changed."""
    w, h = spec.size
    crop = cv2.warpAffine(image, to_image, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(spec.border,) * 3)
    if image_color != spec.color:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # the same swap both ways
    mean, std = NORMALIZATIONS[spec.normalize]
    order = slice(None) if spec.color == "rgb" else slice(None, None, -1)
    x = (crop.astype(np.float32) - np.asarray(mean, np.float32)[order]) / np.asarray(std, np.float32)[order]
    if spec.channels == "first":
        x = x.transpose(2, 0, 1)
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iu":
        x = np.rint(x)
    return np.ascontiguousarray(x[None], dtype=dtype)
