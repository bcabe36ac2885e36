"""Temporal smoothing: the One Euro filter (Casiez, Roussel, Vogel, CHI 2012) with the
refinements MediaPipe's landmark smoothing uses.

- Values are multiplied by 1 / object size before the speed estimate, so one ``beta``
  works for people near and far (``scale_invariant``).
- The sampling rate comes from the frame timestamps, so variable frame rates and dropped
  frames are handled.
- A repeated timestamp returns the previous output; a timestamp that goes back restarts
  the filter (a video was rewound); neither can produce NaN.
- One filter state per track: a track that disappears loses its state, and a person who
  comes back starts fresh.

Two ways to use it: :class:`Smoother` filters live, frame by frame (a forward filter:
causal, with the small lag every causal filter has); :mod:`edgepose.offline_smoothing`
filters whole recorded tracks and ``edgepose run --json`` files, optionally forward and
then backward (``zero_lag=True``), which cancels the lag but needs the future frames.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from edgepose.types import Pose

log = logging.getLogger(__name__)

MIN_OBJECT_SCALE = 1e-6


@dataclasses.dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff (Hz): smoothing at rest, lower is smoother. beta: how fast the cutoff
    opens with speed, higher means less lag when moving. derivative_cutoff (Hz): smoothing
    of the speed estimate. scale_invariant: divide values by the object size first."""

    min_cutoff: float
    beta: float
    derivative_cutoff: float = 1.0
    scale_invariant: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_cutoff < math.inf:
            raise ValueError(f"min_cutoff must be a number > 0, got {self.min_cutoff}")
        if not 0 < self.derivative_cutoff < math.inf:
            raise ValueError(f"derivative_cutoff must be a number > 0, got {self.derivative_cutoff}")
        if not 0 <= self.beta < math.inf:  # NaN fails every comparison
            raise ValueError(f"beta must be a number >= 0, got {self.beta}")


@dataclasses.dataclass(frozen=True)
class SmoothingConfig:
    """Filters for one person: image landmarks, world landmarks, the auxiliary points
    that place the next crop, and a low-pass (alpha) for visibility. None turns one off."""

    landmarks: OneEuroParams | None
    world: OneEuroParams | None
    auxiliary: OneEuroParams | None
    visibility_alpha: float | None

    def with_landmarks(self, min_cutoff: float | None = None, beta: float | None = None) -> SmoothingConfig:
        """The same config with the landmark filter's parameters overridden."""
        base = self.landmarks or PRESETS["default"].landmarks
        params = dataclasses.replace(
            base,
            min_cutoff=base.min_cutoff if min_cutoff is None else min_cutoff,
            beta=base.beta if beta is None else beta,
        )
        return dataclasses.replace(self, landmarks=params)


# "default" is MediaPipe's pose_landmark_filtering.pbtxt; "light" and "strong" move the
# landmark filter towards less lag or less jitter (see benchmarks/results/smoothing.json).
PRESETS: dict[str, SmoothingConfig | None] = {
    "none": None,
    "light": SmoothingConfig(
        landmarks=OneEuroParams(0.1, 120.0), world=OneEuroParams(0.2, 60.0, scale_invariant=False),
        auxiliary=OneEuroParams(0.01, 10.0), visibility_alpha=0.3),
    "default": SmoothingConfig(
        landmarks=OneEuroParams(0.05, 80.0), world=OneEuroParams(0.1, 40.0, scale_invariant=False),
        auxiliary=OneEuroParams(0.01, 10.0), visibility_alpha=0.1),
    "strong": SmoothingConfig(
        landmarks=OneEuroParams(0.02, 30.0), world=OneEuroParams(0.05, 20.0, scale_invariant=False),
        auxiliary=OneEuroParams(0.01, 10.0), visibility_alpha=0.1),
}


def config_for(preset: str, min_cutoff: float | None = None,
               beta: float | None = None) -> SmoothingConfig | None:
    """The config of a preset name, with optional landmark-filter overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown smoothing preset {preset!r}: choose {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if min_cutoff is None and beta is None:
        return config
    if config is None:
        raise ValueError("smoothing parameters were given with the 'none' preset: pick a preset")
    return config.with_landmarks(min_cutoff, beta)


def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * frequency)


class OneEuroFilter:
    """One Euro filter over an array of values (each element filtered on its own)."""

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._raw: np.ndarray | None = None
        self._out: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(self, t: float, value: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Filter ``value`` observed at time ``t`` (seconds). ``scale`` is the object size
        the values are divided by when the filter is scale invariant."""
        value = np.asarray(value, dtype=np.float64)
        if self._t is not None:
            if t == self._t:
                return self._out.copy()
            if t < self._t:
                log.warning("timestamp went back (%.6f s after %.6f s): smoothing restarts", t, self._t)
                self.reset()
        p = self.params
        value_scale = 1.0 / scale if p.scale_invariant else 1.0
        if self._t is None:
            self._t, self._raw, self._out = t, value.copy(), value.copy()
            self._speed = np.zeros_like(value)
            return value.copy()
        frequency = 1.0 / (t - self._t)
        speed = (value - self._raw) * value_scale * frequency
        self._speed += _alpha(p.derivative_cutoff, frequency) * (speed - self._speed)
        cutoff = p.min_cutoff + p.beta * np.abs(self._speed)
        self._out += _alpha(cutoff, frequency) * (value - self._out)
        self._t, self._raw = t, value.copy()
        return self._out.copy()


class LowPass:
    """Exponential low-pass: out = alpha * value + (1 - alpha) * previous out."""

    def __init__(self, alpha: float) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._out: np.ndarray | None = None

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        self._out = value.copy() if self._out is None else self._out + self.alpha * (value - self._out)
        return self._out.copy()


class PersonFilter:
    """The filter state of one tracked person."""

    def __init__(self, config: SmoothingConfig) -> None:
        self.landmarks = OneEuroFilter(config.landmarks) if config.landmarks else None
        self.world = OneEuroFilter(config.world) if config.world else None
        self.auxiliary = OneEuroFilter(config.auxiliary) if config.auxiliary else None
        self.visibility = LowPass(config.visibility_alpha) if config.visibility_alpha else None

    def apply(self, pose: Pose, t: float, scale: float) -> None:
        """Smooth ``pose`` in place (its arrays are replaced, never written into)."""
        kp = pose.keypoints.copy()
        if scale >= MIN_OBJECT_SCALE:
            if self.landmarks:
                kp[:, :3] = self.landmarks(t, kp[:, :3], scale)
            if self.world and pose.world is not None:
                pose.world = self.world(t, pose.world, scale).astype(np.float32)
        if self.visibility:
            kp[:, 3] = self.visibility(kp[:, 3])
        pose.keypoints = kp.astype(np.float32)

    def apply_auxiliary(self, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        if self.auxiliary is None or scale < MIN_OBJECT_SCALE:
            return points
        return self.auxiliary(t, points, scale)


class Smoother:
    """Per-track smoothing for a live stream. Call :meth:`step` once per frame with all
    poses of that frame; tracks that are absent lose their state."""

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        self._people: dict[int, PersonFilter] = {}

    def step(self, poses: list[Pose], t: float, scales: list[float] | None = None,
             anchors: list[np.ndarray | None] | None = None) -> list[np.ndarray | None]:
        """Smooth each pose in place at time ``t`` (seconds). ``scales``: each person's
        size in pixels, which values are divided by (default: the keypoints' box);
        ``anchors``: points that place each person's next crop (or None), smoothed with
        the auxiliary filter and returned."""
        alive = {p.track_id for p in poses}
        for track_id in list(self._people):
            if track_id not in alive:
                del self._people[track_id]  # lost: a re-appearing person starts fresh
        scales = scales if scales is not None else [keypoint_scale(p) for p in poses]
        anchors = anchors if anchors is not None else [None] * len(poses)
        out = []
        for pose, scale, anchor in zip(poses, scales, anchors):
            person = self._people.get(pose.track_id)
            if person is None:
                person = self._people[pose.track_id] = PersonFilter(self.config)
            person.apply(pose, t, scale)
            out.append(None if anchor is None else person.apply_auxiliary(anchor, t, scale))
        return out

    def step_frame(self, poses: list[Pose], t: float, scales: list[float],
                   anchors: list[np.ndarray | None], clock) -> list[np.ndarray | None]:
        """:meth:`step`, timed as the "smoothing" stage of ``clock`` (a
        :class:`~edgepose.profiler.StageClock`)."""
        started = clock.start()
        out = self.step(poses, t, scales, anchors)
        clock.stop("smoothing", started)
        return out

    def reset(self) -> None:
        self._people.clear()


class NoSmoother:
    """Smoothing off: the same interface, values untouched."""

    config = None

    def step(self, poses, t, scales=None, anchors=None):
        return list(anchors) if anchors is not None else [None] * len(poses)

    def step_frame(self, poses, t, scales, anchors, clock):
        return list(anchors)

    def reset(self) -> None:
        pass


def smoother_for(config: SmoothingConfig | None) -> Smoother | NoSmoother:
    return NoSmoother() if config is None else Smoother(config)


def keypoint_scale(pose: Pose) -> float:
    """A person's size when nothing better is known: the mean of the keypoints' box width
    and height, in pixels."""
    span = pose.keypoints[:, :2].max(axis=0) - pose.keypoints[:, :2].min(axis=0)
    return float(span.mean())
