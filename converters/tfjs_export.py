"""A TF.js graph model (read by :mod:`converters.tfjs`) -> SavedModel, TFLite and ONNX.

The graph is written as a SavedModel (``serving_default``), then converted with the TFLite
converter (float32, or float16 weights) and tf2onnx, and each output file is compared
with TensorFlow on the same inputs (:func:`verify_result`, through
``converters.verify.compare``).

Needs the ``convert-tf`` extra (tensorflow; tf2onnx for ONNX).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from converters.tfjs import GraphModel, load, read_manifest
from edgepose.errors import InputError, ModelError
from edgepose.fileio import atomic_write


# -- TensorFlow function, SavedModel --------------------------------------------------------------
def concrete_function(model: GraphModel):
    """The graph as a callable taking the inputs (in order) and returning the outputs."""
    import tensorflow as tf

    def import_graph():
        tf.compat.v1.import_graph_def(model.graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(import_graph, [])
    except ValueError as exc:
        raise ModelError(f"{model.path.name}: TensorFlow rejects the graph: {str(exc).splitlines()[0]}") from None
    graph = wrapped.graph
    return wrapped.prune([graph.as_graph_element(i.tensor) for i in model.inputs],
                         [graph.as_graph_element(o.tensor) for o in model.outputs])


def save_saved_model(model: GraphModel, folder: str | os.PathLike) -> Path:
    """Write the graph as a SavedModel whose ``serving_default`` signature uses the
    model.json's input and output names. Replaces ``folder``."""
    import shutil

    import tensorflow as tf

    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(model.graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            signature = tf.compat.v1.saved_model.predict_signature_def(
                inputs={i.name: graph.get_tensor_by_name(i.tensor) for i in model.inputs},
                outputs={o.name: graph.get_tensor_by_name(o.tensor) for o in model.outputs})
            builder = tf.compat.v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(
                sess, [tf.saved_model.SERVING], signature_def_map={"serving_default": signature})
            builder.save()
    return folder


# -- TFLite and ONNX ------------------------------------------------------------------------------
def to_tflite(saved_model: str | os.PathLike, out: str | os.PathLike, float16: bool = False,
              metadata: dict | None = None) -> Path:
    """Convert a SavedModel to TFLite (float32, or float16 weights), with edgepose metadata."""
    import tensorflow as tf

    from converters.metadata import with_tflite_metadata

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        data = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ...
        raise ModelError(f"the TFLite converter failed on {saved_model}: {_first_line(exc)}") from None
    if metadata is not None:
        data = with_tflite_metadata(data, metadata)
    out = Path(out)
    with atomic_write(out) as tmp:
        tmp.write_bytes(data)
    return out


def to_onnx(model: GraphModel, out: str | os.PathLike, opset: int = 13,
            metadata: dict | None = None) -> Path:
    """Convert the graph to ONNX with tf2onnx; inputs and outputs keep their signature names."""
    import onnx
    import tf2onnx

    from converters.metadata import set_onnx_metadata

    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            model.graph_def, input_names=[i.tensor for i in model.inputs],
            output_names=[o.tensor for o in model.outputs], opset=opset)
    except Exception as exc:  # tf2onnx raises ValueError, KeyError, ... per unsupported op
        raise ModelError(f"tf2onnx failed on {model.path.name}: {_first_line(exc)}") from None
    renames = {t.tensor: t.name for t in (*model.inputs, *model.outputs)}
    for value in (*proto.graph.input, *proto.graph.output):
        old = value.name
        if old in renames:
            _rename_value(proto.graph, old, renames[old])
    if metadata is not None:
        set_onnx_metadata(proto, metadata)
    out = Path(out)
    with atomic_write(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


def _rename_value(graph, old: str, new: str) -> None:
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# -- proving the conversion ---------------------------------------------------------------------
# Mean error relative to the output's RMS that a conversion may reach and still pass.
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "onnx": 1e-4}


class GraphRunner:
    """The TensorFlow graph as the reference side of a verification: the path / inputs /
    outputs / run interface of an ``edgepose.backends.Model``."""

    engine = runtime_label = "tensorflow"
    metadata = None

    def __init__(self, model: GraphModel) -> None:
        from edgepose.backends import TensorSpec

        if len(model.inputs) != 1:
            raise ModelError(f"{model.path.name} has {len(model.inputs)} inputs; verification feeds one")
        self.path = str(model.path)
        self._fn = concrete_function(model)
        self.inputs = [TensorSpec(i.name, tuple(i.shape), np.dtype(i.dtype)) for i in model.inputs]
        self.outputs = [TensorSpec(o.name, tuple(o.shape), np.dtype(o.dtype)) for o in model.outputs]

    def run(self, x: np.ndarray, wanted=None) -> list[np.ndarray]:
        import tensorflow as tf

        outputs = [y.numpy() for y in self._fn(tf.constant(x))]
        return outputs if wanted is None else [outputs[i] for i in wanted]

    def close(self) -> None:
        self._fn = None


def sample_inputs(model: GraphModel, images: list[Path], input_spec: dict | None,
                  limit: int = 16) -> np.ndarray:
    """(N, *input_shape) inputs (batch axis kept) made from real photos: each image stretched to the input
    size, normalised as ``input_spec`` (edgepose TASKS entry) says, raw 0..255 without one."""
    from edgepose.backends import TensorSpec
    from edgepose.geometry import stretch_transform
    from edgepose.decoders.preprocess import InputSpec, make_input
    from edgepose.sources import read_image

    info = model.inputs[0]
    spec = InputSpec.from_tensor(TensorSpec(info.name, info.shape, info.dtype),
                                 normalize=(input_spec or {}).get("normalize", "raw"))
    out = []
    for path in images[:limit]:
        bgr = read_image(path)
        rgb = bgr[..., ::-1]
        to_image = stretch_transform(rgb.shape[1], rgb.shape[0], *spec.size)
        out.append(make_input(np.ascontiguousarray(rgb), to_image, spec))
    if not out:
        raise InputError("no images to verify the conversion on")
    return np.stack(out)


def verify_result(reference: GraphRunner, result: str | os.PathLike, inputs: np.ndarray,
                  variant: str) -> dict:
    """Compare a converted file with the TensorFlow graph; write NAME.verify.json / .md."""
    from converters import tools, verify, verify_report
    from edgepose.models import sha256_of

    with verify.open_compared(result) as runner:
        if not verify.same_shape(runner.inputs[0].shape, reference.inputs[0].shape):
            raise ModelError(f"{result} takes input {list(runner.inputs[0].shape)}, the graph "
                             f"{list(reference.inputs[0].shape)}")
        report = {
            "source": {"path": reference.path, "sha256": sha256_of(reference.path),
                       "bytes": _model_bytes(Path(reference.path))},
            "result": {"path": str(result), "sha256": sha256_of(result), "bytes": os.path.getsize(result),
                       "variant": variant, "engine": runner.runtime_label},
            **verify.compare(reference, runner, inputs),
            "latency_ms": {"threads": verify.LATENCY_THREADS, "result": verify.latency([runner], inputs[0])[0],
                           "method": "p50 after warm-up"},
        }
    gate = verify.gate(report, max_ap_drop=1.0, variant=None)
    limit = TOLERANCE[variant]
    for name, o in report["outputs"].items():
        if o["relative"] is not None and o["relative"] > limit:
            gate["reasons"].append(f"output {name} differs from TensorFlow by {o['relative']:.2g} x its "
                                   f"RMS (> {limit:g} for {variant})")
    gate.update(passed=not gate["reasons"], checked=f"outputs within {limit:g} x RMS of TensorFlow, collapse",
                fallback="float32" if variant == "float16" else None)
    report["gate"] = gate
    report["environment"] = tools.environment_facts()
    verify_report.write_report(result, report)
    return report


def _model_bytes(json_path: Path) -> int:
    """Size of a TF.js model: its model.json and weight shards (of a frozen .pb: the file)."""
    if json_path.suffix != ".json":
        return json_path.stat().st_size
    manifest = read_manifest(json_path)
    shards = [json_path.parent / p for g in manifest["weightsManifest"] for p in g["paths"]]
    return json_path.stat().st_size + sum(p.stat().st_size for p in shards)


# -- the whole conversion -----------------------------------------------------------------------
@dataclasses.dataclass
class Converted:
    saved_model: Path
    files: dict[str, Path]        # variant -> file
    reports: dict[str, dict]      # variant -> verification report (when verified)


def check_variants(variants) -> None:
    """InputError naming any variant not in TOLERANCE."""
    unknown = set(variants) - set(TOLERANCE)
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(sorted(unknown))}: choose from {', '.join(TOLERANCE)}")


def write_variants(model: GraphModel, saved: Path, out_dir: Path, name: str, variants, source: Path,
                   task: str | None, command: str, extra: dict | None,
                   inputs: np.ndarray | None) -> tuple[dict[str, Path], dict[str, dict]]:
    """The ``variants`` of ``model`` (saved as the SavedModel ``saved``; converted from the
    file ``source`` by ``command``): float32 / float16 TFLite from the SavedModel, ONNX
    from the graph, each with edgepose metadata and, when ``inputs`` are given, verified
    against TensorFlow. Returns (variant -> file, variant -> verification report)."""
    from converters import metadata
    from edgepose.models import sha256_of

    digest = sha256_of(source)
    reference = GraphRunner(model) if inputs is not None else None
    files, reports = {}, {}
    for variant in variants:
        meta = metadata.describe(source, digest, variant, task, command,
                                 outputs={o.name: o.name for o in model.outputs}, extra=extra)
        if variant == "onnx":
            path = to_onnx(model, out_dir / f"{name}.onnx", metadata=meta)
        else:
            suffix = "" if variant == "float32" else f"_{variant}"
            path = to_tflite(saved, out_dir / f"{name}{suffix}.tflite", variant == "float16", meta)
        files[variant] = path
        if reference is not None:
            reports[variant] = verify_result(reference, path, inputs, variant)
    return files, reports


def convert(json_path: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
            variants: tuple[str, ...] = ("float32", "float16", "onnx"),
            input_shape: tuple[int, ...] | None = None, images: list[Path] | None = None,
            task: str | None = None, extra_metadata: dict | None = None) -> Converted:
    """TF.js graph model -> SavedModel -> the ``variants`` (float32 / float16 TFLite, ONNX),
    each with edgepose metadata and, when ``images`` are given, verified against TensorFlow."""
    from edgepose.model_metadata import TASKS

    check_variants(variants)
    json_path = Path(json_path)
    model = load(json_path, input_shape)
    name = name or model.name
    out_dir = Path(out_dir)
    saved = save_saved_model(model, out_dir / f"{name}_saved_model")
    inputs = sample_inputs(model, images, TASKS.get(task or "", {}).get("input")) if images else None
    files, reports = write_variants(model, saved, out_dir, name, variants, json_path, task, "convert tfjs",
                                    extra_metadata, inputs)
    return Converted(saved, files, reports)
