"""TFLite -> ONNX with tf2onnx (the ``convert-tf`` extra).

tf2onnx reads TFLite flatbuffers directly, but rejects the detector's DENSIFY ops (its
sparse fp16 weights); tflite2onnx does too. The source is therefore prepared first
(``converters.tflite_graph.prepare_for_tools``: dense values read through the
interpreter without XNNPACK, fp16 weights folded to fp32), which also makes the ONNX
graph plain fp32. The model keeps its NHWC input (``inputs_as_nchw`` is not used), so
the same crops feed both. Node names from TFLite contain ';', which breaks a later
SavedModel export (onnx2tf) and some viewers: they are sanitised here.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

from converters import metadata, tflite_graph, tools
from edgepose.errors import BackendError, ModelError

log = logging.getLogger(__name__)

DEFAULT_OPSET = 13
_UNSAFE = re.compile(r"[^A-Za-z0-9_./:-]")


def sanitize_names(model) -> int:
    """Replace characters other than ``[A-Za-z0-9_./:-]`` in node and value names of an
    ``onnx.ModelProto`` (in place), keeping graph inputs and outputs as they are.
    Returns how many names changed."""
    keep = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    renamed: dict[str, str] = {}

    def fix(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in renamed:
            renamed[name] = _UNSAFE.sub("_", name)
        return renamed[name]

    for node in model.graph.node:
        node.name = fix(node.name) if node.name else node.name
        node.input[:] = [fix(n) for n in node.input]
        node.output[:] = [fix(n) for n in node.output]
    for init in model.graph.initializer:
        init.name = fix(init.name)
    for info in model.graph.value_info:
        info.name = fix(info.name)
    return sum(1 for a, b in renamed.items() if a != b)


def tflite_to_onnx(source: str | os.PathLike, out: str | os.PathLike,
                   opset: int = DEFAULT_OPSET) -> Path:
    """Convert ``source`` (.tflite) to ``out`` (.onnx) with edgepose metadata."""
    tools.require("tf2onnx")
    tools.require("onnx")
    import onnx
    from tf2onnx import convert

    from converters.quantize import output_roles, task_of
    from edgepose.fileio import atomic_write
    from edgepose.models import sha256_of

    data = Path(source).read_bytes()
    prepared, facts = tflite_graph.prepare_for_tools(data)
    model_t = tflite_graph.load(prepared)
    with tempfile.TemporaryDirectory(prefix="edgepose-onnx-") as tmp:
        prepared_path = Path(tmp) / "prepared.tflite"
        prepared_path.write_bytes(prepared)
        try:
            onnx_model, _ = convert.from_tflite(str(prepared_path), opset=opset)
        except Exception as exc:  # tf2onnx raises bare Exceptions for unsupported ops
            raise BackendError(f"tf2onnx could not convert {source}: {type(exc).__name__}: {exc}") from None
    facts["sanitized_names"] = sanitize_names(onnx_model)
    info = metadata.describe(source, sha256_of(source), "onnx-float32", task_of(model_t),
                             f"convert to-onnx (tf2onnx {tools.tool_version('tf2onnx')}, opset {opset})",
                             outputs=output_roles(model_t), extra={"conversion": facts})
    metadata.set_onnx_metadata(onnx_model, info)
    try:
        onnx.checker.check_model(onnx_model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"tf2onnx wrote an invalid ONNX model for {source}: {exc}") from None
    with atomic_write(out) as tmp:
        tmp.write_bytes(onnx_model.SerializeToString())
    log.info("wrote %s (%s)", out, facts)
    return Path(out)
