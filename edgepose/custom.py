"""Your own pose model, read by a decoder: ``--model mymodel.onnx --decoder heatmap``.

The model plugs in with flags, not a fork (tensor layouts: ``docs/model_layouts.md``):

- ``heatmap`` (SimpleBaseline, HRNet, ViTPose, LiteHRNet) and ``simcc`` (RTMPose) are
  top-down: the person detector (``--detector``) finds people, each box becomes a crop of
  the model's input aspect (:func:`~edgepose.decoders.geometry.box_crop_transform`), and
  in video mode the next crop follows the keypoints, with re-detection as in the
  BlazePose pipeline.
- ``yolo-pose`` is bottom-up: the whole frame, letterboxed, gives every person's box and
  keypoints; track ids follow the boxes (IoU).

Input size, channel order and dtype come from the model (``--input-size HxW`` when it is
dynamic), normalisation and colour order from ``--normalize`` / ``--input-color``.
Results are the same FrameResult / Pose as the other pipelines, the layout's joints in
their BlazePose rows (``pose.coco17`` for a COCO-17 model).

    >>> from edgepose.engines import create_pipeline
    >>> pipe = create_pipeline(model="rtmpose-m.onnx", decoder="simcc", detector="centernet")
    >>> pipe = create_pipeline(model="yolo11n-pose.onnx", decoder="yolo-pose", max_people=6)
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from edgepose import smoothing
from edgepose.backends import load_model
from edgepose.decoders import heatmap, simcc, yolo_pose
from edgepose.decoders.geometry import box_crop_transform, box_iou, letterbox_transform
from edgepose.decoders.preprocess import InputSpec, make_input, parse_size
from edgepose.detectors import PersonDetector, as_person_detector, backend_options, open_detector
from edgepose.errors import ModelError
from edgepose.image import as_color_image
from edgepose.keypoints import LAYOUTS, to_pose
from edgepose.pipeline import Options, _default_threads
from edgepose.profiler import StageClock
from edgepose.types import FrameResult, Pose

DECODERS = ("heatmap", "simcc", "yolo-pose")
TOP_DOWN = ("heatmap", "simcc")
# A pose whose mean keypoint confidence is below this is dropped.
MIN_POSE_SCORE = 0.2
# Keypoints at least this confident place the next frame's crop; fewer than
# MIN_TRACKED_KEYPOINTS of them and the person is lost.
TRACK_KEYPOINT_SCORE = 0.3
MIN_TRACKED_KEYPOINTS = 3
# Boxes overlapping this much (IoU) are one person: a detection and a track, two crops,
# or one person in consecutive frames (yolo-pose track ids).
SAME_BOX_IOU = 0.5
# YOLO pads its letterbox with grey 114.
YOLO_BORDER = 114.0


@dataclasses.dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]


class CustomPipeline:
    """A pose model read by a decoder (heatmap, simcc, yolo-pose), on LiteRT or ONNX
    Runtime, with the same Options, FrameResult and Pose as :class:`Pipeline`."""

    def __init__(self, options: Options | None = None, person_detector=None, **overrides) -> None:
        self.options = dataclasses.replace(options or Options(), **overrides)
        o = self.options
        if o.decoder not in DECODERS:
            raise ModelError(f"unknown decoder {o.decoder!r}: choose {', '.join(DECODERS)}")
        if o.keypoint_layout not in LAYOUTS:
            raise ModelError(f"unknown keypoint layout {o.keypoint_layout!r}: choose {', '.join(LAYOUTS)}")
        if not os.path.isfile(str(o.model)):
            raise ModelError(f"--decoder {o.decoder} runs your own model file: {o.model!r} is not "
                             "a file (give the path of a .onnx or .tflite model)")
        self.landmark_path = str(o.model)
        self.layout = LAYOUTS[o.keypoint_layout]
        runtime_opts = {"runtime": o.runtime, "threads": o.threads or _default_threads(),
                        "delegate": o.delegate, "provider": o.provider}
        opts = backend_options(self.landmark_path, **runtime_opts)
        self._model = load_model(self.landmark_path, opts.pop("backend"), **opts)
        self.runtime = f"{'onnx' if self.landmark_path.endswith('.onnx') else 'tflite'}/{self._model.runtime}"
        self.person_detector: PersonDetector | None = None
        try:
            self.input_spec = self._input_spec()
            self._outputs = self._check_outputs()
            if o.decoder in TOP_DOWN:
                self.person_detector = (as_person_detector(person_detector) if person_detector is not None
                                        else open_detector(o.detector, **runtime_opts))
        except BaseException:
            self._model.close()
            raise
        config = o.smoothing_config
        self._smoother = smoothing.Smoother(config) if config else None
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frames_since_detection = 0
        self._lost_track = False

    # -- model checks ---------------------------------------------------------------------
    def _input_spec(self) -> InputSpec:
        o = self.options
        if len(self._model.inputs) != 1:
            raise ModelError(f"{self.landmark_path} has {len(self._model.inputs)} inputs; "
                             "--decoder models take one image")
        fields = {"normalize": o.normalize or ("unit" if o.decoder == "yolo-pose" else "imagenet"),
                  "color": o.input_color}
        if o.decoder == "yolo-pose":
            fields["border"] = YOLO_BORDER
        try:
            if o.input_size:
                fields["size"] = parse_size(o.input_size)
            return InputSpec.from_tensor(self._model.inputs[0], **fields)
        except ValueError as exc:
            raise ModelError(f"{self.landmark_path}: {exc}") from None

    def _check_outputs(self) -> list[int]:
        """The indices of the outputs the decoder reads, found by shape."""
        k = len(self.layout)
        shapes = [tuple(s.shape) for s in self._model.outputs]
        have = "; ".join(str(s) for s in self._model.outputs)
        decoder = self.options.decoder
        if decoder == "heatmap":
            found = [i for i, s in enumerate(shapes) if len(s) == 4 and k in (s[1], s[3])]
            want = f"(1, {k}, H, W) or (1, H, W, {k}) heatmaps"
        elif decoder == "simcc":
            found = [i for i, s in enumerate(shapes) if len(s) == 3 and s[1] == k][:2]
            want = f"two (1, {k}, bins) vectors, simcc_x then simcc_y"
            if len(found) < 2:
                found = []
        else:
            width = 5 + 3 * k
            found = [i for i, s in enumerate(shapes) if len(s) == 3 and width in s[1:]]
            want = f"(1, {width}, anchors) or (1, anchors, {width}) rows"
        if not found:
            raise ModelError(f"{self.landmark_path} has no {decoder} output for {k} keypoints "
                             f"({self.layout.name}): expected {want}, found {have}. Check "
                             "--decoder and --keypoint-layout (docs/model_layouts.md)")
        return found

    # -- public API -----------------------------------------------------------------------
    @property
    def detection_threshold(self) -> float:
        if self.options.min_detection_confidence is not None:
            return self.options.min_detection_confidence
        if self.person_detector is None:
            return yolo_pose.SCORE_THRESHOLD
        return self.person_detector.default_score(self.options.max_people > 1)

    def process(self, image: np.ndarray, timestamp_ms: float | None = None,
                color: str = "bgr") -> FrameResult:
        """Find poses in one frame (uint8 BGR by default, or RGB with ``color="rgb"``)."""
        clock = StageClock()
        t = clock.start()
        img, swap = as_color_image(image, color)
        height, width = img.shape[:2]
        image_color = "bgr" if swap else "rgb"
        clock.stop("preprocess", t)
        o = self.options
        if o.static_image_mode:
            self._tracks = []
        if self.person_detector is None:
            found, searched = self._bottom_up(img, image_color, clock), True
        else:
            found, searched = self._top_down(img, image_color, clock)
        poses = [pose for pose, _ in found]
        if o.static_image_mode:
            for i, pose in enumerate(poses):
                pose.track_id = i
            return FrameResult(poses, (width, height), timestamp_ms, clock.ms, searched)
        self._assign_ids(found)
        if self._smoother is not None:
            t = clock.start()
            seconds = timestamp_ms / 1000.0 if timestamp_ms is not None else time.monotonic()
            self._smoother.step(poses, seconds)
            clock.stop("smoothing", t)
        poses.sort(key=lambda p: p.track_id)
        return FrameResult(poses, (width, height), timestamp_ms, clock.ms, searched)

    def reset(self) -> None:
        """Forget every track (e.g. between unrelated videos)."""
        self._tracks = []
        self._frames_since_detection = 0
        self._lost_track = False
        if self._smoother is not None:
            self._smoother.reset()

    def close(self) -> None:
        if self.person_detector is not None:
            self.person_detector.close()
        self._model.close()

    def __enter__(self) -> CustomPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------
    def _top_down(self, img: np.ndarray, image_color: str, clock: StageClock):
        """(pose, box it came from) for each person, and whether the detector ran."""
        o = self.options
        crops = [(tr.id, tr.box) for tr in self._tracks]
        searched = self._should_detect(len(crops))
        if searched:
            detector = self.person_detector
            for d in detector.detect(img, image_color, self.detection_threshold, clock):
                box = person_box(detector, d)
                if box[2] > box[0] and box[3] > box[1] and not any(
                        box_iou(box, b) >= SAME_BOX_IOU for _, b in crops):
                    crops.append((-1, box))
            self._frames_since_detection = 0
        else:
            self._frames_since_detection += 1
        found = []
        for track_id, box in crops:
            if len(found) >= o.max_people:
                break
            pose = self._estimate(img, image_color, box, clock)
            if pose is None:
                continue
            pose.track_id = track_id
            follow = _keypoint_box(pose, self.layout)
            if any(box_iou(follow, b) >= SAME_BOX_IOU for _, b in found):
                continue  # another crop found this person first
            found.append((pose, follow))
        self._lost_track = len([f for f in found if f[0].track_id >= 0]) < len(self._tracks)
        return found, searched

    def _should_detect(self, tracked: int) -> bool:
        o = self.options
        if o.static_image_mode or tracked == 0:
            return True
        if tracked >= o.max_people:
            return False
        return self._lost_track or self._frames_since_detection + 1 >= o.redetect_every

    def _estimate(self, img: np.ndarray, image_color: str, box, clock: StageClock) -> Pose | None:
        w, h = self.input_spec.size
        t = clock.start()
        to_image = box_crop_transform(box, w, h)
        x = make_input(img, to_image, self.input_spec, image_color=image_color)
        t = clock.stop("preprocess", t)
        out = self._model.run(x, self._outputs)
        t = clock.stop("landmark", t)
        if self.options.decoder == "heatmap":
            shape = out[0].shape
            channels = "first" if shape[1] == len(self.layout) else "last"
            points = heatmap.decode(out[0], to_image, (w, h), channels=channels,
                                    refine=self.options.refine)
        else:
            ratio = out[0].shape[-1] / w
            points = simcc.decode(out[0], out[1], to_image, split_ratio=ratio)
        pose = to_pose(points, self.layout)
        clock.stop("postprocess", t)
        return pose if pose.score >= MIN_POSE_SCORE else None

    def _bottom_up(self, img: np.ndarray, image_color: str, clock: StageClock):
        w, h = self.input_spec.size
        t = clock.start()
        to_image = letterbox_transform(img.shape[1], img.shape[0], w, h)
        x = make_input(img, to_image, self.input_spec, image_color=image_color)
        t = clock.stop("preprocess", t)
        (out,) = self._model.run(x, self._outputs)
        t = clock.stop("landmark", t)
        scores, boxes, keypoints = yolo_pose.decode(out, to_image, len(self.layout),
                                                    score_threshold=self.detection_threshold,
                                                    max_people=self.options.max_people)
        found = [(pose, det.box) for det, pose in yolo_pose.to_results(scores, boxes, keypoints, self.layout)]
        clock.stop("postprocess", t)
        return found

    def _assign_ids(self, found: list) -> None:
        """Top-down: a tracked crop keeps its id. Both: a new person takes the id of the
        last frame's box it overlaps most (IoU >= SAME_BOX_IOU), else a new one. The next
        frame's crops (top-down) follow the keypoints."""
        free = [tr for tr in self._tracks if all(p.track_id != tr.id for p, _ in found)]
        for pose, box in found:
            if pose.track_id >= 0:
                continue
            best = max(free, key=lambda tr: box_iou(tr.box, box), default=None)
            if best is not None and box_iou(best.box, box) >= SAME_BOX_IOU:
                pose.track_id = best.id
                free.remove(best)
            else:
                pose.track_id, self._next_id = self._next_id, self._next_id + 1
        self._tracks = [_Track(p.track_id, box) for p, box in found if box is not None]


def person_box(detector, detection) -> tuple[float, float, float, float]:
    """The person's body box for a top-down crop: BlazePose's detections carry the face,
    so the body square from their alignment points; any other detector's box as is."""
    box_of = getattr(detector, "person_box", None)
    return tuple(box_of(detection)) if box_of is not None else tuple(detection.box)


def _keypoint_box(pose: Pose, layout) -> tuple[float, float, float, float] | None:
    """The box round the pose's confident keypoints of ``layout`` (None: too few)."""
    rows = [r for r in layout.blazepose_rows if r is not None]
    kp = pose.keypoints[rows]
    seen = kp[kp[:, 3] >= TRACK_KEYPOINT_SCORE, :2]
    if len(seen) < MIN_TRACKED_KEYPOINTS:
        return None
    (x0, y0), (x1, y1) = seen.min(axis=0), seen.max(axis=0)
    if x1 <= x0 or y1 <= y0:
        return None
    return float(x0), float(y0), float(x1), float(y1)

