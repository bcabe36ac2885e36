"""MoveNet: single-pose Lightning / Thunder, and MultiPose (bottom-up, up to 6 people).

Single pose follows MoveNet's own crop-region tracking: with nobody tracked the model
searches the whole frame (its "detector", :class:`WholeFrame`), then each next crop comes
from the keypoints. Results have the COCO-17 rows of the 33 filled (``pose.coco17``).
The models are the TF.js models converted by ``edgepose convert tfjs NAME``; any file
with MoveNet's input and output also works.
"""

from __future__ import annotations

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import movenet as mn
from edgepose.decoders.preprocess import InputSpec, make_input
from edgepose.errors import ModelError
from edgepose.estimators import BottomUp, Estimate, OnModel, box_estimate
from edgepose.keypoints import to_pose
from edgepose.options import Options
from edgepose.profiler import StageClock
from edgepose.types import Detection, Roi

# A person whose mean keypoint score is below this is dropped, unless
# Options.min_detection_confidence says otherwise.
MIN_POSE_SCORE = 0.2
# A new MultiPose person whose box overlaps a recent box this much is that track.
REID_IOU = 0.3
# MoveNet's crop region is the body's box enlarged; the smoother's object size is the
# crop without that margin (as BlazePose's ROI without its 1.25).
CROP_MARGIN = 1.25
HONOURS = frozenset({"min_detection_confidence", "runtime", "delegate", "provider"})


def family_of(model: Model) -> str | None:
    """movenet-single or movenet-multipose from the model's outputs, else None."""
    shapes = [tuple(s.shape) for s in model.outputs]
    if (1, 1, mn.NUM_KEYPOINTS, 3) in shapes:
        return "movenet-single"
    if any(len(s) == 3 and s[-1] == mn.NUM_KEYPOINTS * 3 + 5 for s in shapes):
        return "movenet-multipose"
    return None


def _threshold(options: Options) -> float:
    o = options.min_detection_confidence
    return MIN_POSE_SCORE if o is None else o


class WholeFrame:
    """MoveNet single pose's person "detector": the whole frame, padded to a square."""

    name = "whole frame"

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]:
        h, w = image.shape[:2]
        return [Detection(1.0, (0.0, 0.0, float(w), float(h)), np.zeros((0, 2), np.float32))]

    def roi(self, detection: Detection) -> Roi:
        return mn.initial_crop_region(detection.box[2], detection.box[3])

    def default_score(self, multi_person: bool) -> float:
        return 0.0

    def close(self) -> None:
        pass


class MoveNetSingle(OnModel):
    family = "movenet-single"
    honours = HONOURS
    finds_people = False
    builtin_detector = WholeFrame()
    reid_iou = REID_IOU
    redetect_when_full = False

    def __init__(self, model: Model, options: Options) -> None:
        if options.max_people > 1:
            raise ModelError(f"{model.path} is a single-person MoveNet: for max_people="
                             f"{options.max_people} use --model movenet-multipose")
        self.model, self.options = model, options
        self.input_spec = InputSpec.from_tensor(model.inputs[0], normalize="raw")
        self.threshold = _threshold(options)

    def crop_for(self, detector, detection) -> tuple[Roi, None]:
        return detector.roi(detection), None

    def claims(self, crops, crop) -> int | None:
        return 0 if crops else None

    def estimate(self, image: np.ndarray, color: str, crop: Roi, from_box: bool,
                 clock: StageClock) -> Estimate | None:
        height, width = image.shape[:2]
        size = self.input_spec.size[0]
        t = clock.start()
        x = make_input(image, crop.crop_to_image(size), self.input_spec, image_color=color)
        t = clock.stop("preprocess", t)
        (out,) = self.model.run(x)
        t = clock.stop("landmark", t)
        keypoints = mn.decode_single(out, crop.crop_to_image(size), (size, size))
        pose = to_pose(keypoints, "coco17", roi=crop)
        nxt = mn.next_crop_region(keypoints, width, height)
        clock.stop("postprocess", t)
        if pose.score < self.threshold:
            return None
        xy = keypoints[:, :2]
        box = (*(float(v) for v in xy.min(axis=0)), *(float(v) for v in xy.max(axis=0)))
        return Estimate(pose, box, crop.size, crop.size / CROP_MARGIN, next_crop=nxt)

    def follow(self, estimate: Estimate, anchor) -> Roi:
        return estimate.next_crop


class MoveNetMultiPose(BottomUp):
    family = "movenet-multipose"
    honours = HONOURS
    reid_iou = REID_IOU

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        self.input_spec = InputSpec.from_tensor(model.inputs[0], normalize="raw")
        self.threshold = _threshold(options)

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        rows = next(o for o in outputs if o.ndim == 3 and o.shape[-1] == mn.NUM_KEYPOINTS * 3 + 5)
        found = mn.multipose_results(*mn.decode_multipose(rows, to_image, self.input_spec.size, self.threshold))
        return [box_estimate(det.box, pose) for det, pose in found[:self.options.max_people]]
