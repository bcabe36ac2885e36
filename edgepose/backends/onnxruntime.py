"""ONNX Runtime backend: one InferenceSession behind the :class:`~edgepose.backends.Model`
interface, on the CPU, CUDA or TensorRT execution provider chosen by name.

onnxruntime is optional (``pip install "edgepose[onnxruntime]"``, or ``onnxruntime-gpu``
for CUDA / TensorRT); it is imported when a model is loaded, never at ``import edgepose``.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Sequence

import numpy as np

from edgepose.backends import Model, TensorSpec, metadata_of
from edgepose.errors import BackendError, ModelError
from edgepose.fileio import not_a_file
from edgepose.model_metadata import METADATA_KEY

log = logging.getLogger(__name__)

# Provider name -> ONNX Runtime execution providers, in the order ORT should try them:
# nodes a GPU provider cannot run fall back to the next one, and the CPU comes last.
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
_INSTALL = {
    "cpu": "pip install onnxruntime",
    "cuda": "pip uninstall onnxruntime && pip install onnxruntime-gpu "
            "(needs the CUDA and cuDNN versions that onnxruntime-gpu release was built for; "
            "on Jetson, NVIDIA's onnxruntime-gpu wheel for your JetPack)",
    "tensorrt": "pip uninstall onnxruntime && pip install onnxruntime-gpu, and install "
                "TensorRT (libnvinfer) where the dynamic loader finds it",
}

# ORT's intra-op workers spin-wait for work by default. On a CPU shared with anything else
# (the camera, the encoder, the app, other processes) a spinning worker holds a core its
# peer needs, and a preempted worker stalls every parallel op: on the 2-core machine
# under load, YOLO11n-pose took 0.54x the time per frame with spinning off (street clip,
# side by side in one run, benchmarks/bench_vs_ultralytics.py); on the idle machine it
# costs 13% (46.0 against 40.6 ms p50, results/vs_ultralytics_idle.json). Off by default,
# as a kiosk shares its CPU (the browser, the camera); set EDGEPOSE_ORT_SPINNING=1 for
# ORT's own default on a machine the model has to itself.
SPINNING_ENV = "EDGEPOSE_ORT_SPINNING"

# ONNX element type strings as ORT reports them -> numpy dtypes.
_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def _import_onnxruntime():
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BackendError(
            f"the onnxruntime backend needs ONNX Runtime, which is not installed ({exc}): "
            'pip install "edgepose[onnxruntime]" (CPU) or onnxruntime-gpu (CUDA, TensorRT)'
        ) from None


def _spec(node) -> TensorSpec:
    """TensorSpec of an ORT NodeArg. Dynamic dimensions ('batch', None) become -1, as in
    TFLite's shape signature, so shape checks against fixed shapes fail clearly."""
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape)
    dtype = _DTYPES.get(node.type)
    if dtype is None:
        raise ModelError(f"tensor {node.name} has type {node.type}, which edgepose does not handle")
    return TensorSpec(node.name, shape, np.dtype(dtype))


def _load_errors() -> tuple[type[Exception], ...]:
    """ORT's exception classes for a file it cannot load (pybind classes with no common
    base but Exception, so they are named here rather than caught broadly)."""
    state = importlib.import_module("onnxruntime.capi.onnxruntime_pybind11_state")
    names = ("InvalidProtobuf", "InvalidGraph", "InvalidArgument", "Fail", "NotImplemented",
             "NoSuchFile", "RuntimeException")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def check_onnx_file(path: str) -> None:
    """Fail with a clear ModelError when ``path`` is missing or plainly another format.

    ONNX files are bare protobuf with no magic number, so a truncated or corrupt file is
    only caught when ORT parses it (see :class:`OnnxModel`)."""
    if not os.path.isfile(path):
        raise ModelError(f"model file {path} {not_a_file(path)}")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise ModelError(f"{path} is not an ONNX model: the file is empty or truncated "
                         f"({os.path.getsize(path)} bytes)")
    if head[4:8] == b"TFL3":
        raise ModelError(f"{path} is a TFLite model, not ONNX: name it .tflite")


def select_providers(provider: str, available: Sequence[str]) -> list[str]:
    """ORT provider list for ``provider`` (cpu, cuda, tensorrt); a BackendError that says
    what to install when this onnxruntime build lacks it."""
    if provider not in PROVIDERS:
        raise BackendError(f"unknown ONNX Runtime provider {provider!r}: choose one of "
                           f"{', '.join(PROVIDERS)}")
    wanted = PROVIDERS[provider]
    if wanted[0] not in available:
        raise BackendError(
            f"ONNX Runtime provider {provider!r} ({wanted[0]}) is not in this onnxruntime "
            f"build (it has: {', '.join(available) or 'none'}): {_INSTALL[provider]}"
        )
    return [p for p in wanted if p in available]


class OnnxModel(Model):
    """One ONNX Runtime session with a single input.

    provider: cpu, cuda or tensorrt (see :data:`PROVIDERS`). threads: intra-op threads,
    None lets ORT choose (one per physical core); they block rather than spin between
    ops (see :data:`SPINNING_ENV`). ``metadata`` is read from the custom
    metadata map of the session that runs the model (the file is read once).
    """

    engine = "onnxruntime"

    def __init__(self, path: str, provider: str = "cpu", threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        check_onnx_file(path)
        ort = _import_onnxruntime()
        providers = select_providers(provider, ort.get_available_providers())
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1  # one model, one frame at a time: no graph parallelism
        if threads is not None:
            opts.intra_op_num_threads = threads
        if os.environ.get(SPINNING_ENV, "0") != "1":
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(path, sess_options=opts, providers=providers)
        except _load_errors() as exc:
            raise ModelError(
                f"{path} could not be loaded by ONNX Runtime (not an ONNX model, truncated, "
                f"or using operators this onnxruntime lacks): {type(exc).__name__}: {exc}"
            ) from None
        # A GPU provider that is compiled in but whose CUDA / TensorRT libraries do not load
        # is dropped by ORT with only a log line; running on the CPU instead would be a lie.
        if providers[0] not in session.get_providers():
            raise BackendError(
                f"ONNX Runtime provider {provider!r} ({providers[0]}) failed to start (its "
                f"libraries did not load; ORT's log says which): {_INSTALL[provider]}"
            )
        self.path = path
        self.provider = provider
        self.runtime = f"onnxruntime-{provider}"
        self._session = session
        self.metadata = metadata_of(path, session.get_modelmeta().custom_metadata_map.get(METADATA_KEY))
        self.inputs = [_spec(n) for n in session.get_inputs()]
        self.outputs = [_spec(n) for n in session.get_outputs()]
        if len(self.inputs) != 1:
            have = "; ".join(str(s) for s in self.inputs)
            raise ModelError(f"{path}: edgepose feeds models one input, this one has "
                             f"{len(self.inputs)}: {have}")
        self._input_name = self.inputs[0].name
        self._output_names = [s.name for s in self.outputs]
        log.debug("loaded %s with onnxruntime %s on %s (%s threads)", path, ort.__version__,
                  session.get_providers(), threads)

    def run(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        if self._session is None:
            raise RuntimeError(f"{self.path}: run() after close()")
        self.validate_input(x)
        names = self._output_names if wanted is None else [self._output_names[i] for i in wanted]
        return self._session.run(names, {self._input_name: x})

    def close(self) -> None:
        self._session = None
