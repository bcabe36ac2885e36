"""edgepose: human pose estimation for edge devices, on raw TFLite/LiteRT interpreters.

``import edgepose`` is cheap: names load on first use, and models and inference engines
only when a :class:`Pipeline` is built.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "edgepose.pipeline",
    "Options": "edgepose.options",
    "OptionError": "edgepose.options",
    "Pose": "edgepose.types",
    "FrameResult": "edgepose.types",
    "Detection": "edgepose.types",
    "Roi": "edgepose.types",
    "EdgeposeError": "edgepose.errors",
    "InputError": "edgepose.errors",
    "ModelError": "edgepose.errors",
    "BackendError": "edgepose.errors",
    "UsageError": "edgepose.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
