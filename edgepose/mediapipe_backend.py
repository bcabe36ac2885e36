"""MediaPipe's own engine as an estimator of the one :class:`edgepose.Pipeline` loop.

Two engines, chosen by ``Options.backend``:

- ``mediapipe``: the legacy ``mediapipe.solutions.pose.Pose`` graph (mediapipe>=0.10.14,
  <=0.10.21, the ``mediapipe-legacy`` extra; 0.10.30 and later have no solutions). One person.
- ``mediapipe-tasks``: ``mediapipe.tasks.python.vision.PoseLandmarker`` on any release with
  the Tasks API (the ``mediapipe`` extra: current releases, NumPy 2; image and video
  running modes, ``max_people`` poses). It needs a ``.task`` bundle: one is built on the
  fly from the detector and landmark model files edgepose resolves (and cached under
  ``edgepose.models.cache_dir()``), so nothing is downloaded; a ``.task`` path is also
  accepted as ``model``.

Both are bottom-up estimators (MediaPipe finds and follows people inside its own graph);
the pipeline around them validates frames and timestamps, gives track ids (the shared
tracker, by box overlap), smooths and assembles the same :class:`FrameResult` of
:class:`Pose`, with these differences, all MediaPipe's:

- ``Pose.score`` is the mean of the 33 landmark presence values: MediaPipe thresholds the
  model's pose-presence score but does not return it.
- MediaPipe has no track ids: edgepose's tracker gives them from the keypoint boxes, as
  for any bottom-up model. ``Pose.roi`` is None (MediaPipe keeps it).
- ``FrameResult.stages_ms`` has ``preprocess`` (validation, BGR to RGB), ``mediapipe``
  (the whole MediaPipe call: it exposes no per-stage timing), ``postprocess`` and, when
  on, ``smoothing``. ``detector_ran`` is inferred from MediaPipe's rule: the detector runs
  when fewer than ``max_people`` were found in the previous frame (every frame in image
  mode).
- ``threads`` sets the XNNPACK threads of the Tasks graph; left at None, MediaPipe keeps
  its own default (one thread on desktop Linux, which is also steadier than two on a busy
  2-core machine). The legacy API has no thread setting and warns when it is given.
- Smoothing (``Options.smoothing``) is edgepose's One Euro smoother applied to MediaPipe's
  raw output, per track, from the caller's timestamps, with any ``max_people``. The legacy API's own filter
  (``mediapipe_smoothing=True``, which also steadies its tracking crop but runs on MediaPipe's
  simulated 30 fps clock) is an alternative to it, not an addition.
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from edgepose import models
from edgepose.errors import BackendError, ModelError
from edgepose.estimators import BottomUp, Estimate, keypoint_box, keypoint_scale
from edgepose.mediapipe_files import TASK_SUFFIX, cached_task_bundle, legacy_model_file
from edgepose.options import Options
from edgepose.profiler import StageClock
from edgepose.types import Pose

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = "mediapipe>=0.10.14,<=0.10.21"  # of the legacy engine
INSTALL_HINT = "pip install 'edgepose[mediapipe]' (the Tasks engine) or 'edgepose[mediapipe-legacy]'"
# MediaPipe's own default detector threshold, used when min_detection_confidence is None.
# (Our pipeline lowers it to 0.1 for several people because it drops duplicate poses;
# PoseLandmarker does not, and at 0.1 returns several poses for one body.)
MEDIAPIPE_DETECTION_SCORE = 0.5
LEGACY_COMPLEXITY = {"lite": 0, "full": 1, "heavy": 2}

# Options both MediaPipe engines honour beyond the loop's own; any other field must keep
# its default (Options.check_honoured).
HONOURS = frozenset({"detector", "min_detection_confidence", "min_presence_confidence",
                     "world_landmarks", "segmentation"})
# A person found again overlapping a recent keypoint box this much takes its id.
REID_IOU = 0.3


def import_mediapipe():
    """The ``mediapipe`` module, or a BackendError that says what to install."""
    try:
        import mediapipe
    except ImportError as exc:
        raise BackendError(f"this backend needs MediaPipe, which could not be imported ({exc}): "
                           f"{INSTALL_HINT}") from None
    return mediapipe


def _landmark_array(landmarks, width: int, height: int) -> np.ndarray:
    """(33, 5) float32 from MediaPipe's normalised landmarks: x, y in pixels, z scaled by
    the image width (MediaPipe's convention, so pixels like ours), visibility, presence."""
    kp = np.array([[lm.x, lm.y, lm.z, _or_zero(lm.visibility), _or_zero(lm.presence)]
                   for lm in landmarks], dtype=np.float32)
    kp[:, 0] *= width
    kp[:, 1] *= height
    kp[:, 2] *= width
    return kp


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else value


def _world_array(landmarks) -> np.ndarray:
    return np.array([[lm.x, lm.y, lm.z] for lm in landmarks], dtype=np.float32)


class _MediaPipeEngine(BottomUp):
    """What both MediaPipe engines share: MediaPipe's people as estimates."""

    honours = HONOURS
    reid_iou = REID_IOU

    def __init__(self, options: Options) -> None:
        self.options = options
        self._mp = import_mediapipe()
        self._previous_people = 0
        self.runtime = f"{self.family}/mediapipe {getattr(self._mp, '__version__', '?')}"

    def find(self, image: np.ndarray, color: str, clock: StageClock,
             timestamp_ms: float | None) -> tuple[list[Estimate], bool]:
        o = self.options
        t = clock.start()
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color == "bgr" else image
        height, width = rgb.shape[:2]
        t = clock.stop("preprocess", t)
        # MediaPipe's rule: its detector runs when fewer than max_people were found last
        detector_ran = o.static_image_mode or self._previous_people < o.max_people
        people = self._run(rgb, timestamp_ms)
        t = clock.stop("mediapipe", t)
        found = []
        for landmarks, world, mask in people:
            kp = _landmark_array(landmarks, width, height)
            pose = Pose(kp, float(kp[:, 4].mean()),
                        world=_world_array(world) if o.world_landmarks and world is not None else None,
                        mask=mask if o.segmentation else None)
            box = keypoint_box(pose)
            found.append(Estimate(pose, box, max(box[2] - box[0], box[3] - box[1]), keypoint_scale(pose)))
        self._previous_people = len(found)
        clock.stop("postprocess", t)
        return found, detector_ran

    def describe(self) -> dict:
        return {"family": self.family, "model_path": self.landmark_path, "runtime": self.runtime,
                "detector": "blazepose"}

    def reset(self) -> None:
        self._previous_people = 0

    def _run(self, rgb: np.ndarray, timestamp_ms: float | None) -> list[tuple]:
        """MediaPipe on one RGB frame: a (landmarks, world landmarks, mask) per person."""
        raise NotImplementedError


# -- legacy Solutions API ---------------------------------------------------------------
def _import_legacy():
    mp = import_mediapipe()
    try:
        from mediapipe.python import solution_base
        from mediapipe.python.solutions import pose
    except ImportError:
        raise BackendError(
            f"backend 'mediapipe' needs MediaPipe's legacy Solutions API, which mediapipe "
            f"{getattr(mp, '__version__', '?')} does not have (it was removed in 0.10.30): "
            f"pip install 'edgepose[mediapipe-legacy]' ({SUPPORTED_VERSIONS}), or use backend "
            "'mediapipe-tasks'") from None
    return pose, solution_base


class MediaPipeSolution(_MediaPipeEngine):
    """MediaPipe's legacy ``mediapipe.solutions.pose.Pose`` (backend ``mediapipe``).

    ``mediapipe_smoothing=True`` turns on the legacy graph's own landmark filter (which
    also steadies its tracking crop) in place of edgepose's smoother: pass
    ``smoothing="none"`` with it.

    >>> with Pipeline(backend="mediapipe", model="full") as pipe:
    ...     result = pipe.process(frame_bgr, timestamp_ms=t)
    """

    family = "mediapipe"
    honours = HONOURS | {"mediapipe_smoothing"}

    def __init__(self, options: Options) -> None:
        smooth_landmarks = options.mediapipe_smoothing
        self._pose = None
        super().__init__(options)
        o = self.options
        pose_module, solution_base = _import_legacy()
        if o.max_people > 1:
            raise BackendError(f"backend 'mediapipe' (legacy Solutions API) finds one person; "
                               f"for max_people={o.max_people} use backend 'mediapipe-tasks'")
        if o.model not in LEGACY_COMPLEXITY:
            raise BackendError(f"backend 'mediapipe' runs only the lite, full and heavy models "
                               f"it loads itself, not {o.model!r}: use backend "
                               "'mediapipe-tasks' (or 'tflite') for a model file")
        if o.detector not in ("blazepose", "detector"):
            raise BackendError("backend 'mediapipe' runs only its own detector, not "
                               f"{o.detector!r}: use backend 'mediapipe-tasks' for a detector file")
        if smooth_landmarks and o.smoothing_config is not None:
            raise BackendError("mediapipe_smoothing=True is MediaPipe's own smoothing; it replaces "
                               f"edgepose's (smoothing={o.smoothing!r}): pass smoothing='none' with it")
        if o.threads is not None:
            log.warning("backend 'mediapipe' has no thread setting: threads=%d is not applied "
                        "(MediaPipe uses its own XNNPACK default)", o.threads)
        self.landmark_path = str(legacy_model_file(o.model))
        self.detector_path = str(models.mediapipe_dir() / models.KNOWN_MODELS["detector"].wheel_path)
        self.smooth_landmarks = smooth_landmarks
        self._solution_base = solution_base.SolutionBase
        try:
            self._pose = pose_module.Pose(
                static_image_mode=o.static_image_mode,
                model_complexity=LEGACY_COMPLEXITY[o.model],
                smooth_landmarks=smooth_landmarks,
                enable_segmentation=o.segmentation,
                smooth_segmentation=smooth_landmarks,
                min_detection_confidence=(o.min_detection_confidence
                                          if o.min_detection_confidence is not None
                                          else MEDIAPIPE_DETECTION_SCORE),
                min_tracking_confidence=o.min_presence_confidence,
            )
        except RuntimeError as exc:
            raise ModelError(f"MediaPipe could not start its pose graph with "
                             f"{self.landmark_path}: {exc}") from None

    def _run(self, rgb: np.ndarray, timestamp_ms: float | None) -> list[tuple]:
        # Pose.process() clears every landmark's presence before returning; the base
        # class's process() is the same graph call without that, so presence survives.
        result = self._solution_base.process(self._pose, {"image": rgb})
        if result.pose_landmarks is None:
            return []
        world = result.pose_world_landmarks.landmark if result.pose_world_landmarks else None
        mask = None
        if self.options.segmentation and result.segmentation_mask is not None:
            mask = np.array(result.segmentation_mask, dtype=np.float32)  # own the memory
        return [(result.pose_landmarks.landmark, world, mask)]

    def reset(self) -> None:
        super().reset()
        self._pose.reset()

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


# -- Tasks API ------------------------------------------------------------------------------
def _import_tasks():
    mp = import_mediapipe()
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        raise BackendError(
            f"backend 'mediapipe-tasks' needs mediapipe.tasks, which mediapipe "
            f"{getattr(mp, '__version__', '?')} does not provide ({exc}): "
            "pip install 'edgepose[mediapipe]'") from None
    return BaseOptions, vision


class MediaPipeTasks(_MediaPipeEngine):
    """MediaPipe Tasks ``PoseLandmarker`` (backend ``mediapipe-tasks``).

    ``model`` is lite, full, heavy, a landmark ``.tflite`` file (bundled with ``detector``
    on the fly) or a ready ``.task`` bundle. In video mode MediaPipe needs strictly
    increasing whole-millisecond timestamps: ``timestamp_ms`` when given, else one more
    than the last.

    >>> with Pipeline(backend="mediapipe-tasks", model="full", max_people=3) as pipe:
    ...     result = pipe.process(frame_bgr, timestamp_ms=t)
    """

    family = "mediapipe-tasks"

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        o = self.options
        self._base_options, self._vision = _import_tasks()
        # the XNNPACK threads of the graph, capped at the cores as the pipeline caps them;
        # None keeps MediaPipe's own default
        self.threads = None if o.threads is None else min(o.threads, os.cpu_count() or 1)
        if str(o.model).endswith(TASK_SUFFIX):
            if o.detector not in ("blazepose", "detector"):
                raise BackendError(f"{o.model} is a .task bundle and carries its own detector; "
                                   f"drop detector={o.detector!r}")
            from edgepose.task_bundle import check_task_bundle

            check_task_bundle(o.model)
            self.bundle_path = str(o.model)
            self.detector_path = self.landmark_path = self.bundle_path
        else:
            if o.detector in ("nanodet", "centernet"):
                raise BackendError(f"MediaPipe Tasks runs BlazePose's detector only; "
                                   f"--detector {o.detector} needs --backend tflite")
            name = "detector" if o.detector == "blazepose" else o.detector
            self.detector_path = models.resolve(name, "detector")
            self.landmark_path = models.resolve(o.model, "landmark")
            self.bundle_path = str(cached_task_bundle(self.detector_path, self.landmark_path))
        self._landmarker = None
        self._last_timestamp: int | None = None
        self._start()

    def _start(self) -> None:
        o = self.options
        vision = self._vision
        threads = self.threads

        class ThreadedOptions(vision.PoseLandmarkerOptions):
            # PoseLandmarkerOptions has no thread setting; the graph's acceleration proto does.
            def to_pb2(self):
                proto = super().to_pb2()
                if threads is not None:
                    proto.base_options.acceleration.xnnpack.num_threads = threads
                return proto

        mode = vision.RunningMode.IMAGE if o.static_image_mode else vision.RunningMode.VIDEO
        options = ThreadedOptions(
            base_options=self._base_options(model_asset_path=self.bundle_path),
            running_mode=mode,
            num_poses=o.max_people,
            min_pose_detection_confidence=(o.min_detection_confidence
                                           if o.min_detection_confidence is not None
                                           else MEDIAPIPE_DETECTION_SCORE),
            min_pose_presence_confidence=o.min_presence_confidence,
            output_segmentation_masks=o.segmentation,
        )
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"MediaPipe PoseLandmarker could not load {self.bundle_path}: "
                             f"{exc}") from None

    def _timestamp(self, timestamp_ms: float | None) -> int:
        if timestamp_ms is None:
            ts = 0 if self._last_timestamp is None else self._last_timestamp + 1
        else:
            ts = int(round(timestamp_ms))  # MediaPipe counts whole milliseconds
            if self._last_timestamp is not None and ts <= self._last_timestamp:
                # the pipeline has checked the clock; within one millisecond, or a video
                # that went back: MediaPipe's graph needs a later whole millisecond
                ts = self._last_timestamp + 1
        self._last_timestamp = ts
        return ts

    def _run(self, rgb: np.ndarray, timestamp_ms: float | None) -> list[tuple]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if self.options.static_image_mode:
            result = self._landmarker.detect(image)
        else:
            result = self._landmarker.detect_for_video(image, self._timestamp(timestamp_ms))
        worlds = result.pose_world_landmarks or []
        masks = result.segmentation_masks or []
        people = []
        for i, landmarks in enumerate(result.pose_landmarks):
            world = worlds[i] if i < len(worlds) else None
            mask = None
            if i < len(masks):
                view = masks[i].numpy_view()
                mask = np.array(view, dtype=np.float32).reshape(view.shape[:2])  # own the memory
            people.append((landmarks, world, mask))
        return people

    def reset(self) -> None:
        """Forget the tracked people; timestamps may start again from zero."""
        super().reset()
        self.close()
        self._last_timestamp = None
        self._start()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
