"""MoveNet behind the pipeline API: single-pose Lightning / Thunder with MoveNet's own
crop-region tracking, and MultiPose (bottom-up: every person in one pass, up to 6).

Results are the same FrameResult / Pose as the BlazePose pipeline, with the COCO-17 rows
of the 33 filled (``pose.coco17``), the others at zero confidence. The models are the
TF.js models converted by ``edgepose convert tfjs NAME`` (``edgepose models`` says which
are here); any file with MoveNet's input and output also works.

    >>> from edgepose.engines import create_pipeline
    >>> pipe = create_pipeline(model="movenet-thunder")          # picked by the model
    >>> pipe = create_pipeline(model="movenet-multipose", max_people=6)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgepose import models, smoothing
from edgepose.backends import load_model
from edgepose.decoders import movenet as mn
from edgepose.decoders.geometry import letterbox_transform
from edgepose.decoders.preprocess import InputSpec, make_input
from edgepose.detectors import backend_options, model_task
from edgepose.errors import ModelError
from edgepose.image import as_color_image
from edgepose.keypoints import to_pose
from edgepose.pipeline import Options, _default_threads
from edgepose.profiler import StageClock
from edgepose.tracking import BoxTracker
from edgepose.types import FrameResult, Pose

# A person (MultiPose) or a single-pose result whose mean keypoint score is below this is
# dropped, unless Options.min_detection_confidence says otherwise.
MIN_POSE_SCORE = 0.2
# Two MultiPose people in consecutive frames whose boxes overlap this much are one track.
TRACK_IOU = 0.3

MOVENET_TASKS = ("movenet-single", "movenet-multipose")


def is_movenet(model: str) -> bool:
    """Whether ``model`` (a name or file) is a MoveNet model this module runs."""
    known = models.CONVERTIBLE_MODELS.get(str(model))
    if known is not None:
        return known.task in MOVENET_TASKS
    return str(model).endswith((".tflite", ".onnx")) and model_task(str(model)) in MOVENET_TASKS


class MoveNetPipeline:
    """MoveNet on a TFLite interpreter (ONNX Runtime for .onnx files); single-pose or
    MultiPose, chosen by the model's output ((1, 1, 17, 3) or (1, 6, 56))."""

    def __init__(self, options: Options | None = None, **overrides) -> None:
        self.options = dataclasses.replace(options or Options(), **overrides)
        o = self.options
        if o.detector not in ("blazepose", "detector"):
            raise ModelError(f"MoveNet finds people itself: drop --detector {o.detector}")
        path = models.resolve_converted(o.model) or str(o.model)
        self.landmark_path = path
        opts = backend_options(path, o.runtime, o.threads or _default_threads(), o.delegate, o.provider)
        self._model = load_model(path, opts.pop("backend"), **opts)
        self.runtime = f"{'onnx' if path.endswith('.onnx') else 'tflite'}/{self._model.runtime}"
        try:
            self.multipose = self._check_model()
        except BaseException:
            self._model.close()
            raise
        self.input_spec = InputSpec.from_tensor(self._model.inputs[0], normalize="raw")
        config = o.smoothing_config
        self._smoother = smoothing.Smoother(config) if config else None
        self._crop = None            # single pose: next frame's crop region
        self._track_id: int | None = None  # single pose: the id while someone is found
        self._ids = BoxTracker(TRACK_IOU)  # multipose: ids from the model's boxes
        self._boxes: list[tuple] = []  # multipose: this frame's boxes, in pose order
        self._searched_all = True

    def _check_model(self) -> bool:
        shapes = [tuple(s.shape) for s in self._model.outputs]
        if (1, 1, mn.NUM_KEYPOINTS, 3) in shapes:
            return False
        if any(len(s) == 3 and s[-1] == mn.NUM_KEYPOINTS * 3 + 5 for s in shapes):
            return True
        raise ModelError(f"{self.landmark_path} is not a MoveNet model: outputs "
                         f"{[list(s) for s in shapes]}, expected (1, 1, 17, 3) or (1, 6, 56)")

    @property
    def pose_threshold(self) -> float:
        o = self.options.min_detection_confidence
        return MIN_POSE_SCORE if o is None else o

    def process(self, image: np.ndarray, timestamp_ms: float | None = None,
                color: str = "bgr") -> FrameResult:
        clock = StageClock()
        t = clock.start()
        img, swap = as_color_image(image, color)
        height, width = img.shape[:2]
        image_color = "bgr" if swap else "rgb"
        t = clock.stop("preprocess", t)
        if self.multipose:
            poses = self._multipose(img, image_color, clock)
        else:
            poses = self._single(img, image_color, clock)
        o = self.options
        if o.static_image_mode:
            for i, pose in enumerate(poses):
                pose.track_id = i
        else:
            self._assign_ids(poses)
            if self._smoother is not None:
                self._smoother.step_frame(poses, timestamp_ms, clock)
        poses.sort(key=lambda p: p.track_id)
        # "detector ran": the whole image was searched (MultiPose always; single pose when
        # nobody was tracked), not a crop that followed a person
        return FrameResult(poses, (width, height), timestamp_ms, clock.ms, self._searched_all)

    def _single(self, img: np.ndarray, image_color: str, clock: StageClock) -> list[Pose]:
        height, width = img.shape[:2]
        crop = self._crop
        self._searched_all = crop is None or self.options.static_image_mode
        if self._searched_all:
            crop = mn.initial_crop_region(width, height)
        size = self.input_spec.size[0]
        t = clock.start()
        x = make_input(img, crop.crop_to_image(size), self.input_spec, image_color=image_color)
        t = clock.stop("preprocess", t)
        (out,) = self._model.run(x)
        t = clock.stop("landmark", t)
        keypoints = mn.decode_single(out, crop.crop_to_image(size), (size, size))
        pose = to_pose(keypoints, "coco17", roi=crop)
        self._crop = mn.next_crop_region(keypoints, width, height)
        clock.stop("postprocess", t)
        return [pose] if pose.score >= self.pose_threshold else []

    def _multipose(self, img: np.ndarray, image_color: str, clock: StageClock) -> list[Pose]:
        w, h = self.input_spec.size
        t = clock.start()
        to_image = letterbox_transform(img.shape[1], img.shape[0], w, h)
        x = make_input(img, to_image, self.input_spec, image_color=image_color)
        t = clock.stop("preprocess", t)
        out = self._model.run(x)
        t = clock.stop("landmark", t)
        rows = next(o for o in out if o.ndim == 3 and o.shape[-1] == mn.NUM_KEYPOINTS * 3 + 5)
        found = mn.multipose_results(*mn.decode_multipose(rows, to_image, (w, h), self.pose_threshold))
        found = found[:self.options.max_people]
        self._boxes = [det.box for det, _ in found]  # the model's own boxes, for tracking
        clock.stop("postprocess", t)
        return [pose for _, pose in found]

    def _assign_ids(self, poses: list[Pose]) -> None:
        """Single pose: one track while someone is found. MultiPose: by box IoU
        (:class:`~edgepose.tracking.BoxTracker`)."""
        if self.multipose:
            for pose, track_id in zip(poses, self._ids.assign(self._boxes)):
                pose.track_id = track_id
            return
        if not poses:
            self._crop = None
            self._track_id = None
            return
        if self._track_id is None:
            self._track_id = self._ids.new_id()
        poses[0].track_id = self._track_id

    def reset(self) -> None:
        self._crop = None
        self._track_id = None
        self._ids.reset()
        if self._smoother is not None:
            self._smoother.reset()

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> MoveNetPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

