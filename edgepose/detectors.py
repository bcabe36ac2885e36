"""Person detectors: the first step of the pipeline, interchangeable.

A person detector finds people in a whole frame and says where the landmark model should
look for each: ``detect(image, color, min_score, clock) -> list[Detection]`` (boxes in
image pixels, best first) and ``roi(detection) -> Roi``; optionally ``roi_box(detection)``,
the box an unrotated ROI was made from (None for a rotated one), which gets the pipeline's
second, rotated landmark pass and is skipped when a pose already found fills it.

- :class:`BlazePoseDetector`: MediaPipe's own (face-led: it sees faces, and predicts the
  body from them); its ROI is rotated, from the two alignment points, as in MediaPipe.
- :class:`BoxDetector`: any model that outputs person boxes, read by a decoder: NanoDet
  and CenterNet (:data:`BOX_DETECTORS`). A box becomes a square, unrotated ROI
  (:func:`~edgepose.geometry.roi_from_box`); in video mode the tracker then
  refines it from the landmarks, which brings the rotation back.
- :class:`CombinedDetector` (``blazepose+nanodet``, ``blazepose+centernet``): BlazePose's
  detections plus the boxes it missed.
- Any callable ``f(image_rgb) -> Sequence[Detection]`` of your own, through
  :func:`as_person_detector` (:class:`CallableDetector`).

``open_detector(name_or_path, ...)`` builds one from ``--detector``: ``blazepose``,
``nanodet``, ``centernet`` or a model file (a converted file's metadata says which).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np

from edgepose import models, registry
from edgepose.backends import ENGINES, Model, check_input, engine_for, find_output, open_model
from edgepose.blazepose import detector as det
from edgepose.blazepose.roi import roi_from_points
from edgepose.decoders import centernet, nanodet
from edgepose.geometry import letterbox_transform, roi_from_box, stretch_transform
from edgepose.decoders.preprocess import InputSpec, make_input
from edgepose.errors import ModelError
from edgepose.fileio import not_a_file
from edgepose.profiler import StageClock
from edgepose.types import Detection, Roi


class PersonDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]: ...

    def roi(self, detection: Detection) -> Roi: ...

    def default_score(self, multi_person: bool) -> float: ...

    def close(self) -> None: ...


def _clock(clock: StageClock | None) -> StageClock:
    return clock if clock is not None else StageClock()


class BlazePoseDetector:
    """The BlazePose person detector (224x224, 2254 anchors, weighted NMS).

    Its box is the *face*; ``body_box=True`` reports instead the square around the body
    circle it predicts (centre: hip centre, radius: distance to the full-body point), for
    callers that want a person box. Detection.keypoints: the 4 alignment points, hip
    centre first, then the full-body size/rotation point.
    """

    name = "blazepose"
    # Default score threshold. With several people the detector's low-score candidates are
    # often real people seen from behind or far away (on the shared AIC/CrowdPose/MHP/ExLPose
    # images: 8 of 23 annotated people found at 0.5, 13 of 23 at 0.1, every returned pose
    # matching one), and the landmark model's presence score rejects the rest.
    SINGLE_PERSON_SCORE = 0.5
    MULTI_PERSON_SCORE = 0.1

    def __init__(self, model: str | Model = "detector", body_box: bool = False, **backend_options) -> None:
        if isinstance(model, (str, os.PathLike)):
            path = models.resolve(model, "detector")
            model = open_model(path, **_honoured(path, backend_options))
        self.path, self._model, self.body_box = model.path, model, body_box
        check_input(self._model, (1, det.INPUT_SIZE, det.INPUT_SIZE, 3), "detector")
        n = len(det.anchors())
        self._out = [find_output(self._model, (1, n, 12), "boxes and keypoints", "detector"),
                     find_output(self._model, (1, n, 1), "scores", "detector")]

    @property
    def runtime(self) -> str:
        return getattr(self._model, "runtime", "")

    def default_score(self, multi_person: bool) -> float:
        return self.MULTI_PERSON_SCORE if multi_person else self.SINGLE_PERSON_SCORE

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]:
        clock = _clock(clock)
        t = clock.start()
        to_image = det.letterbox_transform(image.shape[1], image.shape[0])
        x = det.preprocess(image, to_image, color)
        t = clock.stop("preprocess", t)
        boxes, scores = self._model.run(x, self._out)
        t = clock.stop("detector", t)
        score = self.default_score(False) if min_score is None else min_score
        found = det.to_detections(det.weighted_nms(*det.decode(boxes[0], scores[0], score)), to_image)
        found = [dataclasses.replace(d, box=_body_box(d.keypoints) if self.body_box else d.box,
                                     source=self.name) for d in found]
        clock.stop("postprocess", t)
        return found

    def roi(self, detection: Detection) -> Roi:
        return roi_from_points(detection.keypoints[0], detection.keypoints[1])

    def person_box(self, detection: Detection) -> tuple[float, float, float, float]:
        """The body square its alignment points predict (its box is the face)."""
        return _body_box(detection.keypoints)

    def roi_box(self, detection: Detection) -> None:
        """None: its ROI comes from the alignment points (rotated, hip-centred)."""
        return None

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.detect(image_rgb)

    def close(self) -> None:
        self._model.close()


class CombinedDetector:
    """BlazePose's detector, plus the people a box detector finds that it missed.

    detect() returns BlazePose's confident detections (rotated, hip-centred ROI; score
    >= its single-person threshold), then the boxes (box ROI, which the pipeline refines
    with a second landmark pass), then BlazePose's weak detections: those are face-led
    guesses of the body, which in a group often take in a neighbour, so a box of the same
    person goes first; the weak detection's pose then replaces the box's only when it lies
    within that box (``pipeline`` and ``estimators.within``). The pipeline runs them in that order and skips a box that a pose already found fills (IoU of the box and
    the pose's visible joints >= ``pipeline.EXPLAINED_IOU``), so a person BlazePose finds
    keeps its better-aligned crop, while a box whose BlazePose detection the landmark model
    rejected, or that BlazePose never saw (people from behind, far away, in crowds), still
    gets its own crop.
    """

    def __init__(self, primary: BlazePoseDetector, boxes: BoxDetector) -> None:
        self.primary, self.boxes = primary, boxes
        self.name = f"blazepose+{boxes.name}"

    @property
    def runtime(self) -> str:
        return self.boxes.runtime

    def default_score(self, multi_person: bool) -> float:
        return self.primary.default_score(multi_person)

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]:
        found = self.primary.detect(image, color, min_score, clock)
        sure = [d for d in found if d.score >= self.primary.SINGLE_PERSON_SCORE]
        weak = [d for d in found if d.score < self.primary.SINGLE_PERSON_SCORE]
        return sure + self.boxes.detect(image, color, None, clock) + weak

    def _part(self, detection: Detection):
        return self.primary if detection.source == self.primary.name else self.boxes

    def roi(self, detection: Detection) -> Roi:
        return self._part(detection).roi(detection)

    def person_box(self, detection: Detection) -> tuple[float, float, float, float]:
        part = self._part(detection)
        return part.person_box(detection) if part is self.primary else detection.box

    def roi_box(self, detection: Detection) -> tuple[float, float, float, float] | None:
        """The box a detection's ROI was made from: None for BlazePose's (rotated ROI)."""
        return self._part(detection).roi_box(detection)

    def close(self) -> None:
        self.primary.close()
        self.boxes.close()


def _body_box(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    centre = keypoints[0]
    radius = float(np.hypot(*(keypoints[1] - centre)))
    return (float(centre[0] - radius), float(centre[1] - radius),
            float(centre[0] + radius), float(centre[1] + radius))


class BoxDetector:
    """A person-box model: a loaded model, how to feed it, and a decoder.

    decode(outputs, to_image, min_score) -> list[Detection] gets every model output (in
    model order) and the input -> image affine. fit: "letterbox" (aspect kept) or
    "stretch" (as the model was trained / fed upstream).
    """

    def __init__(self, name: str, model: Model, input_spec: InputSpec,
                 decode: Callable[[list[np.ndarray], np.ndarray, float], list[Detection]],
                 fit: str, single_person_score: float, multi_person_score: float) -> None:
        if fit not in ("letterbox", "stretch"):
            raise ValueError(f"fit must be 'letterbox' or 'stretch', got {fit!r}")
        self.name, self._model, self.input_spec, self._decode, self.fit = name, model, input_spec, decode, fit
        self._scores = (single_person_score, multi_person_score)

    @property
    def runtime(self) -> str:
        return getattr(self._model, "runtime", "")

    def default_score(self, multi_person: bool) -> float:
        return self._scores[multi_person]

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]:
        clock = _clock(clock)
        t = clock.start()
        w, h = self.input_spec.size
        make = letterbox_transform if self.fit == "letterbox" else stretch_transform
        to_image = make(image.shape[1], image.shape[0], w, h)
        x = make_input(image, to_image, self.input_spec, image_color=color)
        t = clock.stop("preprocess", t)
        outputs = self._model.run(x)
        t = clock.stop("detector", t)
        score = self.default_score(False) if min_score is None else min_score
        found = [dataclasses.replace(d, source=self.name) for d in self._decode(outputs, to_image, score)]
        clock.stop("postprocess", t)
        return found

    def roi(self, detection: Detection) -> Roi:
        return roi_from_box(detection.box)

    def roi_box(self, detection: Detection) -> tuple[float, float, float, float]:
        """The box its square, unrotated ROI comes from."""
        return detection.box

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        return self.detect(image_rgb)

    def close(self) -> None:
        self._model.close()


class CallableDetector:
    """Your own ``f(image_rgb) -> Sequence[Detection]`` as a person detector; ROI from the
    box unless ``roi_from_detection`` says otherwise. close() calls f.close() if it has one."""

    def __init__(self, fn: Callable[[np.ndarray], Sequence[Detection]],
                 roi_from_detection: Callable[[Detection], Roi] | None = None,
                 min_score: float = 0.0, name: str = "custom") -> None:
        if not callable(fn):
            raise TypeError(f"a person detector must be callable, got {type(fn).__name__}")
        self.name, self._fn, self._roi, self._min_score = name, fn, roi_from_detection, min_score
        self.runtime = ""

    def default_score(self, multi_person: bool) -> float:
        return self._min_score

    def detect(self, image: np.ndarray, color: str = "rgb", min_score: float | None = None,
               clock: StageClock | None = None) -> list[Detection]:
        clock = _clock(clock)
        t = clock.start()
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color == "bgr" else image
        t = clock.stop("preprocess", t)
        found = list(self._fn(rgb))
        t = clock.stop("detector", t)
        score = self._min_score if min_score is None else min_score
        found = sorted((d for d in found if d.score >= score), key=lambda d: -d.score)
        clock.stop("postprocess", t)
        return found

    def roi(self, detection: Detection) -> Roi:
        return self._roi(detection) if self._roi else roi_from_box(detection.box)

    def roi_box(self, detection: Detection) -> tuple[float, float, float, float] | None:
        return None if self._roi else detection.box

    def close(self) -> None:
        close = getattr(self._fn, "close", None)
        if close is not None:
            close()


def as_person_detector(detector) -> PersonDetector:
    """A PersonDetector as is; a plain callable wrapped in :class:`CallableDetector`."""
    if hasattr(detector, "detect") and hasattr(detector, "roi"):
        return detector
    return CallableDetector(detector)


# -- box detectors from model files ------------------------------------------------------------
def _nanodet(model: Model) -> BoxDetector:
    # Fed as @vladmandic/human feeds it: RGB / 255, stretched to 416x416, NCHW.
    spec = InputSpec.from_tensor(model.inputs[0], normalize="unit", dtype="float32")

    def decode(outputs, to_image, min_score):
        return nanodet.decode(outputs, to_image, input_size=spec.size[0], score_threshold=min_score)

    return BoxDetector("nanodet", model, spec, decode, "stretch", 0.35, 0.2)


def _centernet(model: Model) -> BoxDetector:
    # RGB 0..255 (no scaling), stretched to 512x512; output (1, 100, 6) in input pixels.
    spec = InputSpec.from_tensor(model.inputs[0], normalize="raw", dtype="float32")

    def decode(outputs, to_image, min_score):
        rows = next((o for o in outputs if o.shape[-1] == 6 and o.ndim == 3), None)
        if rows is None:
            raise ModelError("CenterNet model has no (1, N, 6) detections output")
        return centernet.decode(rows, to_image, score_threshold=min_score)

    return BoxDetector("centernet", model, spec, decode, "stretch", 0.3, 0.2)


# --detector NAME -> factory(model) for box-detector models; the task in a converted file's
# metadata -> the same names.
BOX_DETECTORS = {"nanodet": _nanodet, "centernet": _centernet}
_TASK_TO_DETECTOR = {"nanodet-person": "nanodet", "centernet-person": "centernet",
                     "blazepose-detector": "blazepose"}
DETECTOR_NAMES = ("blazepose", *BOX_DETECTORS, *(f"blazepose+{n}" for n in BOX_DETECTORS))


def open_detector(name_or_path: str = "blazepose", **options) -> PersonDetector:
    """The person detector ``--detector`` names: blazepose (alias: detector), nanodet,
    centernet (their converted files, see ``edgepose models``), blazepose+nanodet,
    blazepose+centernet (:class:`CombinedDetector`), or a model file: a
    BlazePose-layout detector, or a file made by ``edgepose convert`` (its metadata says
    which decoder). ``options``: runtime, threads, delegate (TFLite), provider (ONNX)."""
    name = "blazepose" if name_or_path in ("detector", "blazepose") else str(name_or_path)
    if name.startswith("blazepose+") and name.split("+", 1)[1] in BOX_DETECTORS:
        boxes = open_detector(name.split("+", 1)[1], **options)
        try:
            return CombinedDetector(BlazePoseDetector("detector", **options), boxes)
        except BaseException:
            boxes.close()
            raise
    if name in BOX_DETECTORS:
        return _open_box(name, registry.resolve_converted(name), options)
    if name == "blazepose" or name in models.KNOWN_MODELS:
        return BlazePoseDetector(name if name != "blazepose" else "detector", **options)
    if not os.path.isfile(name):
        if os.path.lexists(name) or os.path.dirname(name):  # a path, not a name
            raise ModelError(f"detector model {name} {not_a_file(name)}")
        raise ModelError(f"unknown person detector {name!r}: choose {', '.join(DETECTOR_NAMES)} "
                         "or give a model file")
    model = open_model(name, **_honoured(name, options))
    task = (model.metadata or {}).get("task")
    if task is not None and task not in _TASK_TO_DETECTOR:
        model.close()
        raise ModelError(f"{name} was converted as a {task} model, not a person detector: "
                         "pass it with --model")
    kind = _TASK_TO_DETECTOR.get(task or "", "blazepose")
    try:
        return BlazePoseDetector(model) if kind == "blazepose" else BOX_DETECTORS[kind](model)
    except BaseException:
        model.close()
        raise


def is_blazepose_detector(name_or_path: str) -> bool:
    """Whether ``--detector name_or_path`` is BlazePose's own detector, by name or as the
    file (its pinned digests): a few ms a frame, so the pipeline runs it on the frame
    rather than on a thread of its own (a box detector's 10-100 ms pass runs apart)."""
    name = str(name_or_path)
    if name in ("blazepose", "detector"):
        return True
    if name in BOX_DETECTORS or "+" in name or not os.path.isfile(name):
        return False
    return models.sha256_of(name) in models.KNOWN_MODELS["detector"].digests


def _open_box(kind: str, path: str, options: dict) -> BoxDetector:
    return BOX_DETECTORS[kind](open_model(path, **_honoured(path, options)))


def _honoured(path: str, options: dict) -> dict:
    """The runtime options the engine of ``path`` takes (a detector shares the pose
    model's options: a TFLite delegate does not apply to an ONNX detector)."""
    return {k: v for k, v in options.items() if k in ENGINES[engine_for(path)]}
