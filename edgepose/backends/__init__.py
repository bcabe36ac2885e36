"""Inference engines behind one small interface, chosen once, by name.

A backend loads a model file and returns a :class:`Model`: its input and output
tensor specs and a ``run`` that maps one input array to the list of outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import numpy as np

from edgepose.errors import BackendError, ModelError


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{self.name} {list(self.shape)} {np.dtype(self.dtype).name}"


class Model(Protocol):
    """A model ready to invoke. ``run`` returns outputs in ``outputs`` order."""

    path: str
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    def run(self, x: np.ndarray, wanted: Sequence[int] | None = None) -> list[np.ndarray]:
        """Invoke on one input; return the outputs listed in ``wanted`` (default all)."""
        ...

    def close(self) -> None: ...


BACKENDS = ("tflite", "onnxruntime")


def load_model(path: str, backend: str = "tflite", **options) -> Model:
    """Load ``path`` with the named backend (options go to that backend); "auto" picks
    onnxruntime for a ``.onnx`` file and tflite otherwise."""
    if backend == "auto":
        backend = "onnxruntime" if str(path).lower().endswith(".onnx") else "tflite"
    if backend == "tflite":
        from edgepose.backends.tflite import TFLiteModel

        return TFLiteModel(path, **options)
    if backend == "onnxruntime":
        from edgepose.backends.onnxruntime import OnnxModel

        return OnnxModel(path, **options)
    raise BackendError(f"unknown backend {backend!r}: choose auto or one of {', '.join(BACKENDS)}")


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
