"""Tiny ONNX models built in code (onnx.helper), with outputs the test controls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests need onnx: pip install onnx")
pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime: pip install onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 13
_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
          np.dtype(np.uint8): TensorProto.UINT8}


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.11
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def constant_model(path: Path, input_shape, outputs: dict[str, np.ndarray],
                   input_dtype=np.float32) -> Path:
    """A model whose outputs are the given arrays whatever the input (each output is
    constant + 0 x mean(input), so the input is really read)."""
    x = helper.make_tensor_value_info("input", _TYPES[np.dtype(input_dtype)], list(input_shape))
    nodes = [helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["xf"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        value = np.asarray(value, np.float32)
        inits.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    return _save(helper.make_graph(nodes, "constant", [x], outs, inits), path)


def affine_model(path: Path) -> Path:
    """input (batch, 3) float32 -> double = 2x + 1 (batch, 3), total = sum (batch, 1)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])
    nodes = [helper.make_node("Mul", ["input", "two"], ["twice"]),
             helper.make_node("Add", ["twice", "one"], ["double"]),
             helper.make_node("ReduceSum", ["input", "axes"], ["total"], keepdims=1)]
    inits = [numpy_helper.from_array(np.array(2, np.float32), "two"),
             numpy_helper.from_array(np.array(1, np.float32), "one"),
             numpy_helper.from_array(np.array([1], np.int64), "axes")]
    outs = [helper.make_tensor_value_info("double", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch", 1])]
    return _save(helper.make_graph(nodes, "affine", [x], outs, inits), path)
