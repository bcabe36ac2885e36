"""PoseNet (``--model posenet``, or your own file with ``--decoder posenet``): bottom-up,
the whole frame letterboxed into the model, every person decoded greedily from the
heatmaps, offsets and displacement fields (:mod:`edgepose.decoders.posenet`)."""

from __future__ import annotations

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import posenet
from edgepose.errors import ModelError
from edgepose.estimators import BottomUp, Estimate, box_estimate
from edgepose.estimators.topdown import MODEL_OPTIONS, input_spec
from edgepose.keypoints import COCO17, to_pose
from edgepose.options import Options

# A new person overlapping a recent box this much (IoU) takes its id.
REID_IOU = 0.3
EXPECTED = ("four outputs on one H x W grid: (1, H, W, 17) heatmap logits, (1, H, W, 34) "
            "offsets, (1, H, W, 32) forward and (1, H, W, 32) backward displacements "
            "(channels first also read)")


def output_roles(model: Model) -> tuple[list[int], str]:
    """Output indices of heatmap, offsets, forward, backward, and the channel axis
    ("last" or "first"); ModelError naming the expected shapes when they do not fit.
    The two displacement outputs are told apart by name (fwd / bwd), else taken in model
    order, forward first."""
    outs = model.outputs
    for channels, axis in (("last", 3), ("first", 1)):
        four = [i for i, s in enumerate(outs) if len(s.shape) == 4]
        by_count = {}
        for i in four:
            by_count.setdefault(outs[i].shape[axis], []).append(i)
        heat, offs, disp = by_count.get(17, []), by_count.get(34, []), by_count.get(32, [])
        if len(heat) == 1 and len(offs) == 1 and len(disp) == 2:
            names = [outs[i].name.lower() for i in disp]
            if any(w in names[1] for w in ("fwd", "forward")) or any(w in names[0] for w in ("bwd", "backward")):
                disp = disp[::-1]
            roles = [heat[0], offs[0], *disp]
            grid = {tuple(outs[i].shape[1:3] if channels == "last" else outs[i].shape[2:4]) for i in roles}
            if len(grid) == 1:
                return roles, channels
    have = "; ".join(str(s) for s in outs) or "none"
    raise ModelError(f"{model.path} is not a PoseNet model: expected {EXPECTED}, found {have}. "
                     "Check --decoder (docs/model_layouts.md)")


def grid_stride(input_size: int, cells: int) -> float:
    """Input pixels between grid cells: PoseNet's grid has a cell on both input edges
    (385 px at stride 16 -> 25 cells), so (size - 1) / (cells - 1) when that is whole,
    else size / cells."""
    if cells > 1 and (input_size - 1) % (cells - 1) == 0:
        return (input_size - 1) / (cells - 1)
    return input_size / cells


class PoseNetEstimator(BottomUp):
    family = "posenet"
    honours = (MODEL_OPTIONS - {"keypoint_layout"}) | {"min_detection_confidence"}
    reid_iou = REID_IOU
    layout = COCO17

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        if len(model.inputs) != 1:
            raise ModelError(f"{model.path} has {len(model.inputs)} inputs; PoseNet takes one image")
        self._outputs, self._channels = output_roles(model)
        self.input_spec = input_spec(model, options, normalize=options.normalize or "signed")
        heat = model.outputs[self._outputs[0]].shape
        cells = heat[1] if self._channels == "last" else heat[2]
        self.stride = grid_stride(self.input_spec.size[1], cells)
        o = options.min_detection_confidence
        self.min_pose_score = posenet.MIN_POSE_SCORE if o is None else o

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        if self._channels == "first":
            outputs = [np.moveaxis(o, 1, -1) for o in outputs]
        scores, boxes, keypoints = posenet.decode(*outputs, to_image, self.stride,
                                                  min_pose_score=self.min_pose_score,
                                                  max_people=self.options.max_people)
        return [box_estimate(tuple(float(v) for v in box), to_pose(kp, COCO17, score=float(s)))
                for s, box, kp in zip(scores, boxes, keypoints)]
