"""ONNX -> TFLite with onnx2tf (the ``convert-tf`` extra), with its pitfalls absorbed.

Each of these was an error seen when converting BlazePose by hand:

- tf2onnx node names contain ';', which breaks onnx2tf's SavedModel export: names are
  sanitised first (``converters.onnx_export.sanitize_names``).
- onnx2tf downloads a sample-image file (``calibration_image_sample_data_20x128x128x3_
  float32.npy``) for its checks and calibration, even for float output and even when
  given data, unless the file is in the working folder: a deterministic one is written
  into a temporary working folder, so nothing touches the network. int8 comes from
  ai-edge-quantizer on the float result (``edgepose convert quantize``).
- It runs ``onnxsim`` as a subprocess: the tool environment's ``bin`` is put on PATH.
- An NHWC ONNX input came out as [1, 256, 3, 256] unless told to keep the layout: every
  4-D input whose last axis is 3 (colour channels last) is named in
  ``keep_shape_absolutely_input_names``. An NCHW input (YOLO's [1, 3, 640, 640]) becomes
  TFLite's own NHWC ([1, 640, 640, 3]); the estimators read either layout.
- Its outputs come out in another order (MediaPipe's PoseLandmarker binds them by index
  and then fails): with a ``reference`` model the names and order are restored from it,
  by shape.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from pathlib import Path

from converters import metadata, tflite_graph, tools
from edgepose.errors import BackendError, ModelError

log = logging.getLogger(__name__)


def onnx_to_tflite(source: str | os.PathLike, out: str | os.PathLike, float16: bool = False,
                   reference: str | os.PathLike | None = None) -> Path:
    """Convert ``source`` (.onnx) to ``out`` (.tflite). ``reference``: the TFLite model
    the ONNX came from, whose output order and names the result gets."""
    tools.require("onnx2tf")
    import onnx

    from converters.onnx_export import sanitize_names
    from converters.quantize import output_roles, task_of
    from edgepose.fileio import atomic_write
    from edgepose.models import sha256_of

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{source} is not an ONNX model ({type(exc).__name__}: {exc})") from None
    sanitize_names(model)
    inputs = [i for i in model.graph.input
              if i.name not in {init.name for init in model.graph.initializer}]
    keep = [i.name for i in inputs if _is_nhwc(i)]
    # onnx2tf shells out to onnxsim: make this environment's scripts findable.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    import onnx2tf

    with tempfile.TemporaryDirectory(prefix="edgepose-onnx2tf-") as tmp, _working_folder(tmp):
        write_sample_data(Path(tmp))
        sanitized = Path(tmp) / "model.onnx"
        onnx.save(model, str(sanitized))
        verbose = log.isEnabledFor(logging.INFO)
        try:
            # Its SavedModel export prints every TensorSpec (~200 lines) on stdout.
            with contextlib.redirect_stdout(sys.stdout if verbose else io.StringIO()):
                onnx2tf.convert(input_onnx_file_path=str(sanitized), output_folder_path=str(Path(tmp) / "out"),
                                keep_shape_absolutely_input_names=keep or None,
                                copy_onnx_input_output_names_to_tflite=True,
                                output_signaturedefs=True, non_verbose=not verbose)
        except SystemExit as exc:  # onnx2tf calls sys.exit on unsupported graphs
            raise BackendError(f"onnx2tf could not convert {source} (exit {exc.code}); "
                               "run with -v for its log") from None
        except Exception as exc:
            raise BackendError(f"onnx2tf could not convert {source}: {type(exc).__name__}: {exc}") from None
        name = "model_float16.tflite" if float16 else "model_float32.tflite"
        produced = Path(tmp) / "out" / name
        if not produced.is_file():
            raise BackendError(f"onnx2tf wrote no {name} for {source}")
        tfl = tflite_graph.load(produced.read_bytes())
    if reference is not None:
        restore_outputs(tfl, tflite_graph.load(Path(reference).read_bytes()))
    else:
        onnx_output_names(tfl, model)
    src_meta = _onnx_meta(model)
    info = metadata.describe(
        source, sha256_of(source), "float16" if float16 else "float32",
        task_of(tfl) or (src_meta or {}).get("task"),
        f"convert from-onnx (onnx2tf {tools.tool_version('onnx2tf')})", outputs=output_roles(tfl),
        extra={"origin": src_meta.get("source")} if src_meta else None)
    metadata.set_tflite_metadata(tfl, info)
    with atomic_write(out) as tmp:
        tmp.write_bytes(tflite_graph.dump(tfl))
    return Path(out)


def _is_nhwc(value_info) -> bool:
    dims = value_info.type.tensor_type.shape.dim
    return len(dims) == 4 and dims[3].dim_value == 3 and dims[1].dim_value != 3


SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_sample_data(folder: Path) -> Path:
    """The sample file onnx2tf would download, made locally: 20 smooth RGB images in
    [0, 1] (gradients at different angles), deterministic."""
    import numpy as np

    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32) / 127.0
    images = []
    for k in range(20):
        a = k * np.pi / 10
        base = 0.5 + 0.5 * np.sin(3 * (np.cos(a) * xx + np.sin(a) * yy) + k)
        images.append(np.stack([base, base[::-1], base[:, ::-1]], axis=-1))
    path = folder / SAMPLE_FILE
    np.save(path, np.stack(images).astype(np.float32))
    return path


@contextlib.contextmanager
def _working_folder(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def restore_outputs(model, reference) -> None:
    """Give ``model`` (ModelT) the output order and names of ``reference``, matching
    outputs by shape (shapes must be unique); the signature follows."""
    g, r = model.subgraphs[0], reference.subgraphs[0]
    by_shape = {}
    for i in g.outputs:
        by_shape.setdefault(tuple(int(d) for d in g.tensors[i].shape), []).append(int(i))
    order = []
    for i in r.outputs:
        shape = tuple(int(d) for d in r.tensors[i].shape)
        found = by_shape.get(shape, [])
        if len(found) != 1:
            raise ModelError(f"cannot restore the output order: {len(found)} outputs of shape "
                             f"{list(shape)} (the reference has one)")
        g.tensors[found[0]].name = r.tensors[i].name
        order.append(found[0])
    g.outputs = order
    model.signatureDefs = []
    tflite_graph.add_signature(model)


def onnx_output_names(tfl, model) -> None:
    """Name ``tfl``'s outputs (onnx2tf calls them Identity, Identity_1...) after the ONNX
    model's, matched by shape, or by position when the shapes are not unique."""
    g = tfl.subgraphs[0]
    outs = [int(i) for i in g.outputs]
    onnx_shapes = [tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in model.graph.output]
    if len(outs) != len(onnx_shapes):
        return
    shapes = [tuple(int(d) for d in g.tensors[i].shape) for i in outs]
    for k, out in enumerate(model.graph.output):
        same = [i for i, shape in zip(outs, shapes) if shape == onnx_shapes[k]]
        g.tensors[same[0] if len(same) == 1 else outs[k]].name = out.name.encode()
    tfl.signatureDefs = []
    tflite_graph.add_signature(tfl)


def _onnx_meta(model) -> dict | None:
    import json

    for prop in model.metadata_props:
        if prop.key == metadata.METADATA_KEY:
            return json.loads(prop.value)
    return None
