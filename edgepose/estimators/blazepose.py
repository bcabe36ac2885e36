"""BlazePose landmarks (lite / full / heavy) in a rotated crop, behind any person detector.

A detection's crop is rotated and hip-centred when the detector gives alignment points
(BlazePose's own), else a square around its box; a box crop gets a second pass on the
rotated crop the first pass gives. The next frame's crop follows the model's two
auxiliary points, smoothed with the landmarks (MediaPipe's graph).
"""

from __future__ import annotations

import numpy as np

from edgepose.backends import Model, check_input, find_output
from edgepose.blazepose import landmarks as lmk
from edgepose.blazepose.roi import roi_from_points
from edgepose.errors import ModelError
from edgepose.estimators import Estimate, OnModel
from edgepose.options import Options
from edgepose.profiler import StageClock
from edgepose.types import Pose, Roi

# A new detection closer than this (fraction of ROI size) to a tracked ROI is that person.
SAME_PERSON_DISTANCE = 0.15
# A new person whose crop overlaps the crop of someone lost in the last
# tracking.MEMORY_FRAMES frames this much (IoU of the unrotated squares: centres within
# about a quarter of the side) takes their id back (the detector missed them, or the
# landmark model's presence dipped on a small or half-hidden person).
REID_IOU = 0.6
TASK = "blazepose-landmark"
# Most crops in one invoke: the saving a crop stops growing at 4-8 crops
# (benchmarks/bench_landmark_batch.py), while the interpreter's memory grows with the batch
# (about 7 MiB a crop of full): a larger max_people runs its crops in chunks of this many.
MAX_BATCH = 8
_DETECTOR_TASKS = ("blazepose-detector", "nanodet-person", "centernet-person")


class BlazePoseEstimator(OnModel):
    family = "blazepose"
    honours = frozenset({"detector", "min_detection_confidence", "refine_box_crops",
                         "redetect_every", "redetect_when_full", "min_presence_confidence",
                         "refine_heatmap", "world_landmarks", "segmentation",
                         "runtime", "delegate", "provider"})
    finds_people = False
    builtin_detector = None
    reid_iou = REID_IOU
    redetect_when_full = False

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        _check_metadata(model)
        check_input(model, (1, lmk.INPUT_SIZE, lmk.INPUT_SIZE, 3), "landmark")
        roles = ["landmarks", "presence", "heatmap", "world"] + (["segmentation"] if options.segmentation else [])
        self._roles = roles
        self._outputs = [find_output(model, lmk.SHAPES[r], r, "landmark") for r in roles]
        # video mode: the tracked people's crops run in one invoke (estimate_many)
        self._batches = getattr(model, "batches", False) and not options.static_image_mode \
            and options.max_people > 1
        if self._batches:
            model.reserve(min(options.max_people, MAX_BATCH))

    def crop_for(self, detector, detection) -> tuple[Roi, tuple | None]:
        roi_box = getattr(detector, "roi_box", lambda d: None)
        return detector.roi(detection), roi_box(detection)

    def claims(self, crops: list[tuple[int, Roi]], crop: Roi) -> int | None:
        """A tracked person whose crop centre is within SAME_PERSON_DISTANCE of this one's;
        new detections never claim each other (people stand close together)."""
        for i, (track_id, tracked) in enumerate(crops):
            dist = np.hypot(crop.cx - tracked.cx, crop.cy - tracked.cy)
            if track_id >= 0 and dist < SAME_PERSON_DISTANCE * min(crop.size, tracked.size):
                return i
        return None

    def estimate(self, image: np.ndarray, color: str, crop: Roi, from_box: bool,
                 clock: StageClock) -> Estimate | None:
        found = self._landmarks(image, color, crop, clock)
        if found is not None and from_box and self.options.refine_box_crops:
            # A box carries no rotation nor hip centre: crop again where the first pass
            # puts the body, as tracking does on the next frame.
            found = self._landmarks(image, color, roi_from_points(*found.anchor), clock) or found
        return found

    def estimate_many(self, image: np.ndarray, color: str, crops: list[Roi],
                      clock: StageClock) -> list[Estimate | None]:
        """The tracked people's crops (aligned, no second pass): in one invoke where the
        runtime takes a batch (the same outputs as one invoke each), else one by one."""
        if not self._batches or len(crops) < 2:
            return [self._landmarks(image, color, roi, clock) for roi in crops]
        found = []
        for start in range(0, len(crops), MAX_BATCH):
            chunk = crops[start:start + MAX_BATCH]
            t = clock.start()
            inputs = [lmk.preprocess(image, roi, color) for roi in chunk]
            x = np.concatenate([i[0] for i in inputs])
            t = clock.stop("preprocess", t)
            outputs = self.model.run_batch(x, self._outputs)
            clock.stop("landmark", t)
            found += [self._decode({r: o[k:k + 1] for r, o in zip(self._roles, outputs)}, image, roi,
                                   inputs[k][1], clock) for k, roi in enumerate(chunk)]
        return found

    def follow(self, estimate: Estimate, anchor: np.ndarray | None) -> Roi:
        return roi_from_points(*anchor)

    def _landmarks(self, image: np.ndarray, color: str, roi: Roi, clock: StageClock) -> Estimate | None:
        t = clock.start()
        x, to_image = lmk.preprocess(image, roi, color)
        t = clock.stop("preprocess", t)
        out = dict(zip(self._roles, self.model.run(x, self._outputs)))
        clock.stop("landmark", t)
        return self._decode(out, image, roi, to_image, clock)

    def _decode(self, out: dict, image: np.ndarray, roi: Roi, to_image: np.ndarray,
                clock: StageClock) -> Estimate | None:
        o = self.options
        t = clock.start()
        # The presence output is already a probability (MediaPipe thresholds it raw).
        score = float(out["presence"].reshape(-1)[0])
        if score < o.min_presence_confidence:
            clock.stop("postprocess", t)
            return None
        keypoints, aux = lmk.decode(out["landmarks"], out["heatmap"] if o.refine_heatmap else None, roi)
        world = lmk.decode_world(out["world"], roi) if o.world_landmarks else None
        mask = None
        if o.segmentation:
            mask = lmk.decode_mask(out["segmentation"], to_image, (image.shape[1], image.shape[0]))
        pose = Pose(keypoints, score, world=world, mask=mask, roi=roi)
        nxt = roi_from_points(aux[0], aux[1])
        half = nxt.size / 2
        square = (nxt.cx - half, nxt.cy - half, nxt.cx + half, nxt.cy + half)
        # MediaPipe's object scale: the alignment box of the auxiliary points
        scale = 2.0 * float(np.linalg.norm(aux[1] - aux[0]))
        clock.stop("postprocess", t)
        return Estimate(pose, square, roi.size, scale, anchor=aux)


def _check_metadata(model: Model) -> None:
    """A file made by ``edgepose convert`` says what it is: a detector passed as the
    landmark model, or a model made for another input normalisation, is a clear error."""
    from edgepose.model_metadata import TASKS

    info = getattr(model, "metadata", None)
    if not info:
        return
    task = info.get("task")
    if task not in (None, TASK):
        flag = "--detector" if task in _DETECTOR_TASKS else "--model"
        raise ModelError(f"{model.path} was converted as a {task} model, not a {TASK} model: "
                         f"pass it with {flag}")
    expected, given = TASKS[TASK]["input"], info.get("input", {})
    if any(k in given and given[k] != expected[k] for k in ("mean", "std", "color", "layout")):
        raise ModelError(f"{model.path} expects input {given}, but the pipeline feeds {expected}")
