"""Choose the engine behind the pipeline once, by name: every engine takes the same
:class:`~edgepose.pipeline.Options` and returns the same FrameResult."""

from __future__ import annotations

import importlib

from edgepose.errors import BackendError
from edgepose.pipeline import Options

# name -> (module, class). Modules import lazily: mediapipe is heavy and optional.
ENGINES = {
    "tflite": ("edgepose.pipeline", "BlazePosePipeline"),
    "mediapipe": ("edgepose.mediapipe_backend", "MediaPipeSolutionPipeline"),
    "mediapipe-tasks": ("edgepose.mediapipe_backend", "MediaPipeTasksPipeline"),
}


def create_pipeline(backend: str = "tflite", options: Options | None = None, **overrides):
    """A pipeline on the named engine: tflite (edgepose's own, on a TFLite interpreter,
    or ONNX Runtime for .onnx files; a MoveNet model gets
    :class:`~edgepose.movenet.MoveNetPipeline`, ``decoder=...`` your own model in
    :class:`~edgepose.custom.CustomPipeline`), mediapipe (the legacy Solutions API) or
    mediapipe-tasks (PoseLandmarker)."""
    if backend not in ENGINES:
        raise BackendError(f"unknown backend {backend!r}: choose one of {', '.join(ENGINES)}")
    module, name = ENGINES[backend]
    if backend == "tflite":
        from edgepose.movenet import is_movenet

        model = overrides.get("model", (options or Options()).model)
        if overrides.get("decoder", (options or Options()).decoder):  # your model, a decoder
            module, name = "edgepose.custom", "CustomPipeline"
        elif is_movenet(model):  # MoveNet finds people itself: its own pipeline
            module, name = "edgepose.movenet", "MoveNetPipeline"
    return getattr(importlib.import_module(module), name)(options, **overrides)
