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
from pathlib import Path

from edgepose.model_metadata import (  # noqa: F401  (re-exported for converters)
    FORMAT_VERSION, METADATA_KEY, TASKS, read_tflite_metadata, tflite_metadata_entries,
)

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


def read_metadata(path: str | os.PathLike) -> dict | None:
    """edgepose metadata of a converted .tflite or .onnx file, or None when it has none
    (without running it; a model that is run has it as ``open_model(path).metadata``)."""
    from edgepose.backends import engine_for

    if engine_for(path) == "onnxruntime":
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
