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


def pose_heatmap_model(path: Path, offsets: np.ndarray, input_hw=(256, 192)) -> Path:
    """A stand-in top-down heatmap model that really looks at its input: the image's
    brightness, pooled 4x (heatmaps at a quarter of the input), then keypoint k's map is
    that map shifted by ``offsets[k]`` (dx, dy heatmap cells): its peak sits at the
    brightest spot minus the offset. input (1, 3, H, W) -> heatmaps (1, K, H/4, W/4)."""
    offsets = np.asarray(offsets, np.int64)
    reach = int(np.abs(offsets).max())
    size = 2 * reach + 1
    kernel = np.zeros((len(offsets), 1, size, size), np.float32)
    for k, (dx, dy) in enumerate(offsets):
        kernel[k, 0, reach + dy, reach + dx] = 1.0
    h, w = input_hw
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    nodes = [helper.make_node("ReduceMean", ["input"], ["gray"], axes=[1], keepdims=1),
             helper.make_node("AveragePool", ["gray"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Conv", ["pooled", "kernel"], ["heatmaps"], pads=[reach] * 4)]
    inits = [numpy_helper.from_array(kernel, "kernel")]
    out = helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, len(offsets), h // 4, w // 4])
    return _save(helper.make_graph(nodes, "heatmap", [x], [out], inits), path)


def pose_simcc_model(path: Path, keypoints: int = 17, input_hw=(256, 192)) -> Path:
    """A stand-in RTMPose: SimCC vectors (split ratio 2) whose peaks are the brightest
    column and row of the input, for every keypoint. input (1, 3, H, W) -> simcc_x
    (1, K, 2W), simcc_y (1, K, 2H)."""
    h, w = input_hw
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    nodes = [helper.make_node("ReduceMean", ["input"], ["gray"], axes=[1], keepdims=1)]
    outs = []
    for name, axis, n in (("simcc_x", 2, w), ("simcc_y", 3, h)):
        nodes += [helper.make_node("ReduceMax", ["gray"], [f"{name}_line"], axes=[axis], keepdims=0),
                  helper.make_node("Unsqueeze", [f"{name}_line", "last"], [f"{name}_col"]),
                  helper.make_node("Tile", [f"{name}_col", "twice"], [f"{name}_pairs"]),
                  helper.make_node("Reshape", [f"{name}_pairs", f"{name}_shape"], [f"{name}_one"]),
                  helper.make_node("Tile", [f"{name}_one", "per_keypoint"], [name])]
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, keypoints, 2 * n]))
    inits = [numpy_helper.from_array(np.array([3], np.int64), "last"),
             numpy_helper.from_array(np.array([1, 1, 1, 2], np.int64), "twice"),
             numpy_helper.from_array(np.array([1, 1, 2 * w], np.int64), "simcc_x_shape"),
             numpy_helper.from_array(np.array([1, 1, 2 * h], np.int64), "simcc_y_shape"),
             numpy_helper.from_array(np.array([1, keypoints, 1], np.int64), "per_keypoint")]
    return _save(helper.make_graph(nodes, "simcc", [x], outs, inits), path)


def pose_colour_heatmap_model(path: Path, channel_of_keypoint, input_hw=(256, 192)) -> Path:
    """A stand-in top-down heatmap model whose keypoints are tied to the picture, not to
    the crop: keypoint k's map is input colour channel ``channel_of_keypoint[k]`` pooled
    4x, so its peak is the spot of that colour. input (1, 3, H, W) -> (1, K, H/4, W/4)."""
    h, w = input_hw
    k = len(channel_of_keypoint)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    nodes = [helper.make_node("Gather", ["input", "channels"], ["picked"], axis=1),
             helper.make_node("AveragePool", ["picked"], ["heatmaps"], kernel_shape=[4, 4], strides=[4, 4])]
    inits = [numpy_helper.from_array(np.asarray(channel_of_keypoint, np.int64), "channels")]
    out = helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, k, h // 4, w // 4])
    return _save(helper.make_graph(nodes, "colour_heatmap", [x], [out], inits), path)


def brightness_model(path: Path, input_shape, template: np.ndarray, score_mask: np.ndarray,
                     input_dtype=np.float32, scale: float = 255.0) -> Path:
    """A model whose output is ``template`` with the entries ``score_mask`` marks set to
    the input's mean brightness (/ ``scale``): a bright frame is "a person", a black frame
    "nobody", so the pipeline's empty-frame and gap behaviour can be tested on any
    family's output layout. input ``input_shape`` -> "output" of template's shape."""
    template = np.asarray(template, np.float32)
    x = helper.make_tensor_value_info("input", _TYPES[np.dtype(input_dtype)], list(input_shape))
    nodes = [helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["xf"], ["mean"], keepdims=0),
             helper.make_node("Div", ["mean", "scale"], ["level"]),
             helper.make_node("Mul", ["mask", "level"], ["scores"]),
             helper.make_node("Add", ["base", "scores"], ["output"])]
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
             numpy_helper.from_array(np.where(score_mask, 0, template).astype(np.float32), "base"),
             numpy_helper.from_array(np.asarray(score_mask, np.float32), "mask")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(template.shape))
    return _save(helper.make_graph(nodes, "brightness", [x], [out], inits), path)
