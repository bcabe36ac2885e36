"""Smoothing what was recorded: one track (:func:`smooth_sequence`) or the poses of an
``edgepose run --json`` file (:func:`smooth_records`, ``edgepose smooth``), optionally
forward and then backward (``zero_lag=True``), which cancels the lag of the live filter
but needs the future frames; and the figures that judge a smoother (:func:`jitter`,
:func:`lag_frames`). The filters are :mod:`edgepose.smoothing`'s, as live.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from edgepose.smoothing import MIN_OBJECT_SCALE, OneEuroFilter, OneEuroParams, SmoothingConfig

log = logging.getLogger(__name__)


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
