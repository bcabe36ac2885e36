"""Your own top-down model read by a decoder: ``--decoder heatmap`` (SimpleBaseline, HRNet,
ViTPose, LiteHRNet) or ``--decoder simcc`` (RTMPose), behind the person detector.

Each detection's person box becomes a crop of the model's input aspect
(:func:`~edgepose.geometry.box_crop_transform`); in video mode the next crop follows the
person's confident keypoints, and periodic re-detection re-anchors it (the schedule's
``redetect_when_full`` is on for these families). Tensor layouts: docs/model_layouts.md.
"""

from __future__ import annotations

import numpy as np

from edgepose.backends import Model
from edgepose.decoders import heatmap, simcc
from edgepose.decoders.preprocess import InputSpec, make_input, parse_size
from edgepose.errors import ModelError
from edgepose.estimators import Estimate, OnModel, keypoint_scale
from edgepose.geometry import box_crop_transform
from edgepose.keypoints import LAYOUTS, Layout, to_pose
from edgepose.options import Options
from edgepose.profiler import StageClock

# A pose whose mean keypoint confidence is below this is dropped.
MIN_POSE_SCORE = 0.2
# Keypoints at least this confident place the next frame's crop; fewer than
# MIN_TRACKED_KEYPOINTS of them and the crop stays where it was.
TRACK_KEYPOINT_SCORE = 0.3
MIN_TRACKED_KEYPOINTS = 3
# Keypoints box -> person box for the next crop (rtmlib's 1.25; the crop adds its own
# TOP_DOWN_PADDING).
KEYPOINT_BOX_SCALE = 1.25
# A detection covering this much of a tracked box (or covered by it) is that person.
SAME_BOX_COVER = 0.6
# A new person overlapping a recent box this much (IoU) takes its id.
REID_IOU = 0.5
MODEL_OPTIONS = frozenset({"decoder", "keypoint_layout", "input_size", "normalize", "input_color",
                           "runtime", "delegate", "provider"})


def model_layout(model: Model, options: Options) -> Layout:
    if options.keypoint_layout not in LAYOUTS:
        raise ModelError(f"unknown keypoint layout {options.keypoint_layout!r}: choose {', '.join(LAYOUTS)}")
    if len(model.inputs) != 1:
        raise ModelError(f"{model.path} has {len(model.inputs)} inputs; --decoder models take one image")
    return LAYOUTS[options.keypoint_layout]


def input_spec(model: Model, options: Options, **fields) -> InputSpec:
    """How to feed ``model``: its own input tensor, with --input-size where it is dynamic,
    --normalize and --input-color."""
    fields.setdefault("normalize", options.normalize or "imagenet")
    fields["color"] = options.input_color
    try:
        if options.input_size:
            fields["size"] = parse_size(options.input_size)
        spec = InputSpec.from_tensor(model.inputs[0], **fields)
    except ValueError as exc:
        raise ModelError(f"{model.path}: {exc}") from None
    shape = tuple(model.inputs[0].shape)
    h, w = (shape[2], shape[3]) if spec.channels == "first" else (shape[1], shape[2])
    if (w > 0 and w != spec.size[0]) or (h > 0 and h != spec.size[1]):
        raise ModelError(f"--input-size {options.input_size} does not fit {model.path}, whose "
                         f"input is {h}x{w}: leave --input-size out")
    return spec


def missing_output(model: Model, decoder: str, layout: Layout, want: str) -> ModelError:
    have = "; ".join(str(s) for s in model.outputs)
    return ModelError(f"{model.path} has no {decoder} output for {len(layout)} keypoints "
                      f"({layout.name}): expected {want}, found {have}. Check --decoder and "
                      "--keypoint-layout (docs/model_layouts.md)")


class TopDownEstimator(OnModel):
    finds_people = False
    builtin_detector = None
    reid_iou = REID_IOU
    redetect_when_full = True

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options, self.family = model, options, options.decoder
        self.honours = MODEL_OPTIONS | {"detector", "min_detection_confidence", "redetect_every",
                                        "redetect_when_full"} | ({"refine"} if self.family == "heatmap" else set())
        self.layout = model_layout(model, options)
        self.input_spec = input_spec(model, options)
        self._outputs = self._heatmap_output() if self.family == "heatmap" else self._simcc_outputs()

    def _heatmap_output(self) -> list[int]:
        k = len(self.layout)
        found = [i for i, s in enumerate(self.model.outputs) if len(s.shape) == 4 and k in (s.shape[1], s.shape[3])]
        if not found:
            raise missing_output(self.model, "heatmap", self.layout, f"(1, {k}, H, W) or (1, H, W, {k}) heatmaps")
        return found[:1]

    def _simcc_outputs(self) -> list[int]:
        """simcc_x then simcc_y: by name when the export names them so, else in model order,
        swapped when only the other order gives both axes the same split ratio."""
        k = len(self.layout)
        outs = self.model.outputs
        candidates = [i for i, s in enumerate(outs) if len(s.shape) == 3 and s.shape[1] == k]
        if len(candidates) < 2:
            raise missing_output(self.model, "simcc", self.layout, f"two (1, {k}, bins) vectors, simcc_x then simcc_y")
        names = {outs[i].name.lower(): i for i in candidates}
        if "simcc_x" in names and "simcc_y" in names:
            return [names["simcc_x"], names["simcc_y"]]
        x, y = candidates[:2]
        w, h = self.input_spec.size
        bins_x, bins_y = outs[x].shape[-1], outs[y].shape[-1]
        if bins_x * h != bins_y * w and bins_y * h == bins_x * w:
            x, y = y, x
        return [x, y]

    def crop_for(self, detector, detection) -> tuple[tuple, tuple]:
        box = person_box(detector, detection)
        return box, box

    def claims(self, crops: list[tuple[int, tuple]], crop: tuple) -> int | None:
        """The crop (tracked or new) this box covers most, when it covers SAME_BOX_COVER."""
        best = max(range(len(crops)), key=lambda i: covered(crops[i][1], crop), default=None)
        return best if best is not None and covered(crops[best][1], crop) >= SAME_BOX_COVER else None

    def estimate(self, image: np.ndarray, color: str, crop: tuple, from_box: bool,
                 clock: StageClock) -> Estimate | None:
        w, h = self.input_spec.size
        t = clock.start()
        to_image = box_crop_transform(crop, w, h)
        x = make_input(image, to_image, self.input_spec, image_color=color)
        t = clock.stop("preprocess", t)
        out = self.model.run(x, self._outputs)
        t = clock.stop("landmark", t)
        if self.family == "heatmap":
            channels = "first" if out[0].shape[1] == len(self.layout) else "last"
            points = heatmap.decode(out[0], to_image, (w, h), channels=channels, refine=self.options.refine)
        else:
            points = simcc.decode(out[0], out[1], to_image, split_ratio=out[0].shape[-1] / w)
        pose = to_pose(points, self.layout)
        clock.stop("postprocess", t)
        if pose.score < MIN_POSE_SCORE:
            return None
        # the next crop: the person's keypoints, or this crop when too few are sure
        nxt = keypoint_crop(pose, self.layout) or tuple(crop)
        return Estimate(pose, nxt, max(crop[2] - crop[0], crop[3] - crop[1]), keypoint_scale(pose),
                        next_crop=nxt)

    def follow(self, estimate: Estimate, anchor) -> tuple:
        return estimate.next_crop


def person_box(detector, detection) -> tuple[float, float, float, float]:
    """The person's body box for a top-down crop: BlazePose's detections carry the face,
    so the body square from their alignment points; any other detector's box as is."""
    box_of = getattr(detector, "person_box", None)
    return tuple(box_of(detection)) if box_of is not None else tuple(detection.box)


def keypoint_crop(pose, layout: Layout) -> tuple[float, float, float, float] | None:
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


def covered(a, b) -> float:
    """How much of the smaller of boxes a and b lies inside the other (0..1): a tight
    keypoint box inside a detector's body square covers 1, where their IoU is small."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0
