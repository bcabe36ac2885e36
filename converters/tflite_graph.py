"""TFLite flatbuffer surgery: the graph edits other converters need before their tool runs.

Works on the flatbuffer object API that ``ai-edge-litert`` ships
(``ai_edge_litert.schema_py_generated``), so it needs nothing beyond edgepose's runtime
dependencies. Every edit takes a ``ModelT`` and changes it in place; ``load`` / ``dump``
convert to and from bytes.

Why these edits exist (all seen on Google's BlazePose files):

- ``densify``: the detector stores sparse fp16 weights behind DENSIFY ops, which tf2onnx
  and ai-edge-quantizer reject. The dense values are read back through the interpreter
  *without* its default XNNPACK delegate (with it they come back as garbage).
- ``fold_fp16``: the landmark models keep fp16 weights behind DEQUANTIZE ops. The
  quantizer treats a DEQUANTIZE output as an activation, so weight-only / dynamic recipes
  change nothing and static ones fail, until the weights are plain fp32 constants.
- ``drop_orphans``: folding leaves the fp16 tensors and buffers unreferenced.
- ``add_signature``: MediaPipe's files have no SignatureDef; the quantizer needs
  ``serving_default``.
- ``to_float16``: the inverse of ``fold_fp16`` for a float32 model (weights stored as fp16,
  DEQUANTIZE in front), the layout MediaPipe ships.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgepose.errors import ModelError

log = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"
# Float32 constants smaller than this stay float32 in to_float16 (biases of a few values
# gain nothing and a DEQUANTIZE op costs more than it saves).
FP16_MIN_ELEMENTS = 16


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def load(source: str | os.PathLike | bytes) -> "object":
    """A ``ModelT`` from a .tflite path or its bytes; ModelError when it is not one."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "model bytes"
    else:
        name = os.fspath(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read {name}: {exc.strerror}") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{name} is not a TFLite model (no TFL3 identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # a flatbuffer parser on arbitrary bytes raises anything
        raise ModelError(f"{name} is not a readable TFLite model ({type(exc).__name__}: {exc})") from None
    if not model.subgraphs or not model.buffers:
        raise ModelError(f"{name} is not a readable TFLite model (no subgraph or no buffers)")
    _inline_buffers(model, data)
    return model


def _inline_buffers(model, data: bytes) -> None:
    """Move buffer data stored after the flatbuffer (``offset`` / ``size``, as
    ai-edge-quantizer writes it) into the buffers: ``dump`` writes one flatbuffer only."""
    for buf in model.buffers or []:
        if buf.offset and buf.offset > 1:
            buf.data = np.frombuffer(data, dtype=np.uint8, count=buf.size, offset=buf.offset).copy()
            buf.offset, buf.size = 0, 0


def dump(model) -> bytes:
    """Serialise a ``ModelT`` with the TFL3 file identifier."""
    import flatbuffers

    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# -- names and lookups ---------------------------------------------------------------------------
def op_names(model) -> list[str]:
    """Builtin operator name of each entry of ``model.operatorCodes``."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for code in model.operatorCodes:
        # deprecatedBuiltinCode holds codes < 127 in files written before the field widened
        value = max(code.builtinCode, code.deprecatedBuiltinCode)
        out.append(names.get(value, f"CUSTOM:{code.customCode}" if code.customCode else str(value)))
    return out


def tensor_name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, (bytes, bytearray)) else str(name)


def _type_names() -> dict[int, str]:
    schema = _schema()
    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


NUMPY_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT8": np.int8,
                "UINT8": np.uint8, "INT64": np.int64, "INT16": np.int16, "BOOL": np.bool_}


def constant(model, tensor) -> np.ndarray | None:
    """The constant value of ``tensor`` (shaped), or None when it has no data."""
    buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buf is None or buf.data is None or len(buf.data) == 0:
        return None
    dtype = NUMPY_DTYPES.get(_type_names()[tensor.type])
    if dtype is None:
        return None
    raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _new_buffer(model, values: np.ndarray) -> int:
    schema = _schema()
    buf = schema.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    return len(model.buffers) - 1


def op_counts(model) -> dict[str, int]:
    names = op_names(model)
    counts: dict[str, int] = {}
    for g in model.subgraphs:
        for op in g.operators:
            counts[names[op.opcodeIndex]] = counts.get(names[op.opcodeIndex], 0) + 1
    return counts


# -- edits -----------------------------------------------------------------------------------------
def fold_fp16(model) -> int:
    """Replace every DEQUANTIZE of a constant fp16 tensor by an fp32 constant. Returns the
    number of ops folded. DEQUANTIZE of int8 / uint8 (quantized models) is left alone."""
    fp16 = _schema().TensorType.FLOAT16
    folded = 0
    for g in model.subgraphs:
        keep = []
        for op in g.operators:
            if _is_op(model, op, "DEQUANTIZE") and len(op.inputs) == 1:
                src = g.tensors[op.inputs[0]]
                values = constant(model, src) if src.type == fp16 and src.sparsity is None else None
                if values is not None:
                    out = g.tensors[op.outputs[0]]
                    out.buffer = _new_buffer(model, values.astype(np.float32))
                    folded += 1
                    continue
            keep.append(op)
        g.operators = keep
    return folded


def densify(model, data: bytes) -> int:
    """Replace every DENSIFY op by the dense constant it computes. ``data`` is the
    model's bytes (the values are read through an interpreter). Returns the ops removed."""
    targets = [(gi, op) for gi, g in enumerate(model.subgraphs) for op in g.operators
               if _is_op(model, op, "DENSIFY")]
    if not targets:
        return 0
    if any(gi != 0 for gi, _ in targets):
        raise ModelError("DENSIFY outside the main subgraph is not supported")
    dense = _dense_values(data, [op.outputs[0] for _, op in targets])
    g = model.subgraphs[0]
    for _, op in targets:
        out = g.tensors[op.outputs[0]]
        out.buffer = _new_buffer(model, dense[op.outputs[0]])
    removed = {id(op) for _, op in targets}
    g.operators = [op for op in g.operators if id(op) not in removed]
    return len(targets)


def _dense_values(data: bytes, tensor_indices: list[int]) -> dict[int, np.ndarray]:
    """Values of ``tensor_indices`` after one invoke on zeros, with the plain builtin
    kernels: XNNPACK returns garbage for a DENSIFY output it has taken over."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=data, num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
    interp.invoke()
    return {i: interp.get_tensor(i).copy() for i in tensor_indices}


def drop_orphans(model) -> tuple[int, int]:
    """Remove tensors no op, input, output or signature uses, then buffers no tensor or
    metadata entry uses (buffer 0, the empty sentinel, stays). Returns (tensors, buffers)
    removed."""
    dropped_tensors = 0
    for gi, g in enumerate(model.subgraphs):
        used = set(int(i) for i in _as_list(g.inputs)) | set(int(i) for i in _as_list(g.outputs))
        for op in g.operators:
            used |= {int(i) for i in _as_list(op.inputs) if i >= 0}
            used |= {int(i) for i in _as_list(op.outputs) if i >= 0}
            used |= {int(i) for i in _as_list(op.intermediates) if i >= 0}
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == gi:
                used |= {m.tensorIndex for m in (sig.inputs or []) + (sig.outputs or [])}
        order = sorted(used)
        remap = {old: new for new, old in enumerate(order)}
        dropped_tensors += len(g.tensors) - len(order)
        g.tensors = [g.tensors[i] for i in order]
        g.inputs = [remap[int(i)] for i in _as_list(g.inputs)]
        g.outputs = [remap[int(i)] for i in _as_list(g.outputs)]
        for op in g.operators:
            op.inputs = [remap[int(i)] if i >= 0 else -1 for i in _as_list(op.inputs)]
            op.outputs = [remap[int(i)] if i >= 0 else -1 for i in _as_list(op.outputs)]
            if op.intermediates is not None:
                op.intermediates = [remap[int(i)] for i in _as_list(op.intermediates)]
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == gi:
                for m in (sig.inputs or []) + (sig.outputs or []):
                    m.tensorIndex = remap[m.tensorIndex]
    used_buffers = {0} | {t.buffer for g in model.subgraphs for t in g.tensors}
    used_buffers |= {m.buffer for m in model.metadata or []}
    order = sorted(b for b in used_buffers if b < len(model.buffers))
    remap = {old: new for new, old in enumerate(order)}
    dropped_buffers = len(model.buffers) - len(order)
    model.buffers = [model.buffers[i] for i in order]
    for g in model.subgraphs:
        for t in g.tensors:
            t.buffer = remap[t.buffer]
    for m in model.metadata or []:
        m.buffer = remap[m.buffer]
    return dropped_tensors, dropped_buffers


def add_signature(model, key: str = SERVING_DEFAULT) -> bool:
    """Give subgraph 0 a signature ``key`` over its inputs and outputs, named after the
    tensors. Returns False (and changes nothing) when the model already has signatures."""
    if model.signatureDefs:
        return False
    schema = _schema()
    g = model.subgraphs[0]

    def tensor_map(index: int):
        m = schema.TensorMapT()
        m.name = tensor_name(g.tensors[index]).encode()
        m.tensorIndex = int(index)
        return m

    sig = schema.SignatureDefT()
    sig.signatureKey = key.encode()
    sig.subgraphIndex = 0
    sig.inputs = [tensor_map(i) for i in _as_list(g.inputs)]
    sig.outputs = [tensor_map(i) for i in _as_list(g.outputs)]
    model.signatureDefs = [sig]
    return True


def reorder_outputs(model, names: list[str]) -> None:
    """Make subgraph 0 list its outputs in the order of ``names`` (tensor names). Tools
    that rebuild a graph (onnx2tf's quantized export) list outputs in another order, and
    consumers that bind outputs by index (MediaPipe's graphs) then read the wrong tensor."""
    g = model.subgraphs[0]
    by_name = {tensor_name(g.tensors[i]): int(i) for i in _as_list(g.outputs)}
    missing = [n for n in names if n not in by_name]
    if missing or len(names) != len(by_name):
        raise ModelError(f"cannot reorder outputs to {names}: the model's outputs are "
                         f"{sorted(by_name)}")
    g.outputs = [by_name[n] for n in names]


def to_float16(model, min_elements: int = FP16_MIN_ELEMENTS) -> int:
    """Store float32 constants of at least ``min_elements`` values as fp16 behind a
    DEQUANTIZE op (what the TFLite converter's float16 mode writes). Returns the number of
    constants converted."""
    schema = _schema()
    g = model.subgraphs[0]
    code = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
    consumers: dict[int, int] = {}
    for op in g.operators:
        for i in _as_list(op.inputs):
            if i >= 0:
                consumers[int(i)] = consumers.get(int(i), 0) + 1
    new_ops = []
    converted = 0
    for index, tensor in enumerate(g.tensors):
        if tensor.type != schema.TensorType.FLOAT32 or index not in consumers:
            continue
        values = constant(model, tensor)
        if values is None or values.size < min_elements:
            continue
        half = schema.TensorT()
        half.name = tensor.name + b"_fp16" if isinstance(tensor.name, bytes) else f"{tensor.name}_fp16"
        half.shape = tensor.shape
        half.type = schema.TensorType.FLOAT16
        half.buffer = _new_buffer(model, values.astype(np.float16))
        g.tensors.append(half)
        tensor.buffer = 0  # now computed by the DEQUANTIZE below
        op = schema.OperatorT()
        op.opcodeIndex = code
        op.inputs = [len(g.tensors) - 1]
        op.outputs = [index]
        new_ops.append(op)
        converted += 1
    g.operators = new_ops + list(g.operators)
    drop_orphans(model)
    return converted


def _opcode_index(model, builtin: int) -> int:
    schema = _schema()
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _is_op(model, op, name: str) -> bool:
    schema = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode) == getattr(schema.BuiltinOperator, name)


def _as_list(values) -> list[int]:
    if values is None:
        return []
    return [int(v) for v in values]


# -- the whole preparation ------------------------------------------------------------------------
def prepare_for_tools(data: bytes) -> tuple[bytes, dict]:
    """Densify, fold fp16 weights, drop orphans and add ``serving_default``: the form
    ai-edge-quantizer and tf2onnx accept. Returns the new bytes and what was done."""
    model = load(data)
    done = {"densified": densify(model, data), "folded_fp16": fold_fp16(model)}
    done["dropped_tensors"], done["dropped_buffers"] = drop_orphans(model)
    done["signature_added"] = add_signature(model)
    log.info("prepared model: %s", done)
    return dump(model), done
