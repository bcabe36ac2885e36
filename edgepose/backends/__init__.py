"""Inference engines behind one small interface, chosen once, by the file's suffix.

:func:`open_model` opens a model file with the engine its suffix names (:func:`engine_for`:
``.onnx`` -> ONNX Runtime, anything else -> TFLite) and returns a :class:`Model`: its
engine and runtime, the edgepose metadata it carries (read from the same bytes the engine
runs), its input and output tensor specs and a ``run`` that maps one input array to the
list of outputs.

>>> with open_model("pose_landmark_full.tflite", threads=2) as model:
...     model.runtime_label, model.metadata, model.inputs
...     outputs = model.run(x)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from edgepose.errors import BackendError, InputError, ModelError


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 where the size is not fixed
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{self.name} {list(self.shape)} {np.dtype(self.dtype).name}"


# Engine -> the open_model options it honours; every other option must keep its default.
ENGINES = {
    "tflite": ("runtime", "threads", "delegate"),
    "onnxruntime": ("provider", "threads"),
}
# What reports call each engine's files ("tflite/litert", "onnx/onnxruntime-cpu").
_LABELS = {"tflite": "tflite", "onnxruntime": "onnx"}
_DEFAULTS = {"runtime": "auto", "threads": None, "delegate": None, "provider": "cpu"}


class Model:
    """A model file opened by one engine. ``run`` returns outputs in ``outputs`` order.

    path: the file; engine: "tflite" or "onnxruntime"; runtime: what runs it ("litert",
    "tflite-runtime", "tensorflow", "onnxruntime-cpu", ...); metadata: the dict
    ``edgepose convert`` wrote into the file, None for other files; inputs / outputs:
    :class:`TensorSpec` lists. Usable as a context manager (closes on exit).
    """

    path: str
    engine: str
    runtime: str
    metadata: dict | None
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    @property
    def runtime_label(self) -> str:
        """Engine and runtime in one word for reports: "tflite/litert", "onnx/onnxruntime-cpu"."""
        return f"{_LABELS[self.engine]}/{self.runtime}"

    def run(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        """Invoke on one input; return the outputs listed in ``wanted`` (default all)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def validate_input(self, x: np.ndarray) -> None:
        """InputError unless ``x`` has the input's dtype and shape (-1 matches any size)."""
        spec = self.inputs[0]
        ok = x.dtype == spec.dtype and x.ndim == len(spec.shape) and all(
            want in (-1, have) for want, have in zip(spec.shape, x.shape))
        if not ok:
            raise InputError(f"{self.path}: input must be {np.dtype(spec.dtype).name} "
                             f"{list(spec.shape)} (-1: any size), got {x.dtype.name} {list(x.shape)}")

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} ({self.runtime_label})>"


def engine_for(path: str | os.PathLike) -> str:
    """The engine that opens ``path``: "onnxruntime" for a ``.onnx`` file, else "tflite"."""
    return "onnxruntime" if os.fspath(path).lower().endswith(".onnx") else "tflite"


def open_model(path: str | os.PathLike, *, runtime: str = "auto", threads: int | None = None,
               delegate: str | None = None, provider: str = "cpu") -> Model:
    """Open ``path`` with the engine :func:`engine_for` picks.

    TFLite honours ``runtime`` (auto, litert, tflite-runtime, tensorflow), ``threads`` and
    ``delegate`` (an external delegate library); ONNX Runtime honours ``provider`` (cpu,
    cuda, tensorrt) and ``threads``. An option the engine does not honour, set away from
    its default, is a BackendError (a delegate for an .onnx file is not silently dropped).
    ``threads`` None lets the runtime choose.
    """
    path = os.fspath(path)
    engine = engine_for(path)
    given = {"runtime": runtime, "threads": threads, "delegate": delegate, "provider": provider}
    refused = [f"{k}={v!r}" for k, v in given.items()
               if k not in ENGINES[engine] and v != _DEFAULTS[k]]
    if refused:
        raise BackendError(
            f"{path} runs on {engine}, which does not take {', '.join(refused)}: "
            f"{engine} takes {', '.join(ENGINES[engine])}")
    return _open(engine, path, {k: given[k] for k in ENGINES[engine]})


def _open(engine: str, path: str, options: dict) -> Model:
    if engine == "onnxruntime":
        from edgepose.backends.onnxruntime import OnnxModel

        return OnnxModel(path, **options)
    from edgepose.backends.tflite import TFLiteModel

    return TFLiteModel(path, **options)


def metadata_of(path: str, raw: bytes | str | None) -> dict | None:
    """The edgepose metadata entry ``raw`` of ``path`` as a dict (None when the file has
    none); a ModelError when the entry is there but is not a JSON object."""
    from edgepose.model_metadata import parse_metadata

    try:
        return parse_metadata(raw)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}; re-convert it with `edgepose convert`") from None


def find_output(model: Model, shape: tuple[int, ...], role: str, label: str) -> int:
    """Index of the output whose shape is ``shape``; a clear ModelError when none is."""
    for i, spec in enumerate(model.outputs):
        if tuple(spec.shape) == tuple(shape):
            return i
    have = "; ".join(str(s) for s in model.outputs) or "none"
    raise ModelError(
        f"{label} model {model.path}: expected an output of shape {list(shape)} ({role}), "
        f"found outputs: {have}. Is this the right model file?"
    )


def check_input(model: Model, shape: tuple[int, ...], label: str) -> None:
    """Require a single float32 input of ``shape``."""
    ins = list(model.inputs)
    if len(ins) != 1 or tuple(ins[0].shape) != tuple(shape) or np.dtype(ins[0].dtype) != np.float32:
        have = "; ".join(str(s) for s in ins) or "none"
        raise ModelError(
            f"{label} model {model.path}: expected one float32 input of shape {list(shape)}, "
            f"found: {have}. Is this the right model file?"
        )
