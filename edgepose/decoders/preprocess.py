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
    return to_tensor(crop, spec, image_color)


def to_tensor(crop: np.ndarray, spec: InputSpec, crop_color: str | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
    """(1, 3, H, W) or (1, H, W, 3) tensor of ``spec`` from a (H, W, 3) uint8 crop in
    ``crop_color`` order (default: already ``spec.color``). A float tensor is written in
    one pass per step straight into ``out`` (or a new array), channel swap and layout
    included: no intermediate copies."""
    if crop_color is not None and crop_color != spec.color:
        crop = crop[..., ::-1]
    mean, std = NORMALIZATIONS[spec.normalize]
    order = slice(None) if spec.color == "rgb" else slice(None, None, -1)
    mean = np.asarray(mean, np.float32)[order]
    std = np.asarray(std, np.float32)[order]
    dtype = np.dtype(spec.dtype)
    if dtype.kind != "f":
        x = (crop.astype(np.float32) - mean) / std
        x = np.rint(x.transpose(2, 0, 1) if spec.channels == "first" else x)
        return np.ascontiguousarray(x[None], dtype=dtype)
    h, w = crop.shape[:2]
    shape = (1, 3, h, w) if spec.channels == "first" else (1, h, w, 3)
    if out is None or out.shape != shape or out.dtype != dtype:
        out = np.empty(shape, dtype)
    src, dst = crop, out[0]
    if spec.channels == "first":  # the channel axis of mean / std goes first too
        src, mean, std = crop.transpose(2, 0, 1), mean[:, None, None], std[:, None, None]
    if spec.normalize == "unit":  # x / 255 in one pass
        np.divide(src, np.float32(255.0), out=dst, casting="unsafe")
    else:  # (x - mean) / std, as (crop - mean) / std computed in float32
        np.subtract(src, mean, out=dst, casting="unsafe")
        np.divide(dst, std, out=dst)
    return out


class Letterbox:
    """YOLO's letterbox, as Ultralytics' ``LetterBox`` makes it: the image resized (one
    cv2.resize, INTER_LINEAR) to fit ``spec.size`` with its aspect kept, each side rounded
    to whole pixels, centred with the border rounded as Ultralytics rounds it, on
    ``spec.border``. With ``stride`` (a model that takes any input size) the canvas is
    only padded to the next multiple of it, as Ultralytics' ``auto`` (rect) letterbox: a
    16:9 frame into 640x640 becomes 640x384. One per stream: the canvas and the tensor are
    kept between frames of the same size (the border is drawn once, nothing is allocated
    per frame), so the tensor returned is overwritten by the next call."""

    def __init__(self, spec: InputSpec, stride: int | None = None) -> None:
        self.spec, self.stride = spec, stride
        self._canvas = np.full((spec.size[1], spec.size[0], 3), spec.border, np.uint8)
        self._placed: tuple | None = None  # where the last image went: (left, top, w, h)
        self._out: np.ndarray | None = None

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the last tensor made."""
        return self._canvas.shape[:2]

    def __call__(self, image: np.ndarray, image_color: str = "rgb") -> tuple[np.ndarray, np.ndarray]:
        """(tensor, to_image): the input tensor and the (2, 3) affine from input pixels to
        image pixels (Ultralytics' ``scale_boxes``: per-axis gains of the rounded size)."""
        w, h = self.spec.size
        ih, iw = image.shape[:2]
        r = min(w / iw, h / ih)
        nw, nh = max(round(iw * r), 1), max(round(ih * r), 1)
        if self.stride:
            w, h = nw + (w - nw) % self.stride, nh + (h - nh) % self.stride
        left, top = round((w - nw) / 2 - 0.1), round((h - nh) / 2 - 0.1)
        placed = (left, top, nw, nh)
        if placed != self._placed:  # another frame size: redraw the border
            if self._canvas.shape[:2] != (h, w):
                self._canvas = np.empty((h, w, 3), np.uint8)
            self._canvas[:] = self.spec.border
            self._placed = placed
        resized = image if (nw, nh) == (iw, ih) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        self._canvas[top:top + nh, left:left + nw] = resized
        self._out = to_tensor(self._canvas, self.spec, image_color, self._out)
        to_image = np.array([[iw / nw, 0.0, -left * iw / nw], [0.0, ih / nh, -top * ih / nh]])
        return self._out, to_image
