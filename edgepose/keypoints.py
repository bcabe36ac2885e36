"""Keypoints from models with other layouts (COCO-17 and friends) as BlazePose-33 poses.

Design: a COCO-17 model's result is an ordinary :class:`~edgepose.types.Pose`, so
tracking, smoothing, drawing, ``edgepose eval`` and the JSON Lines contract (33 rows)
work unchanged, and ``pose.coco17`` gives back exactly the model's 17 rows.

- Joints the layout shares with BlazePose (by name, as ``skeletons.blazepose_index``) fill
  their rows: x, y in image pixels, z = 0 (2-D models have no depth), visibility =
  presence = the model's keypoint confidence.
- The other rows (eye corners, mouth, hands, heels, toes for COCO-17) are *not measured*:
  visibility = presence = 0, so drawing and every score threshold ignore them. Their x, y
  copy the nearest measured joint (eye corners -> eye, hand points -> wrist, heel and toe
  -> ankle, ...), never (0, 0) or NaN, so ``Pose.bbox``, the smoother's object scale and
  JSON stay sound. :func:`measured_rows` says which rows are real.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgepose.skeletons import BlazePoseLandmark, CocoKeypoint, blazepose_index
from edgepose.types import NUM_LANDMARKS, Pose, Roi

_B = BlazePoseLandmark
# Where an unmeasured BlazePose row sits: the next joint in its chain that is measured.
_PROXY = {
    _B.LEFT_EYE_INNER: _B.LEFT_EYE, _B.LEFT_EYE_OUTER: _B.LEFT_EYE,
    _B.RIGHT_EYE_INNER: _B.RIGHT_EYE, _B.RIGHT_EYE_OUTER: _B.RIGHT_EYE,
    _B.LEFT_EYE: _B.NOSE, _B.RIGHT_EYE: _B.NOSE,
    _B.LEFT_EAR: _B.LEFT_EYE, _B.RIGHT_EAR: _B.RIGHT_EYE,
    _B.MOUTH_LEFT: _B.NOSE, _B.MOUTH_RIGHT: _B.NOSE,
    _B.LEFT_PINKY: _B.LEFT_WRIST, _B.LEFT_INDEX: _B.LEFT_WRIST, _B.LEFT_THUMB: _B.LEFT_WRIST,
    _B.RIGHT_PINKY: _B.RIGHT_WRIST, _B.RIGHT_INDEX: _B.RIGHT_WRIST,
    _B.RIGHT_THUMB: _B.RIGHT_WRIST,
    _B.LEFT_HEEL: _B.LEFT_ANKLE, _B.LEFT_FOOT_INDEX: _B.LEFT_ANKLE,
    _B.RIGHT_HEEL: _B.RIGHT_ANKLE, _B.RIGHT_FOOT_INDEX: _B.RIGHT_ANKLE,
}


@dataclasses.dataclass(frozen=True)
class Layout:
    """A keypoint layout: joint names in model output order."""

    name: str
    joints: tuple[str, ...]

    @property
    def blazepose_rows(self) -> tuple[int | None, ...]:
        """BlazePose row of each joint, or None where BlazePose has no joint of that name."""
        return tuple(blazepose_index(j) for j in self.joints)

    def __len__(self) -> int:
        return len(self.joints)


COCO17 = Layout("coco17", tuple(k.name.lower() for k in CocoKeypoint))
BLAZEPOSE33 = Layout("blazepose33", tuple(k.name.lower() for k in BlazePoseLandmark))
# MPII's 16 joints in the order EfficientPose and other MPII-trained heatmap models emit
# them; head top, upper neck, thorax and pelvis have no BlazePose (or COCO) landmark and
# are left out of the result, MPII has no face joints.
MPII16 = Layout("mpii16", ("head_top", "upper_neck", "right_shoulder", "right_elbow", "right_wrist",
                           "thorax", "left_shoulder", "left_elbow", "left_wrist", "pelvis",
                           "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
                           "left_ankle"))
LAYOUTS = {layout.name: layout for layout in (COCO17, BLAZEPOSE33, MPII16)}


def get_layout(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown keypoint layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def measured_rows(layout: str | Layout = COCO17) -> np.ndarray:
    """(33,) bool: the BlazePose rows a model with ``layout`` fills."""
    out = np.zeros(NUM_LANDMARKS, dtype=bool)
    for row in get_layout(layout).blazepose_rows:
        if row is not None:
            out[row] = True
    return out


def to_blazepose(points: np.ndarray, layout: str | Layout = COCO17) -> np.ndarray:
    """(33, 5) BlazePose rows from (K, 3) x, y, confidence in ``layout`` order (see the
    module docstring for the rows the layout lacks)."""
    layout = get_layout(layout)
    pts = np.asarray(points, dtype=np.float32)
    if pts.shape != (len(layout), 3):
        raise ValueError(f"points must be ({len(layout)}, 3) for layout {layout.name}, got {pts.shape}")
    out = np.zeros((NUM_LANDMARKS, 5), dtype=np.float32)
    have = np.zeros(NUM_LANDMARKS, dtype=bool)
    for (x, y, conf), row in zip(pts, layout.blazepose_rows):
        if row is not None:
            out[row] = (x, y, 0.0, conf, conf)
            have[row] = True
    if not have.any():
        raise ValueError(f"layout {layout.name} shares no joint name with BlazePose")
    centre = out[have, :2].mean(axis=0)
    for row in np.flatnonzero(~have):
        out[row, :2] = _proxy_xy(row, out, have, centre)
    return out


def _proxy_xy(row: int, out: np.ndarray, have: np.ndarray, centre: np.ndarray) -> np.ndarray:
    seen = set()
    while row in _PROXY and row not in seen:
        seen.add(row)
        row = _PROXY[row]
        if have[row]:
            return out[row, :2]
    return centre


def to_pose(points: np.ndarray, layout: str | Layout = COCO17, score: float | None = None,
            roi: Roi | None = None) -> Pose:
    """A Pose from (K, 3) x, y (image pixels), confidence in ``layout`` order. ``score``
    defaults to the mean keypoint confidence."""
    keypoints = to_blazepose(points, layout)
    if score is None:
        score = float(np.mean(np.asarray(points, dtype=np.float32)[:, 2]))
    return Pose(keypoints, float(score), roi=roi)
