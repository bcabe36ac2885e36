"""edgepose metadata in converted models: what a file was made from and how to feed it.

A converted TFLite model carries one entry named ``edgepose`` in the flatbuffer's
``metadata`` table (the same table that holds ``min_runtime_version`` and MediaPipe's
``TFLITE_METADATA``); its buffer is UTF-8 JSON. An ONNX model carries the same JSON in
``metadata_props`` under the key ``edgepose``. Example::

    {"format": 1, "created_by": "edgepose 0.1.0 convert quantize",
     "source": {"file": "pose_landmark_heavy.tflite", "sha256": "59e4..."},
     "variant": "int8-mixed", "task": "blazepose-landmark",
     "input": {"layout": "NHWC", "color": "RGB", "dtype": "float32", "shape": [1, 256, 256, 3],
               "range": [0.0, 1.0], "mean": 0.0, "std": 255.0},
     "keypoints": "blazepose-39", "outputs": {"landmarks": "Identity", ...}}

``read_tflite_metadata`` walks the flatbuffer by hand (no schema, no third-party package)
so the runtime can read it for free; the writers need ``ai-edge-litert``'s schema.
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
}


def describe(source: str | os.PathLike, source_sha256: str, variant: str, task: str | None,
             tool: str, outputs: dict[str, str] | None = None, extra: dict | None = None) -> dict:
    """The metadata dict for a conversion of ``source`` into ``variant``."""
    from edgepose import __version__

    info = {"format": FORMAT_VERSION, "created_by": f"edgepose {__version__} {tool}",
            "source": {"file": Path(source).name, "sha256": source_sha256},
            "variant": variant, "task": task}
    if task in TASKS:
        info.update(json.loads(json.dumps(TASKS[task])))
    if outputs:
        info["outputs"] = outputs
    if extra:
        info.update(extra)
    return info


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


def read_tflite_metadata(source: str | os.PathLike | bytes) -> dict | None:
    """The edgepose metadata of a .tflite file (path or bytes), or None when it has none.

    Needs nothing beyond the standard library; reads the whole file (models are small).
    ValueError when ``source`` is not a TFLite model or the entry is not valid JSON.
    """
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    raw = tflite_metadata_entries(data).get(METADATA_KEY)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the {METADATA_KEY!r} metadata entry is not JSON: {exc}") from None


def read_metadata(path: str | os.PathLike) -> dict | None:
    """edgepose metadata of a converted .tflite or .onnx file, or None when it has none."""
    if str(path).endswith(".onnx"):
        return read_onnx_metadata(path)
    return read_tflite_metadata(path)


# -- TFLite: writing ------------------------------------------------------------------------------
def set_tflite_metadata(model, info: dict) -> None:
    """Add (or replace) the edgepose entry in a ``ModelT`` (see converters.tflite_graph)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    payload = np.frombuffer(json.dumps(info, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_KEY:
            model.buffers[entry.buffer].data = payload
            return
    buf = schema.BufferT()
    buf.data = payload
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]


def with_tflite_metadata(data: bytes, info: dict) -> bytes:
    """``data`` (a .tflite model) with the edgepose entry set to ``info``."""
    from converters import tflite_graph

    model = tflite_graph.load(data)
    set_tflite_metadata(model, info)
    return tflite_graph.dump(model)


# -- ONNX ---------------------------------------------------------------------------------------
def set_onnx_metadata(model, info: dict) -> None:
    """Set the edgepose entry of an ``onnx.ModelProto``'s metadata_props."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = json.dumps(info, sort_keys=True)
            return
    prop = model.metadata_props.add()
    prop.key, prop.value = METADATA_KEY, json.dumps(info, sort_keys=True)


def read_onnx_metadata(path: str | os.PathLike) -> dict | None:
    """edgepose metadata of an .onnx file (needs ``onnx``), or None."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None
