"""Your own bottom-up YOLO-pose model (``--decoder yolo-pose``, or ``--model
yolo11n-pose``): the whole frame, letterboxed as Ultralytics letterboxes it (grey 114),
gives every person's box and keypoints."""

from __future__ import annotations

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import yolo_pose
from edgepose.decoders.preprocess import Letterbox
from edgepose.estimators import BottomUp, Estimate, box_estimate
from edgepose.estimators.topdown import MODEL_OPTIONS, input_spec, missing_output, model_layout
from edgepose.options import Options

YOLO_BORDER = 114.0
# A new person overlapping a recent box this much (IoU) takes its id.
REID_IOU = 0.5


class YoloPoseEstimator(BottomUp):
    family = "yolo-pose"
    honours = MODEL_OPTIONS | {"min_detection_confidence"}
    reid_iou = REID_IOU

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        self.layout = model_layout(model, options)
        self.input_spec = input_spec(model, options, normalize=options.normalize or "unit",
                                     border=YOLO_BORDER)
        width = 5 + 3 * len(self.layout)
        found = [i for i, s in enumerate(model.outputs) if len(s.shape) == 3 and width in s.shape[1:]]
        if not found:
            raise missing_output(model, "yolo-pose", self.layout,
                                 f"(1, {width}, anchors) or (1, anchors, {width}) rows")
        self._outputs = found[:1]
        o = options.min_detection_confidence
        self.threshold = yolo_pose.SCORE_THRESHOLD if o is None else o
        self.letterbox = Letterbox(self.input_spec)

    def prepare(self, image: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray]:
        return self.letterbox(image, color)  # Ultralytics' letterbox: one resize into a kept canvas

    def decode(self, outputs: list[np.ndarray], to_image: np.ndarray) -> list[Estimate]:
        (out,) = outputs
        scores, boxes, keypoints = yolo_pose.decode(out, to_image, len(self.layout),
                                                    score_threshold=self.threshold,
                                                    max_people=self.options.max_people)
        return [box_estimate(det.box, pose)
                for det, pose in yolo_pose.to_results(scores, boxes, keypoints, self.layout)]
