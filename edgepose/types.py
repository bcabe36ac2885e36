"""Typed results: a rotated square region, a detection, a pose, one frame's result."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgepose.skeletons import BLAZEPOSE_TO_COCO

NUM_LANDMARKS = 33


@dataclasses.dataclass(frozen=True)
class Roi:
    """A square region of the image, rotated about its centre.

    ``cx``, ``cy`` and ``size`` are in image pixels; ``rotation`` is in radians, positive
    clockwise on screen (image y points down), as MediaPipe's ``NormalizedRect.rotation``.
    """

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def crop_to_image(self, crop_size: int) -> np.ndarray:
        """(2, 3) affine matrix taking crop pixel coordinates to image pixel coordinates."""
        scale = self.size / crop_size
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        half = self.size / 2
        return np.array([
            [scale * c, -scale * s, self.cx - half * (c - s)],
            [scale * s, scale * c, self.cy - half * (s + c)],
        ])

    def corners(self) -> np.ndarray:
        """(4, 2) image coordinates of the corners (top-left, top-right, bottom-right, bottom-left)."""
        unit = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
        return unit @ self.crop_to_image(1).T

    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x0, y0, x1, y1) that contains the rotated square."""
        pts = self.corners()
        return (*pts.min(axis=0), *pts.max(axis=0))


@dataclasses.dataclass(frozen=True)
class Detection:
    """A person found by the detector, in image pixels.

    ``box`` is (x0, y0, x1, y1); ``keypoints`` is (K, 2) x, y: BlazePose's detector gives
    K = 4 (hip centre, full-body size/rotation point, shoulder centre, upper-body point).
    ``source`` names the detector that found it (a combined detector's parts differ).
    """

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    source: str = ""


@dataclasses.dataclass
class Pose:
    """One person.

    keypoints: (33, 5) float32 rows of x, y (image pixels), z (pixels, same scale as x,
        negative towards the camera, hips near 0), visibility, presence (both in [0, 1]).
    score: pose presence in [0, 1].
    bbox: (x, y, w, h) in pixels around the 33 keypoints.
    track_id: stable across frames of one pipeline; -1 when not tracked.
    world: (33, 3) metres, origin between the hips, or None.
    mask: (H, W) float32 in [0, 1] person segmentation, or None unless asked for.
    roi: the crop the landmark model saw.
    """

    keypoints: np.ndarray
    score: float
    track_id: int = -1
    world: np.ndarray | None = None
    mask: np.ndarray | None = None
    roi: Roi | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.shape != (NUM_LANDMARKS, 5):
            raise ValueError(f"keypoints must be ({NUM_LANDMARKS}, 5), got {kp.shape}")
        self.keypoints = kp
        if self.world is not None:
            world = np.asarray(self.world, dtype=np.float32)
            if world.shape != (NUM_LANDMARKS, 3):
                raise ValueError(f"world must be ({NUM_LANDMARKS}, 3), got {world.shape}")
            self.world = world

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        xy = self.keypoints[:, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)

    @property
    def coco17(self) -> np.ndarray:
        """(17, 5) the same rows in COCO keypoint order (see skeletons.CocoKeypoint)."""
        return self.keypoints[list(BLAZEPOSE_TO_COCO)]

    def to_dict(self) -> dict:
        """The JSON Lines form: id, score, bbox [x, y, w, h], keypoints (33 x 5 lists)."""
        out = {
            "id": self.track_id,
            "score": round(float(self.score), 4),
            "bbox": [round(v, 2) for v in self.bbox],
            "keypoints": np.round(self.keypoints.astype(np.float64), 4).tolist(),
        }
        if self.world is not None:
            out["world"] = np.round(self.world.astype(np.float64), 5).tolist()
        return out


@dataclasses.dataclass
class FrameResult:
    """What one call to ``Pipeline.process`` returns.

    ``stages_ms`` holds the time of each stage this frame went through (preprocess,
    detector, landmark, postprocess); ``detector_ran`` tells whether the detector was
    invoked or every person came from tracking.
    """

    poses: list[Pose]
    image_size: tuple[int, int]  # (width, height)
    timestamp_ms: float | None = None
    stages_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    detector_ran: bool = False

    def to_dict(self) -> dict:
        return {
            "timestamp_ms": self.timestamp_ms,
            "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()},
            "poses": [p.to_dict() for p in self.poses],
        }
