"""Top-down multi-person: any person detector in front of the BlazePose landmark model.

A person detector is a callable ``detector(image_rgb) -> Sequence[Detection]``: image_rgb
is uint8 (H, W, 3) RGB, boxes are image pixels. Each box becomes a square, unrotated ROI
(:func:`~edgepose.decoders.geometry.roi_from_box`); from then on :class:`TopDownPipeline`
behaves as :class:`~edgepose.pipeline.Pipeline`: landmarks, tracking from the landmarks'
own ROI (which brings the rotation back), re-detection every ``redetect_every`` frames
while fewer than ``max_people`` are tracked, smoothing, track ids.

Detectors here: :class:`BlazePoseDetector` (the pipeline's own, as a callable) and
:class:`ModelDetector` (any model file + decoder: NanoDet, CenterNet; see
:data:`DETECTOR_DECODERS`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import cv2
import numpy as np

from edgepose import models
from edgepose.backends import Model, check_input, find_output, load_model
from edgepose.blazepose import detector as det
from edgepose.decoders import centernet, nanodet
from edgepose.decoders.geometry import letterbox_transform, roi_from_box, stretch_transform
from edgepose.decoders.preprocess import InputSpec, make_input
from edgepose.pipeline import Options, Pipeline
from edgepose.profiler import StageClock
from edgepose.types import Detection, Roi

PersonDetector = Callable[[np.ndarray], Sequence[Detection]]


def box_roi(detection: Detection) -> Roi:
    """The default detection -> ROI rule: the box, squared and enlarged (no rotation)."""
    return roi_from_box(detection.box)


class TopDownPipeline(Pipeline):
    """:class:`~edgepose.pipeline.Pipeline` with ``person_detector`` in place of the
    BlazePose detector. Same process() / reset() / close(); close() also closes the
    detector when it has a close() method.

    ``min_detection_confidence`` filters the detector's output when given; by default the
    detector's own threshold stands.

    >>> with TopDownPipeline(BlazePoseDetector(), model="full", max_people=4) as pipe:
    ...     result = pipe.process(frame_bgr, timestamp_ms=t)
    """

    def __init__(self, person_detector: PersonDetector, options: Options | None = None,
                 roi_from_detection: Callable[[Detection], Roi] = box_roi, **overrides) -> None:
        if not callable(person_detector):
            raise TypeError(f"person_detector must be callable, got {type(person_detector).__name__}")
        self.person_detector = person_detector
        self.roi_from_detection = roi_from_detection
        # Pipeline.__init__ still loads its BlazePose detector (unused here): see the
        # refactor note in the report / docs.
        super().__init__(options, **overrides)

    def _detect(self, img: np.ndarray, swap: bool, clock: StageClock, limit: int) -> list[Roi]:
        t = clock.start()
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if swap else img
        t = clock.stop("preprocess", t)
        found = list(self.person_detector(rgb))
        t = clock.stop("detector", t)
        threshold = self.options.min_detection_confidence
        if threshold is not None:
            found = [d for d in found if d.score >= threshold]
        found.sort(key=lambda d: -d.score)
        rois = [self.roi_from_detection(d) for d in found[:limit]]
        clock.stop("postprocess", t)
        return rois

    def close(self) -> None:
        super().close()
        close = getattr(self.person_detector, "close", None)
        if close is not None:
            close()


class BlazePoseDetector:
    """The BlazePose person detector as a PersonDetector.

    The model's own box is the *face*: with ``box="body"`` (default) Detection.box is
    instead the square around the body circle the detector predicts (centre: hip centre,
    radius: distance to the full-body point), which is what a box -> ROI rule needs;
    ``box="face"`` keeps the model's box. Detection.keypoints: the 4 alignment points,
    hip centre first, then the full-body size/rotation point.
    """

    def __init__(self, model: str = "detector", min_score: float = 0.5, threads: int | None = None,
                 runtime: str = "auto", box: str = "body") -> None:
        if box not in ("body", "face"):
            raise ValueError(f"box must be 'body' or 'face', got {box!r}")
        self.min_score, self.box = min_score, box
        self._model = load_model(models.resolve(model, "detector"), runtime=runtime, threads=threads)
        check_input(self._model, (1, det.INPUT_SIZE, det.INPUT_SIZE, 3), "detector")
        n = len(det.anchors())
        self._out = [find_output(self._model, (1, n, 12), "boxes and keypoints", "detector"),
                     find_output(self._model, (1, n, 1), "scores", "detector")]

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        to_image = det.letterbox_transform(image_rgb.shape[1], image_rgb.shape[0])
        boxes, scores = self._model.run(det.preprocess(image_rgb, to_image, False), self._out)
        candidates = det.decode(boxes[0], scores[0], self.min_score)
        found = det.to_detections(det.weighted_nms(*candidates), to_image)
        if self.box == "face":
            return found
        return [dataclasses.replace(d, box=_body_box(d.keypoints)) for d in found]

    def close(self) -> None:
        self._model.close()


def _body_box(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    centre = keypoints[0]
    radius = float(np.hypot(*(keypoints[1] - centre)))
    return (float(centre[0] - radius), float(centre[1] - radius),
            float(centre[0] + radius), float(centre[1] + radius))


class ModelDetector:
    """A PersonDetector from a loaded model, how to feed it, and a decoder.

    decode(outputs, to_image) -> list[Detection] gets every model output (in model
    order) and the input -> image affine. fit: "letterbox" (aspect kept) or "stretch".
    """

    def __init__(self, model: Model, input_spec: InputSpec,
                 decode: Callable[[list[np.ndarray], np.ndarray], list[Detection]],
                 fit: str = "letterbox") -> None:
        if fit not in ("letterbox", "stretch"):
            raise ValueError(f"fit must be 'letterbox' or 'stretch', got {fit!r}")
        self._model, self.input_spec, self._decode, self.fit = model, input_spec, decode, fit

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        w, h = self.input_spec.size
        make = letterbox_transform if self.fit == "letterbox" else stretch_transform
        to_image = make(image_rgb.shape[1], image_rgb.shape[0], w, h)
        outputs = self._model.run(make_input(image_rgb, to_image, self.input_spec))
        return self._decode(outputs, to_image)

    def close(self) -> None:
        self._model.close()


def _nanodet(model: Model, min_score: float, fit: str) -> ModelDetector:
    # Normalisation as the TF.js model was fed in @vladmandic/human (RGB / 255); to be
    # confirmed against the converted model.
    spec = InputSpec.from_tensor(model.inputs[0], normalize="unit", dtype="float32")
    decode = functools.partial(nanodet.decode, score_threshold=min_score, input_size=spec.size[0])
    return ModelDetector(model, spec, decode, fit)


def _centernet(model: Model, min_score: float, fit: str) -> ModelDetector:
    spec = InputSpec.from_tensor(model.inputs[0], normalize="raw", dtype="float32")

    def decode(outputs: list[np.ndarray], to_image: np.ndarray) -> list[Detection]:
        return centernet.decode(outputs[0], to_image, score_threshold=min_score)

    return ModelDetector(model, spec, decode, fit)


# --detector NAME -> factory(model, min_score, fit) for model-file detectors.
DETECTOR_DECODERS = {"nanodet": _nanodet, "centernet": _centernet}


def model_detector(kind: str, path: str, min_score: float = 0.3, fit: str = "letterbox",
                   backend: str = "auto", **backend_options) -> ModelDetector:
    """A NanoDet or CenterNet person detector from a converted model file."""
    if kind not in DETECTOR_DECODERS:
        raise ValueError(f"unknown detector {kind!r}: choose one of {', '.join(DETECTOR_DECODERS)}")
    return DETECTOR_DECODERS[kind](load_model(path, backend, **backend_options), min_score, fit)
