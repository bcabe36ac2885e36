"""edgepose: human pose estimation for edge devices, on raw TFLite/LiteRT interpreters.

``import edgepose`` is cheap: models and inference engines load only when a
:class:`Pipeline` is built.
"""

from edgepose.errors import BackendError, EdgeposeError, InputError, ModelError
from edgepose.pipeline import Options, Pipeline
from edgepose.types import Detection, FrameResult, Pose, Roi

__version__ = "0.1.0"
__all__ = [
    "BackendError", "Detection", "EdgeposeError", "FrameResult", "InputError", "ModelError",
    "Options", "Pipeline", "Pose", "Roi", "__version__",
]
