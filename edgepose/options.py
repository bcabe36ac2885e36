"""Pipeline options, one flat dataclass whose fields are grouped by concern.

Every field carries its help text and its concern (``group``); the CLI builds its flags
from them (one argparse group per concern). Each engine and model family says which
fields it honours (:meth:`Options.check_honoured`): a field it does not honour that was
set to anything but its default is refused with one line, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import os

from edgepose.errors import EdgeposeError

# The concerns, in the order the CLI lists them.
GROUPS = {
    "engine": "engine: where the models run",
    "model": "model: the pose model and how it is fed (your own with --decoder)",
    "detection": "detection: finding people",
    "tracking": "tracking: video mode, people and ids",
    "landmarks": "landmarks: BlazePose landmark outputs",
    "smoothing": "smoothing: One Euro filter in video mode",
}
BACKENDS = ("tflite", "mediapipe", "mediapipe-tasks")
DECODERS = ("heatmap", "simcc", "yolo-pose", "paf", "posenet")


class OptionError(EdgeposeError, ValueError):
    """An option out of range, unknown, or not honoured by the chosen engine or model."""


def _field(default, group: str, help: str):
    return dataclasses.field(default=default, metadata={"group": group, "help": help})


def default_threads() -> int:
    """The interpreter threads when none are given: the CPU cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class Options:
    """Pipeline settings. ``Pipeline(model="heavy", max_people=4)`` sets fields by name."""

    # -- engine ----------------------------------------------------------------------------
    backend: str = _field("tflite", "engine",
        "engine: tflite (edgepose's own pipeline on LiteRT, or ONNX Runtime for .onnx "
        "files), mediapipe (legacy mediapipe.solutions.pose, one person) or mediapipe-tasks "
        "(MediaPipe PoseLandmarker)")
    runtime: str = _field("auto", "engine",
        "TFLite runtime: auto, litert, tflite-runtime or tensorflow")
    threads: int | None = _field(None, "engine",
        "interpreter threads; default the CPU cores, at most 4 (more than the cores are "
        "capped to the cores)")
    delegate: str | None = _field(None, "engine",
        "path of an external TFLite delegate library (EdgeTPU, GPU)")
    provider: str = _field("cpu", "engine",
        "ONNX Runtime provider for .onnx models: cpu, cuda or tensorrt")
    # -- model -----------------------------------------------------------------------------
    model: str = _field("full", "model",
        "pose model: lite, full, heavy (BlazePose), movenet-lightning, movenet-thunder, "
        "movenet-multipose, openpose, efficientpose, posenet (converted first), or a .tflite / "
        ".onnx / .task path")
    decoder: str | None = _field(None, "model",
        "run --model (your .onnx / .tflite pose model) with this decoder: heatmap "
        "(SimpleBaseline, HRNet, ViTPose; top-down behind --detector), simcc (RTMPose; "
        "top-down), yolo-pose, paf (OpenPose part-affinity fields) or posenet (all three "
        "bottom-up); layouts in docs/model_layouts.md")
    keypoint_layout: str = _field("coco17", "model",
        "with --decoder: the model's keypoints, coco17, blazepose33 or mpii16")
    input_size: str | None = _field(None, "model",
        "with --decoder: model input HEIGHTxWIDTH (e.g. 256x192), needed only when the "
        "model's input size is dynamic")
    normalize: str | None = _field(None, "model",
        "with --decoder: input normalisation, imagenet, unit (/255), signed ([-1, 1]) or raw "
        "(0..255); default imagenet, unit for yolo-pose, signed for posenet")
    input_color: str = _field("rgb", "model",
        "with --decoder: channel order the model expects, rgb or bgr")
    refine: str = _field("dark", "model",
        "with --decoder heatmap: sub-pixel refinement, dark, quarter or none")
    # -- detection -------------------------------------------------------------------------
    detector: str = _field("blazepose", "detection",
        "person detector of top-down models: blazepose (MediaPipe's, face-led), nanodet or "
        "centernet (person boxes; convert them first, see `edgepose models`), "
        "blazepose+nanodet or blazepose+centernet (BlazePose's plus the people it missed), "
        "or a model file")
    min_detection_confidence: float | None = _field(None, "detection",
        "detector (or bottom-up pose) score threshold; default per detector (BlazePose: 0.5 "
        "with max_people 1, as MediaPipe, 0.1 with more, where the landmark model's presence "
        "score is the real gate)")
    refine_box_crops: bool = _field(True, "detection",
        "with a box detector (nanodet, centernet), run the BlazePose landmark model a second "
        "time on the rotated, hip-centred crop its first pass gives")
    detector_thread: bool = _field(True, "detection",
        "in video mode, run a box person detector (nanodet, centernet, blazepose+..., a "
        "model file) on its own thread on the newest frame: no frame waits for it, its people "
        "join the tracks a few frames later (it runs on the frame when nobody is tracked, and "
        "with redetect_when_full); off: on the frame, as in image mode and for blazepose")
    # -- tracking --------------------------------------------------------------------------
    static_image_mode: bool = _field(False, "tracking",
        "treat every frame as unrelated (detector on every frame, no tracking, no smoothing); "
        "default: on for images and folders, off for videos and cameras")
    max_people: int = _field(1, "tracking", "most people to find; 1 matches MediaPipe Pose")
    redetect_every: int = _field(10, "tracking",
        "in video mode with max_people > 1, run the detector at least every N frames")
    redetect_when_full: bool | None = _field(None, "tracking",
        "keep re-detecting every redetect_every frames even when max_people are tracked "
        "(re-anchors crops that follow keypoints); default per model: on for --decoder "
        "heatmap/simcc, off for BlazePose, whose crops follow its own alignment points")
    # -- landmarks -------------------------------------------------------------------------
    min_presence_confidence: float = _field(0.5, "landmarks",
        "BlazePose landmark-model presence threshold; below it a person is dropped")
    refine_heatmap: bool = _field(True, "landmarks",
        "refine BlazePose landmark x, y with the model's heatmap")
    world_landmarks: bool = _field(True, "landmarks",
        "decode world landmarks (metres, hip-centred)")
    segmentation: bool = _field(False, "landmarks",
        "decode a person segmentation mask per pose")
    # -- smoothing -------------------------------------------------------------------------
    smoothing: str = _field("default", "smoothing",
        "temporal smoothing in video mode: none, light, default (MediaPipe's settings) or "
        "strong; image mode never smooths")
    smoothing_min_cutoff: float | None = _field(None, "smoothing",
        "override the landmark filter's min_cutoff (Hz; lower is smoother at rest)")
    smoothing_beta: float | None = _field(None, "smoothing",
        "override the landmark filter's beta (higher lags less when moving)")
    mediapipe_smoothing: bool = _field(False, "smoothing",
        "with --backend mediapipe: the legacy graph's own landmark filter (which also steadies "
        "its crop) instead of edgepose's; pass --smoothing none with it")

    def __post_init__(self) -> None:
        for name in ("max_people", "redetect_every", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise OptionError(f"{name} must be a whole number >= 1, got {value!r}")
        for name, allowed in (("backend", BACKENDS), ("decoder", (None, *DECODERS)),
                              ("normalize", (None, "imagenet", "unit", "signed", "raw")),
                              ("input_color", ("rgb", "bgr")), ("refine", ("dark", "quarter", "none")),
                              ("provider", ("cpu", "cuda", "tensorrt"))):
            if getattr(self, name) not in allowed:
                raise OptionError(f"{name} must be one of {', '.join(a for a in allowed if a)}, "
                                  f"got {getattr(self, name)!r}")
        for name in ("min_detection_confidence", "min_presence_confidence"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise OptionError(f"{name} must be in [0, 1], got {value}")
        try:  # in image mode too, which never smooths: a bad value is still a mistake
            from edgepose import smoothing

            smoothing.config_for(self.smoothing, self.smoothing_min_cutoff, self.smoothing_beta)
        except ValueError as exc:
            raise OptionError(str(exc)) from None

    @property
    def smoothing_config(self):
        """The filters the smoothing fields describe (a
        :class:`~edgepose.smoothing.SmoothingConfig`); None when off or in image mode."""
        from edgepose import smoothing

        if self.static_image_mode:
            return None
        return smoothing.config_for(self.smoothing, self.smoothing_min_cutoff, self.smoothing_beta)

    def changed(self) -> dict:
        """The fields set to something other than their default."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    def filled_from(self, preset: dict | None) -> Options:
        """These options with the fields still at their default taken from ``preset``
        (field -> value: what a converted model's metadata says it needs, e.g. its decoder
        and keypoint layout); fields the caller set are kept."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        fill = {k: v for k, v in (preset or {}).items()
                if k in defaults and getattr(self, k) == defaults[k]}
        return dataclasses.replace(self, **fill) if fill else self

    def check_honoured(self, honoured: set[str] | frozenset[str], who: str,
                       why: dict[str, str] | None = None) -> None:
        """OptionError naming the first field set away from its default that ``who`` (an
        engine or model family) does not honour; ``why`` explains some fields by name."""
        for name, value in self.changed().items():
            if name not in honoured:
                flag = "--" + name.replace("_", "-")
                reason = (why or {}).get(name)
                raise OptionError(f"{name}={value!r} ({flag}) is not used by {who}"
                                  f"{': ' + reason if reason else ''}; leave it out")


def fields_by_group() -> dict[str, list[dataclasses.Field]]:
    """The Options fields of each concern, in GROUPS order."""
    out: dict[str, list[dataclasses.Field]] = {g: [] for g in GROUPS}
    for field in dataclasses.fields(Options):
        out[field.metadata["group"]].append(field)
    return out
