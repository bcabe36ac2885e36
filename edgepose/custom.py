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

import numpy as np

from edgepose import smoothing
from edgepose.backends import load_model
from edgepose.decoders import heatmap, simcc, yolo_pose
from edgepose.decoders.geometry import box_crop_transform, letterbox_transform
from edgepose.decoders.preprocess import InputSpec, make_input, parse_size
from edgepose.detectors import PersonDetector, as_person_detector, backend_options, open_detector
from edgepose.errors import ModelError
from edgepose.image import as_color_image
from edgepose.keypoints import LAYOUTS, to_pose
from edgepose.pipeline import _TORSO, DUPLICATE_TORSO_DISTANCE, EXTRA_CROPS, Options, _default_threads
from edgepose.profiler import StageClock
from edgepose.tracking import BoxTracker
from edgepose.types import FrameResult, Pose

DECODERS = ("heatmap", "simcc", "yolo-pose")
TOP_DOWN = ("heatmap", "simcc")
# A pose whose mean keypoint confidence is below this is dropped.
MIN_POSE_SCORE = 0.2
# Keypoints at least this confident place the next frame's crop; fewer than
# MIN_TRACKED_KEYPOINTS of them and the person is lost.
TRACK_KEYPOINT_SCORE = 0.3
MIN_TRACKED_KEYPOINTS = 3
# Keypoints box -> person box for the next crop (rtmlib's 1.25; the crop adds its own
# TOP_DOWN_PADDING).
KEYPOINT_BOX_SCALE = 1.25
# A detection covering this much of a tracked box (or covered by it) is that person.
SAME_BOX_COVER = 0.6
# A new person overlapping a box of the last frame this much (IoU) takes its id.
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
        if o.segmentation:
            raise ModelError(f"--segmentation needs BlazePose's landmark model; --decoder {o.decoder} "
                             "models give keypoints only")
        if o.decoder not in TOP_DOWN and (person_detector is not None or o.detector not in ("blazepose", "detector")):
            raise ModelError(f"--decoder {o.decoder} finds people itself: drop --detector {o.detector}")
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
        self._tracks: list[_Track] = []  # top-down: where each person's next crop is
        self._ids = BoxTracker(SAME_BOX_IOU)
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
            spec = InputSpec.from_tensor(self._model.inputs[0], **fields)
        except ValueError as exc:
            raise ModelError(f"{self.landmark_path}: {exc}") from None
        shape = tuple(self._model.inputs[0].shape)
        h, w = (shape[2], shape[3]) if spec.channels == "first" else (shape[1], shape[2])
        if (w > 0 and w != spec.size[0]) or (h > 0 and h != spec.size[1]):
            raise ModelError(f"--input-size {o.input_size} does not fit {self.landmark_path}, whose "
                             f"input is {h}x{w}: leave --input-size out")
        return spec

    def _check_outputs(self) -> list[int]:
        """The indices of the outputs the decoder reads, found by shape."""
        k = len(self.layout)
        shapes = [tuple(s.shape) for s in self._model.outputs]
        have = "; ".join(str(s) for s in self._model.outputs)
        decoder = self.options.decoder
        if decoder == "heatmap":
            found = [i for i, s in enumerate(shapes) if len(s) == 4 and k in (s[1], s[3])][:1]
            want = f"(1, {k}, H, W) or (1, H, W, {k}) heatmaps"
        elif decoder == "simcc":
            found = self._simcc_outputs([i for i, s in enumerate(shapes) if len(s) == 3 and s[1] == k])
            want = f"two (1, {k}, bins) vectors, simcc_x then simcc_y"
        else:
            width = 5 + 3 * k
            found = [i for i, s in enumerate(shapes) if len(s) == 3 and width in s[1:]][:1]
            want = f"(1, {width}, anchors) or (1, anchors, {width}) rows"
        if not found:
            raise ModelError(f"{self.landmark_path} has no {decoder} output for {k} keypoints "
                             f"({self.layout.name}): expected {want}, found {have}. Check "
                             "--decoder and --keypoint-layout (docs/model_layouts.md)")
        return found

    def _simcc_outputs(self, candidates: list[int]) -> list[int]:
        """simcc_x then simcc_y: by name when the export names them so, else in model order,
        swapped when only the other order gives both axes the same split ratio."""
        if len(candidates) < 2:
            return []
        outs = self._model.outputs
        names = {outs[i].name.lower(): i for i in candidates}
        if "simcc_x" in names and "simcc_y" in names:
            return [names["simcc_x"], names["simcc_y"]]
        x, y = candidates[:2]
        w, h = self.input_spec.size
        bins_x, bins_y = outs[x].shape[-1], outs[y].shape[-1]
        if bins_x * h != bins_y * w and bins_y * h == bins_x * w:
            x, y = y, x
        return [x, y]

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
            self._smoother.step_frame(poses, timestamp_ms, clock)
        poses.sort(key=lambda p: p.track_id)
        return FrameResult(poses, (width, height), timestamp_ms, clock.ms, searched)

    def reset(self) -> None:
        """Forget every track (e.g. between unrelated videos)."""
        self._tracks = []
        self._ids.reset()
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
        """(pose, the box its next crop comes from) for each person, and whether the
        detector ran. A detection that covers a tracked person re-anchors that track's box
        (so a crop that drifted or shrank with its keypoints is put right)."""
        o = self.options
        crops = [[tr.id, tr.box] for tr in self._tracks]
        searched = self._should_detect(len(crops))
        if searched:
            detector = self.person_detector
            for d in detector.detect(img, image_color, self.detection_threshold, clock):
                box = person_box(detector, d)
                if not (box[2] > box[0] and box[3] > box[1]):
                    continue
                tracked = max(crops, key=lambda c: _covered(c[1], box), default=None)
                if tracked is not None and _covered(tracked[1], box) >= SAME_BOX_COVER:
                    if tracked[0] >= 0:
                        tracked[1] = box
                else:
                    crops.append([-1, box])
            self._frames_since_detection = 0
        else:
            self._frames_since_detection += 1
        found, tries = [], o.max_people + EXTRA_CROPS
        for track_id, box in crops:
            if len(found) >= o.max_people:
                break
            if track_id < 0:
                if tries == 0:
                    break
                tries -= 1
            pose = self._estimate(img, image_color, box, clock)
            if pose is None or any(_same_body(pose, p, b) for p, b in found):
                continue  # nobody there, or a person another crop found first
            pose.track_id = track_id
            # the next crop: the person's keypoints, or this crop when too few are sure
            found.append((pose, _keypoint_box(pose, self.layout) or box))
        alive = {p.track_id for p, _ in found}
        self._lost_track = any(tr.id not in alive for tr in self._tracks)
        return found, searched

    def _should_detect(self, tracked: int) -> bool:
        """Static images and no one tracked: always. Otherwise after a lost track and every
        redetect_every frames, also when max_people are tracked: the detector re-anchors
        the crops and finds newcomers."""
        o = self.options
        if o.static_image_mode or tracked == 0 or self._lost_track:
            return True
        return self._frames_since_detection + 1 >= o.redetect_every

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
        """A tracked crop keeps its id; a new person takes the id of a recent box it
        overlaps (:class:`~edgepose.tracking.BoxTracker`), else a new one. The boxes place
        the next frame's crops (top-down)."""
        ids = self._ids.assign([box for _, box in found], [p.track_id for p, _ in found])
        for (pose, _), track_id in zip(found, ids):
            pose.track_id = track_id
        self._tracks = [_Track(p.track_id, box) for p, box in found]


def person_box(detector, detection) -> tuple[float, float, float, float]:
    """The person's body box for a top-down crop: BlazePose's detections carry the face,
    so the body square from their alignment points; any other detector's box as is."""
    box_of = getattr(detector, "person_box", None)
    return tuple(box_of(detection)) if box_of is not None else tuple(detection.box)


def _keypoint_box(pose: Pose, layout) -> tuple[float, float, float, float] | None:
    """The person box the pose's confident keypoints of ``layout`` give: their box,
    enlarged KEYPOINT_BOX_SCALE x about its centre (joints sit inside the body's outline);
    None when fewer than MIN_TRACKED_KEYPOINTS are sure."""
    rows = [r for r in layout.blazepose_rows if r is not None]
    kp = pose.keypoints[rows]
    seen = kp[kp[:, 3] >= TRACK_KEYPOINT_SCORE, :2]
    if len(seen) < MIN_TRACKED_KEYPOINTS:
        return None
    (x0, y0), (x1, y1) = seen.min(axis=0), seen.max(axis=0)
    if x1 <= x0 or y1 <= y0:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = KEYPOINT_BOX_SCALE * (x1 - x0) / 2, KEYPOINT_BOX_SCALE * (y1 - y0) / 2
    return float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h)


def _covered(a, b) -> float:
    """How much of the smaller of boxes a and b lies inside the other (0..1): a tight
    keypoint box inside a detector's body square covers 1, where their IoU is small."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def _same_body(a: Pose, b: Pose, box) -> bool:
    """Two crops found one person: their torso joints (shoulders, hips) lie within
    DUPLICATE_TORSO_DISTANCE x the crop's longer side of each other."""
    torso = np.linalg.norm(a.keypoints[_TORSO, :2] - b.keypoints[_TORSO, :2], axis=1).mean()
    return torso < DUPLICATE_TORSO_DISTANCE * max(box[2] - box[0], box[3] - box[1])

