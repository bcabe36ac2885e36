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
causal, with the small lag every causal filter has); :func:`smooth_sequence` filters a
whole recorded track, optionally forward and then backward (``zero_lag=True``), which
cancels the lag but needs the future frames, so it is for offline files only.
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


def smooth_sequence(times_s: np.ndarray, values: np.ndarray, scales: np.ndarray | float,
                    params: OneEuroParams, zero_lag: bool = False) -> np.ndarray:
    """Filter one recorded track offline.

    times_s: (T,) increasing seconds. values: (T, ...) e.g. (T, 33, 3) keypoints.
    scales: (T,) object sizes, or one number. zero_lag=False is the same causal filter as
    the live :class:`Smoother`; zero_lag=True runs it forward, then backward over the
    result, which cancels the lag (offline only: it uses future frames).
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if times_s.ndim != 1 or len(times_s) != len(values):
        raise ValueError(f"times_s must be (T,) matching values (T, ...), got {times_s.shape} and {values.shape}")
    if len(times_s) > 1 and not np.all(np.diff(times_s) > 0):
        raise ValueError("times_s must be strictly increasing for offline smoothing")
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), times_s.shape)

    def forward(t, v, s):
        f = OneEuroFilter(params)
        return np.stack([f(ti, vi, si) for ti, vi, si in zip(t, v, s)])

    out = forward(times_s, values, scales)
    if zero_lag:
        out = forward(-times_s[::-1], out[::-1], scales[::-1])[::-1]
    return out


# -- measurement: how much jitter a track has, and how far a smoothed track lags -------------
BODY = slice(11, 33)  # shoulders to feet: the face points move with the head, not the body


def jitter(keypoints: np.ndarray, sizes: np.ndarray) -> float:
    """Median frame-to-frame acceleration of body landmarks, as a fraction of person size.

    keypoints: (T, 33, >=2) one person's track, NaN rows where the person was not found.
    sizes: (T,) person size (e.g. ROI side) in the same units.
    """
    xy = np.asarray(keypoints, dtype=np.float64)[:, BODY, :2]
    accel = xy[2:] - 2 * xy[1:-1] + xy[:-2]
    norm = np.linalg.norm(accel, axis=2) / np.asarray(sizes, dtype=np.float64)[1:-1, None]
    norm = norm[np.isfinite(norm)]
    if norm.size == 0:
        raise ValueError("no three consecutive frames with the person: cannot measure jitter")
    return float(np.median(norm))


def lag_frames(raw: np.ndarray, smoothed: np.ndarray, max_lag: int = 10,
               min_motion: float = 1.0) -> float:
    """Delay of ``smoothed`` behind ``raw`` in frames (positive: smoothed is late).

    Both (T, 33, >=2), the same person in the same frames. For each body coordinate that
    moves (std of its velocity at least ``min_motion``, in the input units), find the shift
    that best correlates the two velocity series, refined to sub-frame by a parabola
    through the peak; return the median over moving coordinates.
    """
    a = np.asarray(raw, dtype=np.float64)[:, BODY, :2].reshape(len(raw), -1)
    b = np.asarray(smoothed, dtype=np.float64)[:, BODY, :2].reshape(len(smoothed), -1)
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    a, b = np.diff(a[ok], axis=0), np.diff(b[ok], axis=0)
    lags = []
    shifts = np.arange(-max_lag, max_lag + 1)
    for j in range(a.shape[1]):
        va, vb = a[:, j] - a[:, j].mean(), b[:, j] - b[:, j].mean()
        if va.std() < min_motion or len(va) <= 2 * max_lag + 2:
            continue
        corr = np.array([np.dot(va[max(0, -k):len(va) - max(0, k)], vb[max(0, k):len(vb) - max(0, -k)])
                         / (len(va) - abs(k)) for k in shifts])
        i = int(np.argmax(corr))
        shift = float(shifts[i])
        if 0 < i < len(corr) - 1:
            denom = corr[i - 1] - 2 * corr[i] + corr[i + 1]
            if denom < 0:
                shift += 0.5 * (corr[i - 1] - corr[i + 1]) / denom
        lags.append(shift)
    if not lags:
        raise ValueError("no body landmark moves enough to measure lag")
    return float(np.median(lags))


def record_times(records: list[dict], fps: float = 30.0) -> tuple[list[float], list[bool]]:
    """The time in seconds of each ``edgepose run --json`` record, read as a live pipeline
    reads a stream's timestamps, and whether the record starts a new sequence (where every
    filter restarts, as a live pipeline resets its tracks).

    ``timestamp_ms`` is used while it goes forward. One that goes back (a rewound or new
    video), or a frame number that is not after the last one (a run appended to the file),
    starts a new sequence. From a repeated timestamp on (a live pipeline then switches to
    its own clock, and reads no timestamp again until a new run), and for records without
    one, frames are timed at ``fps`` from the last time. Times strictly increase within a
    sequence: a timestamp behind the time of the records before it (timed at ``fps``) is
    replaced by that clock."""
    if not 0 < fps < math.inf:  # NaN fails both comparisons
        raise ValueError(f"fps must be a number > 0, got {fps}")
    times: list[float] = []
    starts: list[bool] = []
    last_ms: float | None = None  # the last timestamp trusted
    frame_clock = False  # a timestamp repeated: the frames are timed at fps from then on
    prev: tuple[float, int] | None = None  # (seconds, frame) of the record before
    for rec in records:
        frame, ms = rec["frame"], rec.get("timestamp_ms")
        start = prev is None or frame <= prev[1]
        if start and prev is not None:
            log.info("frame %s follows frame %s: a new run in the file, smoothing restarts", frame, prev[1])
        if start:
            last_ms, frame_clock = None, False  # a new run: a new pipeline with a new clock
        if ms is not None and not frame_clock and last_ms is not None:
            if ms == last_ms:
                log.warning("frame %s repeats timestamp_ms %s: timing the frames from there on at "
                            "%g fps, as a live run switches to its own clock", frame, ms, fps)
                frame_clock = True
            elif ms < last_ms:
                log.warning("timestamp_ms goes back at frame %s (%s ms after %s ms): a new video? "
                            "smoothing restarts", frame, ms, last_ms)
                start, last_ms = True, None
        if ms is not None and not frame_clock:
            t, last_ms = ms / 1000.0, ms
        elif start:
            t = frame / fps
        else:
            t = prev[0] + (frame - prev[1]) / fps
        if not start and t <= prev[0]:  # behind the frame clock of records without one
            log.info("frame %s: timestamp_ms %s is behind the frames timed at %g fps before it: "
                     "timed at %g fps too", frame, ms, fps, fps)
            t = prev[0] + (frame - prev[1]) / fps
        times.append(t)
        starts.append(start)
        prev = (t, frame)
    return times, starts


def smooth_records(records: list[dict], config: SmoothingConfig, zero_lag: bool = False,
                   fps: float = 30.0) -> list[dict]:
    """Smooth the poses of ``edgepose run --json`` records offline (a new list; the input
    is not changed). Each track id is filtered over its runs of consecutive frames (a gap
    restarts it, as live). Times and restarts come from :func:`record_times` (``fps`` for
    records without a usable ``timestamp_ms``). The object size is the keypoint box (the
    JSON has no crop); a pose of no size is left as it is, as live. ``zero_lag`` runs each
    filter forward and backward (see :func:`smooth_sequence`)."""
    import copy

    times, starts = record_times(records, fps)
    out = copy.deepcopy(records)
    runs: dict[int, list[list[tuple[float, dict, float]]]] = {}
    last_frame: dict[int, int] = {}
    shape: dict[int, tuple[int, ...]] = {}
    for rec, t, start in zip(out, times, starts):
        if start:
            last_frame.clear()
        for pose in rec["poses"]:
            tid = pose["id"]
            kp = np.asarray(pose["keypoints"], dtype=np.float64)
            if last_frame.get(tid) != rec["frame"] - 1 or shape.get(tid) != kp.shape:
                runs.setdefault(tid, []).append([])
            last_frame[tid], shape[tid] = rec["frame"], kp.shape
            scale = float((kp[:, :2].max(axis=0) - kp[:, :2].min(axis=0)).mean())
            if scale >= MIN_OBJECT_SCALE:  # else unfiltered, the filter state kept (as live)
                runs[tid][-1].append((t, pose, scale))
    for segments in runs.values():
        for segment in segments:
            if len(segment) < 2:
                continue
            times_s = np.array([t for t, _, _ in segment])
            scales = np.array([s for _, _, s in segment])
            kp = np.array([p["keypoints"] for _, p, _ in segment], dtype=np.float64)  # (T, 33, 5)
            if config.landmarks:
                kp[:, :, :3] = smooth_sequence(times_s, kp[:, :, :3], scales, config.landmarks, zero_lag)
            worlds = [p.get("world") for _, p, _ in segment]
            smoothed_world = None
            if config.world and all(w is not None for w in worlds) \
                    and len({np.shape(w) for w in worlds}) == 1:
                smoothed_world = smooth_sequence(times_s, np.array(worlds), 1.0, config.world, zero_lag)
            for i, (_, pose, _) in enumerate(segment):
                pose["keypoints"] = np.round(kp[i], 4).tolist()
                if smoothed_world is not None:
                    pose["world"] = np.round(smoothed_world[i], 5).tolist()
    return out
