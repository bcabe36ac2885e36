"""The BlazePose pipeline: frame -> person detector / tracker -> crop -> landmark model ->
decode -> smoothing -> poses. The person detector is interchangeable (BlazePose's own,
NanoDet, CenterNet or yours: :mod:`edgepose.detectors`). Owns the tracking state;
``reset()`` forgets it, ``close()`` frees the models."""

from __future__ import annotations

import dataclasses
import logging
import os
import struct

import numpy as np

from edgepose import models, smoothing
from edgepose.backends import check_input, find_output, load_model
from edgepose.detectors import PersonDetector, as_person_detector, backend_options, open_detector
from edgepose.errors import ModelError
from edgepose.options import Options, default_threads
from edgepose.blazepose import landmarks as lmk
from edgepose.blazepose.roi import roi_from_points
from edgepose.decoders.geometry import box_iou
from edgepose.image import as_color_image
from edgepose.profiler import StageClock
from edgepose.tracking import BoxTracker
from edgepose.types import FrameResult, Pose, Roi

log = logging.getLogger(__name__)

# A new detection closer than this (fraction of ROI size) to a tracked ROI is that person.
SAME_PERSON_DISTANCE = 0.15
# Two poses whose torso points are this close (fraction of ROI size) are one person.
DUPLICATE_TORSO_DISTANCE = 0.1
# New detections beyond max_people whose crops the landmark model may try in one frame
# (a detection it rejects costs one run; the next candidate may be a person).
EXTRA_CROPS = 2
# A new person whose crop overlaps the crop of someone lost in the last
# tracking.MEMORY_FRAMES frames this much (IoU of the unrotated squares: centres within
# about a quarter of the side) takes their id back (the detector missed them, or the
# landmark model's presence dipped on a small or half-hidden person).
REID_IOU = 0.6
# A person box overlapping a found pose's visible joints this much (IoU) is that person.
EXPLAINED_IOU = 0.5
_TORSO = [11, 12, 23, 24]


def _default_threads() -> int:
    return default_threads()


@dataclasses.dataclass
class _Track:
    id: int
    roi: Roi  # where to look in the next frame


class BlazePosePipeline:
    """BlazePose landmarks on a raw TFLite interpreter (or ONNX Runtime for .onnx files),
    behind any person detector.

    >>> pipe = Pipeline(model="full", max_people=2)                  # BlazePose's detector
    >>> pipe = Pipeline(model="heavy", detector="centernet", max_people=6)
    >>> pipe = Pipeline(person_detector=my_fn)     # my_fn(image_rgb) -> list[Detection]
    >>> result = pipe.process(frame_bgr, timestamp_ms=t)   # FrameResult
    >>> for pose in result.poses: pose.keypoints, pose.coco17, pose.track_id

    ``person_detector`` (a :class:`~edgepose.detectors.PersonDetector` or a callable)
    replaces ``options.detector``; close() closes it too.
    """

    def __init__(self, options: Options | None = None, person_detector=None, **overrides) -> None:
        self.options = dataclasses.replace(options or Options(), **overrides)
        o = self.options
        runtime_opts = {"runtime": o.runtime, "threads": o.threads or _default_threads(),
                        "delegate": o.delegate, "provider": o.provider}
        self.landmark_path = models.resolve(o.model, "landmark")
        self.landmark_info = _converted_info(self.landmark_path, "blazepose-landmark")
        opts = backend_options(self.landmark_path, **runtime_opts)
        self._landmark = load_model(self.landmark_path, opts.pop("backend"), **opts)
        try:
            self.person_detector: PersonDetector = (
                as_person_detector(person_detector) if person_detector is not None
                else open_detector(o.detector, **runtime_opts))
        except BaseException:
            self._landmark.close()
            raise
        self.runtime = f"{'onnx' if self.landmark_path.endswith('.onnx') else 'tflite'}/{self._landmark.runtime}"
        self._bind_outputs()
        config = o.smoothing_config
        self._smoother = smoothing.Smoother(config) if config else None
        self._tracks: list[_Track] = []
        self._ids = BoxTracker(REID_IOU)
        self._frames_since_detection = 0
        self._lost_track = False

    @property
    def detection_threshold(self) -> float:
        """The person detector's score threshold: the option, else the detector's default."""
        if self.options.min_detection_confidence is not None:
            return self.options.min_detection_confidence
        return self.person_detector.default_score(self.options.max_people > 1)

    def _bind_outputs(self) -> None:
        m = self._landmark
        check_input(m, (1, lmk.INPUT_SIZE, lmk.INPUT_SIZE, 3), "landmark")
        wanted = ["landmarks", "presence", "heatmap", "world", "segmentation"]
        self._lmk_out = {
            role: find_output(m, lmk.SHAPES[role], role, "landmark") for role in wanted
        }

    # -- public API ---------------------------------------------------------------------
    def process(self, image: np.ndarray, timestamp_ms: float | None = None,
                color: str = "bgr") -> FrameResult:
        """Find poses in one frame. ``image`` is uint8 BGR (default) or RGB with
        ``color="rgb"``; grayscale and 4-channel frames are accepted."""
        clock = StageClock()
        t = clock.start()
        img, swap = as_color_image(image, color)
        height, width = img.shape[:2]
        t = clock.stop("preprocess", t)

        o = self.options
        tracks = [] if o.static_image_mode else self._tracks
        rois = [(tr.id, tr.roi, None) for tr in tracks]
        detector_ran = self._should_detect(len(tracks))
        if detector_ran:
            for roi, box in self._detect(img, swap, clock):
                if not any(_same_person(roi, tr.roi) for tr in tracks):
                    rois.append((None, roi, box))
            self._frames_since_detection = 0
        else:
            self._frames_since_detection += 1

        poses, auxiliary = [], []  # auxiliary: (2, 2) points that place each next crop
        tries = o.max_people + EXTRA_CROPS  # crops of new detections, at most
        for track_id, roi, box in rois:
            if len(poses) >= o.max_people:
                break
            if box is not None and any(_explains(p, box) for p in poses):
                continue  # a person already found fills this box
            if track_id is None:
                if tries == 0:
                    break
                tries -= 1
            found = self._landmarks(img, swap, roi, clock)
            if found is not None and box is not None and o.refine_box_crops:
                # A box carries no rotation nor hip centre: crop again where the first
                # pass puts the body, as tracking does on the next frame.
                again = self._landmarks(img, swap, roi_from_points(*found[1]), clock)
                found = again or found
            if found is None:
                continue
            pose, aux = found
            pose.track_id = -1 if track_id is None else track_id
            if not any(_same_body(pose, p) for p in poses):  # the first crop of a body wins
                poses.append(pose)
                auxiliary.append(aux)

        if o.static_image_mode:
            for i, pose in enumerate(poses):
                pose.track_id = i
            return FrameResult(poses, (width, height), timestamp_ms, clock.ms, detector_ran)

        crops = [_square(roi_from_points(a[0], a[1])) for a in auxiliary]
        for pose, track_id in zip(poses, self._ids.assign(crops, [p.track_id for p in poses])):
            pose.track_id = track_id
        if self._smoother is not None:
            auxiliary = self._smoother.step_frame(poses, timestamp_ms, clock, auxiliary)
        alive = {p.track_id for p in poses}
        self._lost_track = any(tr.id not in alive for tr in tracks)
        self._tracks = [_Track(p.track_id, roi_from_points(a[0], a[1])) for p, a in zip(poses, auxiliary)]
        poses.sort(key=lambda p: p.track_id)
        return FrameResult(poses, (width, height), timestamp_ms, clock.ms, detector_ran)

    def reset(self) -> None:
        """Forget every track (e.g. between unrelated videos)."""
        self._tracks = []
        self._ids.reset()
        self._frames_since_detection = 0
        self._lost_track = False
        if self._smoother is not None:
            self._smoother.reset()

    def close(self) -> None:
        self.person_detector.close()
        self._landmark.close()

    def __enter__(self) -> BlazePosePipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------
    def _should_detect(self, tracked: int) -> bool:
        o = self.options
        if o.static_image_mode or tracked == 0:
            return True
        if tracked >= o.max_people:
            return False
        return self._lost_track or self._frames_since_detection + 1 >= o.redetect_every

    def _detect(self, img: np.ndarray, swap: bool, clock: StageClock) -> list[tuple[Roi, tuple | None]]:
        """The detector's ROIs, best first, each with its person box when the ROI was made
        from that box (None for a rotated ROI from BlazePose's alignment points)."""
        detector = self.person_detector
        found = detector.detect(img, "bgr" if swap else "rgb", self.detection_threshold, clock)
        found = [d for d in found if d.box[2] > d.box[0] and d.box[3] > d.box[1]]
        roi_box = getattr(detector, "roi_box", lambda d: None)
        return [(detector.roi(d), roi_box(d)) for d in found]

    def _landmarks(self, img: np.ndarray, swap: bool, roi: Roi,
                   clock: StageClock) -> tuple[Pose, np.ndarray] | None:
        """Landmarks in ``roi``: the pose and the (2, 2) auxiliary points that place the
        next crop, or None when the model says nobody is there."""
        o = self.options
        t = clock.start()
        x, to_image = lmk.preprocess(img, roi, swap)
        t = clock.stop("preprocess", t)
        roles = ["landmarks", "presence", "heatmap", "world"]
        if o.segmentation:
            roles.append("segmentation")
        out = dict(zip(roles, self._landmark.run(x, [self._lmk_out[r] for r in roles])))
        t = clock.stop("landmark", t)
        # The presence output is already a probability (MediaPipe thresholds it raw).
        score = float(out["presence"].reshape(-1)[0])
        if score < o.min_presence_confidence:
            clock.stop("postprocess", t)
            return None
        heatmap = out["heatmap"] if o.refine_heatmap else None
        keypoints, aux = lmk.decode(out["landmarks"], heatmap, roi)
        world = lmk.decode_world(out["world"], roi) if o.world_landmarks else None
        mask = None
        if o.segmentation:
            mask = lmk.decode_mask(out["segmentation"], to_image, (img.shape[1], img.shape[0]))
        pose = Pose(keypoints, score, world=world, mask=mask, roi=roi)
        clock.stop("postprocess", t)
        return pose, aux


def _converted_info(path: str, task: str) -> dict | None:
    """The metadata of a model made by ``edgepose convert`` (None for other files), checked
    against the role it is given: a detector passed as the landmark model, or a model made
    for another input normalisation, is a clear error."""
    from edgepose.model_metadata import TASKS, read_tflite_metadata

    try:
        info = read_tflite_metadata(path)
    except (ValueError, OSError, struct.error):
        return None  # not ours, or unreadable: the backend's own checks report it
    if info is None:
        return info
    if info.get("task") not in (None, task):
        flag = "--detector" if info["task"] in ("blazepose-detector", "nanodet-person",
                                                 "centernet-person") else "--model"
        raise ModelError(f"{path} was converted as a {info['task']} model, not a {task} "
                         f"model: pass it with {flag}")
    expected = TASKS[task]["input"]
    given = info.get("input", {})
    if any(k in given and given[k] != expected[k] for k in ("mean", "std", "color", "layout")):
        raise ModelError(f"{path} expects input {given}, but the pipeline feeds {expected}")
    return info


def _explains(pose: Pose, box: tuple) -> bool:
    """Whether ``pose`` is the person in ``box``: the box around its visible landmarks
    overlaps ``box`` by EXPLAINED_IOU or more."""
    seen = pose.keypoints[pose.keypoints[:, 3] >= 0.5, :2]
    if len(seen) < 2:
        return False
    return box_iou((*seen.min(axis=0), *seen.max(axis=0)), box) >= EXPLAINED_IOU


def _square(roi: Roi) -> tuple[float, float, float, float]:
    """The ROI's square, unrotated: (x0, y0, x1, y1)."""
    half = roi.size / 2
    return roi.cx - half, roi.cy - half, roi.cx + half, roi.cy + half


def _same_person(a: Roi, b: Roi) -> bool:
    dist = np.hypot(a.cx - b.cx, a.cy - b.cy)
    return dist < SAME_PERSON_DISTANCE * min(a.size, b.size)


def _same_body(a: Pose, b: Pose) -> bool:
    """Whether two poses are one person seen through two crops (BlazePose's and a box
    detector's, or a box holding two people whose crop found the other one): their torsos
    coincide (DUPLICATE_TORSO_DISTANCE)."""
    torso = np.linalg.norm(a.keypoints[_TORSO, :2] - b.keypoints[_TORSO, :2], axis=1).mean()
    return torso < DUPLICATE_TORSO_DISTANCE * min(a.roi.size, b.roi.size)


def Pipeline(options: Options | None = None, person_detector=None, **overrides):
    """Temporary front door while the one loop is built: the engine the options name."""
    from edgepose.engines import create_pipeline

    o = dataclasses.replace(options or Options(), **overrides)
    if person_detector is not None:
        return BlazePosePipeline(o, person_detector=person_detector)
    pipe = create_pipeline(o.backend, o)
    import types as _types

    pipe.describe = _types.MethodType(_describe, pipe)
    return pipe


def _describe(pipe) -> dict:
    from pathlib import Path

    info = getattr(pipe, "landmark_info", None) or {}
    det = getattr(pipe, "person_detector", None)
    return {"backend": pipe.options.backend, "model": pipe.options.model,
            "model_path": pipe.landmark_path, "model_file": Path(pipe.landmark_path).name,
            "runtime": pipe.runtime, "detector": getattr(det, "name", None),
            "variant": info.get("variant"), "converted_from": info.get("source", {}).get("file")}
