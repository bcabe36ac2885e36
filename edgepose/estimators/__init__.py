"""One estimator per model family: how to feed the model, run it and decode its output
into poses, and where to look for each person in the next frame.

The frame loop (:class:`edgepose.pipeline.Pipeline`) is the same for every family; an
estimator is one of two kinds:

- **top-down** (``finds_people = False``): the pipeline's person detector (or the
  estimator's own ``builtin_detector``) gives detections, :meth:`crop_for` turns each into
  a crop, :meth:`estimate` finds one person in a crop. BlazePose, heatmap and SimCC
  models, MoveNet single-pose (whose "detector" is the whole frame).
- **bottom-up** (``finds_people = True``): :meth:`find` finds every person in the whole
  frame. MoveNet MultiPose, YOLO-pose, PoseNet, the MediaPipe engines.

Each returns :class:`Estimate` objects; every family shares the tracker, the duplicate
rule (:func:`same_body`), the smoother and the result type.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from edgepose.geometry import box_iou
from edgepose.profiler import StageClock
from edgepose.smoothing import keypoint_scale  # noqa: F401  (re-exported for the estimators)
from edgepose.types import Pose

# Two poses whose torso joints lie this close (fraction of the smaller crop's side) are
# one person seen through two crops.
DUPLICATE_TORSO_DISTANCE = 0.1
# ... and so are two poses with the same visible nose (this close, fraction of the smaller
# crop's side): a crop that mixed two people (a weak face-led detection whose predicted
# body took in a neighbour) keeps the nose of the face it was made from, while its torso
# (and even its eyes) lie between the two people (2 of the 3 AIC photos,
# blazepose+centernet: 7 and 24 px apart, torsos 90 and 113 px apart).
DUPLICATE_NOSE_DISTANCE = 0.05
# A person box overlapping a found pose's visible joints this much (IoU) is that person.
EXPLAINED_IOU = 0.5
# A pose lies within a person box when this share of its visible joints lies inside the
# box grown by WITHIN_MARGIN of its larger side on every edge.
WITHIN_SHARE = 0.9
WITHIN_MARGIN = 0.0
TORSO = [11, 12, 23, 24]  # BlazePose rows: shoulders, hips
NOSE = 0


@dataclasses.dataclass
class Estimate:
    """One person found in one frame.

    pose: the result. box: (x0, y0, x1, y1) the tracker re-identifies the person by.
    size: the side of the crop the person was found in (pixels), for the duplicate rule.
    scale: the person's size in pixels for the smoother (values are divided by it).
    anchor: points that place the next crop, smoothed with the pose when given (BlazePose's
    two auxiliary points), else None. next_crop: where to look in the next frame
    (top-down), recomputed from the smoothed anchor by ``Estimator.follow``.
    """

    pose: Pose
    box: tuple[float, float, float, float]
    size: float
    scale: float
    anchor: np.ndarray | None = None
    next_crop: Any = None


class Estimator(Protocol):
    family: str
    honours: frozenset[str]       # the Options fields it uses, beyond the loop's own
    finds_people: bool            # bottom-up: no person detector
    builtin_detector: Any         # top-down families that search the frame themselves
    reid_iou: float               # the tracker's IoU for re-identifying its boxes
    redetect_when_full: bool      # the schedule's default for this family

    def find(self, image: np.ndarray, color: str, clock: StageClock,
             timestamp_ms: float | None) -> tuple[list[Estimate], bool]:
        """Bottom-up: every person, and whether the whole frame was searched."""

    def crop_for(self, detector, detection) -> tuple[Any, tuple | None]:
        """Top-down: the crop of a detection, and the box it was made from (None when the
        crop is aligned by the detection's keypoints)."""

    def claims(self, crops: list[tuple[int, Any]], crop: Any) -> int | None:
        """Top-down: the index in ``crops`` ((track id, crop), -1 for new) of the person
        a new detection's crop shows, or None for someone new."""

    def estimate(self, image: np.ndarray, color: str, crop: Any, from_box: bool,
                 clock: StageClock) -> Estimate | None: ...

    def follow(self, estimate: Estimate, anchor: np.ndarray | None) -> Any:
        """The crop for the next frame."""

    def describe(self) -> dict: ...

    def close(self) -> None: ...


def same_body(a: Estimate, b: Estimate) -> bool:
    """Whether two estimates are one person seen through two crops (BlazePose's and a box
    detector's, or a box holding two people whose crop found the other one): their torso
    joints lie within DUPLICATE_TORSO_DISTANCE x the smaller crop's side, or both see the
    nose and their noses lie within DUPLICATE_NOSE_DISTANCE x that side."""
    ka, kb = a.pose.keypoints, b.pose.keypoints
    side = min(a.size, b.size)
    torso = np.linalg.norm(ka[TORSO, :2] - kb[TORSO, :2], axis=1).mean()
    if torso < DUPLICATE_TORSO_DISTANCE * side:
        return True
    if min(ka[NOSE, 3], kb[NOSE, 3]) < 0.5:
        return False
    return bool(np.linalg.norm(ka[NOSE, :2] - kb[NOSE, :2]) < DUPLICATE_NOSE_DISTANCE * side)


def explains(pose: Pose, box: tuple) -> bool:
    """Whether ``pose`` is the person in ``box``: the box around its visible joints
    overlaps ``box`` by EXPLAINED_IOU or more."""
    seen = pose.keypoints[pose.keypoints[:, 3] >= 0.5, :2]
    if len(seen) < 2:
        return False
    return box_iou((*seen.min(axis=0), *seen.max(axis=0)), box) >= EXPLAINED_IOU


def within(pose: Pose, box: tuple) -> bool:
    """Whether WITHIN_SHARE of ``pose``'s visible joints lie inside ``box`` (grown by
    WITHIN_MARGIN); a pose with no visible joint is not."""
    seen = pose.keypoints[pose.keypoints[:, 3] >= 0.5, :2]
    if len(seen) == 0:
        return False
    grow = WITHIN_MARGIN * max(box[2] - box[0], box[3] - box[1])
    inside = ((seen[:, 0] >= box[0] - grow) & (seen[:, 0] <= box[2] + grow)
              & (seen[:, 1] >= box[1] - grow) & (seen[:, 1] <= box[3] + grow))
    return bool(inside.mean() >= WITHIN_SHARE)


def keypoint_box(pose: Pose) -> tuple[float, float, float, float]:
    xy = pose.keypoints[:, :2]
    return (*(float(v) for v in xy.min(axis=0)), *(float(v) for v in xy.max(axis=0)))


class OnModel:
    """An estimator that runs one model file (``self.model``): what it says of itself,
    and closing it."""

    def describe(self) -> dict:
        return {"family": self.family, "model_path": self.model.path}

    def close(self) -> None:
        self.model.close()


def box_estimate(box: tuple[float, float, float, float], pose: Pose) -> Estimate:
    """A person a bottom-up model found, re-identified by the box the model gives."""
    return Estimate(pose, box, max(box[2] - box[0], box[3] - box[1]), keypoint_scale(pose))


class BottomUp(OnModel):
    """What the bottom-up estimators share: no crops, no detector; and one way to find
    people: the model's input from the whole frame (:meth:`prepare`: letterboxed into
    ``self.input_spec``), the model's outputs ``self._outputs`` (None: all), then
    ``self.decode(outputs, to_image)``."""

    finds_people = True
    builtin_detector = None
    redetect_when_full = False
    _outputs = None

    def find(self, image: np.ndarray, color: str, clock: StageClock,
             timestamp_ms: float | None) -> tuple[list[Estimate], bool]:
        t = clock.start()
        x, to_image = self.prepare(image, color)
        t = clock.stop("preprocess", t)
        out = self.model.run(x, self._outputs)
        t = clock.stop("landmark", t)
        found = self.decode(out, to_image)
        clock.stop("postprocess", t)
        return found, True

    def prepare(self, image: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray]:
        """The model's input, the whole frame letterboxed into ``self.input_spec`` (an
        :class:`~edgepose.decoders.preprocess.InputSpec`), and the input -> image affine."""
        from edgepose.decoders.preprocess import make_input
        from edgepose.geometry import letterbox_transform

        to_image = letterbox_transform(image.shape[1], image.shape[0], *self.input_spec.size)
        return make_input(image, to_image, self.input_spec, image_color=color), to_image

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        """The people in the model's outputs; ``to_image``: input -> image affine."""
        raise NotImplementedError

    def crop_for(self, detector, detection):
        raise NotImplementedError

    def claims(self, crops, crop):
        raise NotImplementedError

    def estimate(self, image, color, crop, from_box, clock):
        raise NotImplementedError

    def follow(self, estimate, anchor):
        return None
