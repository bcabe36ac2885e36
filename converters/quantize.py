"""TFLite -> quantized TFLite: float16, and int8 with Google's ai-edge-quantizer.

No TensorFlow: the source is prepared by flatbuffer surgery (``converters.tflite_graph``:
densify, fp16 weights folded to fp32, orphans dropped, ``serving_default`` added),
otherwise the quantizer silently changes nothing (weight-only, dynamic) or fails
(static) on MediaPipe's files. Variants, safest first:

============  ====================================================  ===========
variant       what                                                  calibration
============  ====================================================  ===========
float32       the prepared source (fp16 weights unpacked)           no
float16       weights stored fp16 behind DEQUANTIZE (built here)    no
int8-weight   int8 weights, float compute, output heads float       no
int8-dynamic  int8 weights, activations quantized at run time       no
int8-mixed    static int8, but the ops next to the outputs float    yes
int8-static   int8 weights and activations                          yes
============  ====================================================  ===========

``float16`` needs nothing beyond edgepose itself; the int8 variants need the
``convert-quant`` extra (``ai-edge-quantizer``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np

from converters import metadata, tflite_graph, tools
from edgepose.errors import BackendError, ModelError
from edgepose.fileio import atomic_write

log = logging.getLogger(__name__)

# How many ops back from each model output stay float in int8-mixed. Two keeps the last
# convolution of every head and the op feeding it: on heavy that halved the int8 error.
FLOAT_TAIL_DEPTH = 2
# int8-weight keeps at least this many ops back from each output float. Per-channel int8
# weights are too coarse for the heads: heavy's landmark conv has one input channel whose
# weights are ~150x the median in every output channel, so the rest round to a step or
# two (that conv alone moved heavy's landmarks 12 px), and on full the last 1x1 conv
# before the heads flipped presence on 8 of 52 crops. Depth 4 (the heads and the conv
# feeding them, +1.3 MB): heavy 13.3 -> 3.7 px, full 3.55 -> 2.8 px, presence kept.
WEIGHT_ONLY_FLOAT_TAIL_DEPTH = 4


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    help: str
    needs_calibration: bool
    tool: str | None  # key of converters.tools.TOOLS, None for edgepose alone


VARIANTS = {v.name: v for v in (
    Variant("float32", "fp16 weights unpacked to fp32 (the prepared source)", False, None),
    Variant("float16", "weights stored as fp16 (half the size of float32)", False, None),
    Variant("int8-weight", "int8 weights, float compute: small, accurate, float speed", False,
            "ai-edge-quantizer"),
    Variant("int8-dynamic", "int8 weights, activations quantized at run time", False,
            "ai-edge-quantizer"),
    Variant("int8-mixed", "static int8 with the ops next to the outputs kept float", True,
            "ai-edge-quantizer"),
    Variant("int8-static", "int8 weights and activations, calibrated", True, "ai-edge-quantizer"),
)}
# The variant to offer when one fails the accuracy gate: the next safer one.
FALLBACK = {"int8-static": "int8-mixed", "int8-mixed": "int8-dynamic",
            "int8-dynamic": "int8-weight", "int8-weight": "float16", "float16": "float32"}


def task_of(model) -> str | None:
    """'blazepose-landmark' / 'blazepose-detector' from a ModelT's input and output shapes."""
    g = model.subgraphs[0]
    ins = [list(g.tensors[i].shape) for i in g.inputs]
    outs = sorted(list(g.tensors[i].shape) for i in g.outputs)
    if ins == [[1, 256, 256, 3]] and [1, 195] in outs and [1, 1] in outs:
        return "blazepose-landmark"
    if ins == [[1, 224, 224, 3]] and [1, 2254, 12] in outs:
        return "blazepose-detector"
    return None


def output_roles(model) -> dict[str, str]:
    """BlazePose output role -> tensor name (by shape), empty for other models."""
    from edgepose.blazepose import landmarks as lmk

    g = model.subgraphs[0]
    by_shape = {tuple(int(d) for d in g.tensors[i].shape): tflite_graph.tensor_name(g.tensors[i])
                for i in g.outputs}
    return {role: by_shape[shape] for role, shape in lmk.SHAPES.items() if shape in by_shape}


def float_tail(model, depth: int = FLOAT_TAIL_DEPTH) -> list[str]:
    """Output tensor names of the ops within ``depth`` ops of a model output (walking back
    through producers): the layers int8-mixed keeps float."""
    g = model.subgraphs[0]
    producer = {int(o): op for op in g.operators for o in op.outputs}
    frontier = {int(i) for i in g.outputs}
    names: list[str] = []
    for _ in range(depth):
        nxt = set()
        for t in sorted(frontier):
            op = producer.get(t)
            if op is None:
                continue
            for o in op.outputs:
                name = tflite_graph.tensor_name(g.tensors[int(o)])
                if name not in names:
                    names.append(name)
            nxt |= {int(i) for i in op.inputs if i >= 0 and int(i) in producer}
        frontier = nxt
    return names


def _recipe(variant: str, model, float_tail_depth: int):
    tools.require("ai-edge-quantizer")
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe, recipe_manager

    no_quantize = algorithm_manager.AlgorithmName.NO_QUANTIZE
    ops = qtyping.TFLOperationName
    if variant == "int8-weight":
        # Same as recipe.weight_only_wi8_afp32() (per-channel, symmetric, min/max), but
        # the output heads stay float: see WEIGHT_ONLY_FLOAT_TAIL_DEPTH.
        manager = recipe_manager.RecipeManager()
        manager.add_weight_only_config(regex=".*", operation_name=ops.ALL_SUPPORTED, num_bits=8)
        _keep_float(manager, model, _tail_depth(variant, float_tail_depth), variant)
        return manager.get_quantization_recipe()
    if variant == "int8-dynamic":
        return recipe.dynamic_wi8_afp32()
    if variant not in ("int8-static", "int8-mixed"):
        raise ValueError(f"unknown int8 variant {variant!r}")
    manager = recipe_manager.RecipeManager()
    manager.add_static_config(regex=".*", operation_name=ops.ALL_SUPPORTED,
                              activation_num_bits=8, weight_num_bits=8)
    # Keep the model's inputs and outputs float32: the runtime feeds float crops and the
    # decoders read float outputs (the quantizer would make them int8).
    for end in (ops.INPUT, ops.OUTPUT):
        manager.add_quantization_config(".*", end, algorithm_key=no_quantize)
    if variant == "int8-mixed":
        _keep_float(manager, model, float_tail_depth, variant)
    return manager.get_quantization_recipe()


def _tail_depth(variant: str, float_tail_depth: int) -> int:
    return max(float_tail_depth, WEIGHT_ONLY_FLOAT_TAIL_DEPTH) if variant == "int8-weight" else float_tail_depth


def _keep_float(manager, model, depth: int, variant: str) -> None:
    """Make the ops of ``float_tail(model, depth)`` NO_QUANTIZE in ``manager``."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    tail = float_tail(model, depth)
    # An op's scope is its output tensor names joined and ended by ';'. Later scopes
    # win in the recipe manager, so these ops fall back to float.
    pattern = "^(" + "|".join(re.escape(n) for n in tail) + ");$"
    manager.add_quantization_config(pattern, qtyping.TFLOperationName.ALL_SUPPORTED,
                                    algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    log.info("%s keeps %d ops float: %s", variant, len(tail), ", ".join(tail))


def quantize_bytes(source: bytes, variant: str, calibration: np.ndarray | None = None,
                   float_tail_depth: int = FLOAT_TAIL_DEPTH) -> tuple[bytes, dict]:
    """``source`` (.tflite bytes) as ``variant``. ``calibration``: (N, *input_shape)
    float32 inputs, needed by int8-static and int8-mixed. Returns (bytes, facts)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    prepared, facts = tflite_graph.prepare_for_tools(source)
    if variant == "float32":
        return prepared, facts
    if variant == "float16":
        model = tflite_graph.load(prepared)
        facts["fp16_constants"] = tflite_graph.to_float16(model)
        return tflite_graph.dump(model), facts
    spec = VARIANTS[variant]
    if spec.needs_calibration and (calibration is None or len(calibration) == 0):
        raise ValueError(f"{variant} needs calibration inputs (a folder of images of people)")
    model = tflite_graph.load(prepared)
    aeq_recipe = _recipe(variant, model, float_tail_depth)
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(bytearray(prepared), aeq_recipe)
    calibration_result = None
    if qt.need_calibration:
        sig = model.signatureDefs[0]
        input_name = sig.inputs[0].name.decode()
        samples = [{input_name: np.asarray(x, dtype=np.float32)} for x in calibration]
        calibration_result = qt.calibrate({tflite_graph.SERVING_DEFAULT: samples},
                                          num_threads=min(4, os.cpu_count() or 1))
        facts["calibration_samples"] = len(samples)
    try:
        # Its progress bars ignore TQDM_DISABLE and, on one step, enable_progress_bar:
        # they go to stderr only with --verbose.
        verbose = log.isEnabledFor(logging.INFO)
        with contextlib.redirect_stderr(sys.stderr if verbose else io.StringIO()):
            result = qt.quantize(calibration_result, enable_progress_report=False,
                                 enable_progress_bar=verbose)
    except (ValueError, RuntimeError, KeyError, NotImplementedError) as exc:
        raise BackendError(f"ai-edge-quantizer failed on {variant}: {type(exc).__name__}: {exc}") from None
    if variant in ("int8-mixed", "int8-weight"):
        facts["float_ops"] = float_tail(model, _tail_depth(variant, float_tail_depth))
    return bytes(result.quantized_model), facts


def quantize_file(source: str | os.PathLike, variant: str, out: str | os.PathLike,
                  calibration: np.ndarray | None = None,
                  float_tail_depth: int = FLOAT_TAIL_DEPTH) -> Path:
    """Write ``source`` as ``variant`` to ``out`` with edgepose metadata; returns ``out``."""
    from edgepose.models import sha256_of

    data = Path(source).read_bytes() if os.path.isfile(source) else None
    if data is None:
        raise ModelError(f"model file {source} does not exist")
    quantized, facts = quantize_bytes(data, variant, calibration, float_tail_depth)
    model = tflite_graph.load(quantized)
    info = metadata.describe(source, sha256_of(source), variant, task_of(model),
                             f"convert quantize ({VARIANTS[variant].tool or 'edgepose'})",
                             outputs=output_roles(model), extra={"conversion": _jsonable(facts)})
    metadata.set_tflite_metadata(model, info)
    with atomic_write(out) as tmp:
        tmp.write_bytes(tflite_graph.dump(model))
    log.info("wrote %s (%s, %d bytes)", out, variant, os.path.getsize(out))
    return Path(out)


def _jsonable(facts: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v))
            for k, v in facts.items()}
