"""TFLite / LiteRT interpreter backend: ai_edge_litert, then tflite_runtime, then TensorFlow."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import mmap
import os
import struct
from typing import Iterator, Sequence

import numpy as np

from edgepose.backends import Model, TensorSpec
from edgepose.errors import BackendError, ModelError
from edgepose.fileio import not_a_file

log = logging.getLogger(__name__)

# Runtime name -> module that provides Interpreter and load_delegate.
RUNTIMES = {
    "litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}
_PIP_NAME = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow"}


def _import_runtime(runtime: str):
    """Return (name, module) of the requested runtime, or the first one installed for 'auto'."""
    if runtime == "auto":
        # a kiosk can switch engines from its environment file (deploy/edgepose.default)
        runtime = os.environ.get("EDGEPOSE_TFLITE_RUNTIME") or "auto"
    if runtime != "auto" and runtime not in RUNTIMES:
        raise BackendError(f"unknown TFLite runtime {runtime!r}: choose auto, {', '.join(RUNTIMES)}")
    names = list(RUNTIMES) if runtime == "auto" else [runtime]
    failures = []
    for name in names:
        try:
            module = importlib.import_module(RUNTIMES[name])
        except ImportError as exc:
            failures.append(f"{name}: {exc}")
            continue
        problem = _numpy_clash(name)
        if problem:
            if runtime != "auto":
                raise BackendError(problem)
            failures.append(f"{name}: {problem}")
            continue
        return name, module
    if runtime == "auto":
        raise BackendError(
            "no usable TFLite runtime: pip install ai-edge-litert (or tflite-runtime on "
            "devices without a LiteRT wheel); tried " + "; ".join(failures)
        )
    raise BackendError(f"TFLite runtime {runtime!r} is not installed: pip install {_PIP_NAME[runtime]}")


def _numpy_clash(name: str) -> str | None:
    """tflite-runtime 2.14 is built against NumPy 1.x: with NumPy 2 its Interpreter dies
    with a SystemError ("_ARRAY_API not found"). Say so before that happens."""
    if name != "tflite-runtime":
        return None
    import numpy

    if int(numpy.__version__.split(".")[0]) < 2:
        return None
    return (f"tflite-runtime is built against NumPy 1.x and cannot run with NumPy "
            f"{numpy.__version__}: pip install 'numpy<2' (the tflite-runtime extra pins it)")


def _load_delegate(module, path: str):
    load = getattr(module, "load_delegate", None) or module.experimental.load_delegate
    if not os.path.isfile(path):
        raise BackendError(f"delegate library {path} does not exist: give the path to the .so")
    # Check the library ourselves first: a failed load_delegate leaves a half-built object
    # whose destructor prints a traceback (ai-edge-litert 2.3).
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise BackendError(f"delegate {path} could not be loaded: {exc}") from None
    if not hasattr(lib, "tflite_plugin_create_delegate"):
        raise BackendError(f"delegate {path} could not be loaded: it is a shared library but not "
                           "a TFLite external delegate (no tflite_plugin_create_delegate)")
    try:
        return load(path)
    except (ValueError, OSError, RuntimeError) as exc:
        raise BackendError(f"delegate {path} could not be loaded: {exc}") from None


def check_tflite_file(path: str) -> None:
    """Fail with a clear ModelError unless ``path`` is a readable TFLite flatbuffer."""
    with _mapped(path):
        pass


@contextlib.contextmanager
def _mapped(path: str) -> Iterator[tuple[mmap.mmap, os.stat_result]]:
    """The file mapped read-only (only the pages read are loaded) and its stat; a
    ModelError when it is missing, unreadable or has no TFL3 identifier."""
    if not os.path.isfile(path):
        raise ModelError(f"model file {path} {not_a_file(path)}")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    with f:
        stat = os.fstat(f.fileno())
        if stat.st_size < 8:
            raise ModelError(f"{path} is not a TFLite model (no TFL3 identifier): pass a .tflite or .onnx model file")
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot map model file {path} into memory: {exc}") from None
        with mapped as data:
            if data[4:8] != b"TFL3":
                if path.lower().endswith(".task"):
                    raise ModelError(f"{path} is a MediaPipe .task bundle, not a TFLite model: it "
                                     "runs with backend 'mediapipe-tasks' (--backend mediapipe-tasks)")
                raise ModelError(f"{path} is not a TFLite model (no TFL3 identifier): pass a .tflite or .onnx model file")
            yield data, stat


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def _metadata(path: str, data) -> dict | None:
    from edgepose.backends import metadata_of
    from edgepose.model_metadata import METADATA_KEY, tflite_metadata_entries

    try:
        raw = tflite_metadata_entries(data).get(METADATA_KEY)
    except (ValueError, struct.error, IndexError) as exc:
        raise ModelError(f"{path}: its metadata table cannot be read ({exc})") from None
    return metadata_of(path, raw)


class TFLiteModel(Model):
    """One TFLite interpreter. ``threads`` None lets the runtime choose.

    The file is opened once: it is mapped into memory, the edgepose metadata (``metadata``)
    is read from the few pages that hold it, and the interpreter maps the same file (the
    same page-cache pages, no copy). Should the file be replaced in between, that is a
    ModelError rather than metadata of one file and weights of another."""

    engine = "tflite"

    def __init__(
        self,
        path: str,
        runtime: str = "auto",
        threads: int | None = None,
        delegate: str | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = path
        with _mapped(path) as (data, stat):
            self.runtime, module = _import_runtime(runtime)
            Interpreter = module.Interpreter
            delegates = [_load_delegate(module, delegate)] if delegate else None
            try:
                self._interp = Interpreter(
                    model_path=path, num_threads=threads, experimental_delegates=delegates
                )
                self._interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"{path} could not be loaded by {self.runtime}: {exc}") from None
            if not _same_file(stat, os.stat(path)):
                self._interp = None
                raise ModelError(f"{path} was replaced while it was being opened: open it again")
            # after the interpreter has verified the flatbuffer
            self.metadata = _metadata(path, data)
        self._in = self._interp.get_input_details()
        self._out = self._interp.get_output_details()
        self.inputs = [_spec(d) for d in self._in]
        self.outputs = [_spec(d) for d in self._out]
        self._batch = 1  # the input's first size the interpreter is allocated for now
        log.debug("loaded %s with %s (%s threads)", path, self.runtime, threads)

    def run(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        interp = self._interp
        if interp is None:
            raise RuntimeError(f"{self.path}: run() after close()")
        self.validate_input(x)
        self._fit(1)
        interp.set_tensor(self._in[0]["index"], x)
        interp.invoke()
        idx = range(len(self._out)) if wanted is None else wanted
        return [interp.get_tensor(self._out[i]["index"]) for i in idx]

    # A model whose input's first size is 1 can run N inputs in one invoke (the input
    # resized to N; XNNPACK then runs them as one batch: 5-17% less a crop for BlazePose
    # full and heavy at 4-8 crops, benchmarks/bench_landmark_batch.py).
    @property
    def batches(self) -> bool:
        return len(self.inputs) == 1 and len(self.inputs[0].shape) > 1 and self.inputs[0].shape[0] == 1

    def run_batch(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        """One invoke on ``x``, N inputs stacked on the first axis; outputs with N rows."""
        interp = self._interp
        if interp is None:
            raise RuntimeError(f"{self.path}: run() after close()")
        self.validate_input(x[:1])
        self._fit(len(x))
        interp.set_tensor(self._in[0]["index"], x)
        interp.invoke()
        idx = range(len(self._out)) if wanted is None else wanted
        return [interp.get_tensor(self._out[i]["index"]) for i in idx]

    def reserve(self, batch: int) -> None:
        """Allocate for ``batch`` inputs now (growing the arena later costs 15-30 ms and a
        slow first invoke; any batch up to this one afterwards costs nothing to set)."""
        if self.batches and batch > 1:
            self._fit(batch)
            self._fit(1)

    def _fit(self, batch: int) -> None:
        if batch != self._batch:
            self._interp.resize_tensor_input(self._in[0]["index"], [batch, *self.inputs[0].shape[1:]])
            self._interp.allocate_tensors()
            self._batch = batch

    def close(self) -> None:
        self._interp = None


def _spec(detail: dict) -> TensorSpec:
    return TensorSpec(detail["name"], tuple(int(v) for v in detail["shape"]), np.dtype(detail["dtype"]))
