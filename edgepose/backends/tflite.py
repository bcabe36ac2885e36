"""TFLite / LiteRT interpreter backend: ai_edge_litert, then tflite_runtime, then TensorFlow."""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
from typing import Sequence

import numpy as np

from edgepose.backends import TensorSpec
from edgepose.errors import BackendError, ModelError

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
    if not os.path.isfile(path):
        raise ModelError(f"model file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (no TFL3 identifier): pass a .tflite file")


class TFLiteModel:
    """One TFLite interpreter. ``threads`` None lets the runtime choose."""

    def __init__(
        self,
        path: str,
        runtime: str = "auto",
        threads: int | None = None,
        delegate: str | None = None,
    ) -> None:
        check_tflite_file(path)
        self.path = path
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
        self._in = self._interp.get_input_details()
        self._out = self._interp.get_output_details()
        self.inputs = [TensorSpec(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in self._in]
        self.outputs = [TensorSpec(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in self._out]
        log.debug("loaded %s with %s (%s threads)", path, self.runtime, threads)

    def run(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        interp = self._interp
        interp.set_tensor(self._in[0]["index"], x)
        interp.invoke()
        idx = range(len(self._out)) if wanted is None else wanted
        return [interp.get_tensor(self._out[i]["index"]) for i in idx]

    def close(self) -> None:
        self._interp = None
