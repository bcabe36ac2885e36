"""Your own bottom-up YOLO-pose model (``--decoder yolo-pose``, or ``--model
yolo11n-pose``): the whole frame, letterboxed as Ultralytics letterboxes it (grey 114),
gives every person's box and keypoints.

A heads file (``edgepose convert yolo-heads``: the head's raw maps, any input size) is
decoded here rather than in the graph, only where a person scores, and a frame is
letterboxed only to the next multiple of the stride: a 16:9 frame runs at 640x384.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import yolo_pose
from edgepose.decoders.preprocess import Letterbox
from edgepose.estimators import BottomUp, Estimate, box_estimate
from edgepose.estimators.topdown import MODEL_OPTIONS, input_spec, missing_output, model_layout
from edgepose.options import Options

log = logging.getLogger(__name__)

YOLO_BORDER = 114.0
# A new person overlapping a recent box this much (IoU) takes its id.
REID_IOU = 0.5
# A heads file takes any input size: frames fit into its export's size (--input-size HxW
# for another, rounded up to a multiple of the stride), padded to a multiple of the
# coarsest stride.
MAX_STRIDE = 32


class YoloPoseEstimator(BottomUp):
    family = "yolo-pose"
    honours = MODEL_OPTIONS | {"min_detection_confidence"}
    reid_iou = REID_IOU

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        self.layout = model_layout(model, options)
        k = len(self.layout)
        shape = model.inputs[0].shape
        dynamic = len(shape) == 4 and min(shape[1:]) < 0
        made_at = (model.metadata or {}).get("export_size")  # a heads file: its export's (h, w)
        size = {"size": (made_at[1], made_at[0])} if dynamic and made_at and not options.input_size else {}
        self.input_spec = input_spec(model, options, normalize=options.normalize or "unit",
                                     border=YOLO_BORDER, **size)
        self.levels = yolo_pose.head_levels([s.shape for s in model.outputs], k)
        self._read_levels = None
        if self.levels is None:
            width = 5 + 3 * k
            found = [i for i, s in enumerate(model.outputs) if len(s.shape) == 3 and width in s.shape[1:]]
            if not found:
                raise missing_output(model, "yolo-pose", self.layout,
                                     f"(1, {width}, anchors) or (1, anchors, {width}) rows, or "
                                     f"per level box (1, 64, H, W), score (1, 1, H, W) and "
                                     f"keypoints (1, {3 * k}, H, W) maps")
            self._outputs = found[:1]
        o = options.min_detection_confidence
        self.threshold = yolo_pose.SCORE_THRESHOLD if o is None else o
        stride = None
        if dynamic and self.levels:  # a heads file: a frame fills only the multiple of the stride it needs
            stride = (model.metadata or {}).get("stride", MAX_STRIDE)
            w, h = self.input_spec.size
            fit = (-(-w // stride) * stride, -(-h // stride) * stride)
            if fit != (w, h):  # as Ultralytics' check_imgsz: the levels must divide the input
                log.warning("--input-size %dx%d is not a multiple of the stride %d: using %dx%d",
                            h, w, stride, fit[1], fit[0])
                self.input_spec = dataclasses.replace(self.input_spec, size=fit)
        self.letterbox = Letterbox(self.input_spec, stride=stride)

    def prepare(self, image: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray]:
        return self.letterbox(image, color)  # Ultralytics' letterbox: one resize into a kept canvas

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        k = len(self.layout)
        if self.levels is None:
            (out,) = outputs
            rows = yolo_pose.candidates(out, k, self.threshold)
        else:
            if self._read_levels is None:  # a dynamic file's real sizes: read once, they group the maps
                self._read_levels = yolo_pose.head_levels([o.shape for o in outputs], k)
            rows = yolo_pose.head_rows(outputs, self._read_levels, self.letterbox.input_hw, k, self.threshold)
        scores, boxes, keypoints = yolo_pose.decode_rows(rows, to_image, k,
                                                         max_people=self.options.max_people)
        return [box_estimate(det.box, pose)
                for det, pose in yolo_pose.to_results(scores, boxes, keypoints, self.layout)]
