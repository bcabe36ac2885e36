"""Jitter and lag of each smoothing preset, and of MediaPipe's own smooth_landmarks.

Two clips: the street video (real motion, 50 fps) and a still scene built from a shared
photo repeated with fresh sensor noise (all motion there is jitter). Single-person video
mode, full model. Jitter = median frame-to-frame acceleration of body landmarks / person
size; lag = frames of delay of the smoothed track behind the unsmoothed one of the same
engine, by cross-correlation of velocities on moving landmarks (edgepose.smoothing).
Person size is the keypoint box (mean of width and height) for both engines.
Writes benchmarks/results/smoothing.json.

    python benchmarks/bench_smoothing.py
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from common import IMAGES, RESULTS, STREET, command, machine, use_shared_models, write_json

STILL_IMAGE = IMAGES / "mpii" / "060754485.jpg"
PRESETS = ("none", "light", "default", "strong")


def street_clip() -> tuple[list[np.ndarray], float]:
    from edgepose.sources import read_video

    frames, fps = read_video(STREET)
    return frames, fps or 50.0


def still_clip(n: int = 150, noise: float = 4.0) -> tuple[list[np.ndarray], float]:
    """The same photo n times, each with fresh Gaussian sensor noise (sigma in levels)."""
    image = cv2.imread(str(STILL_IMAGE)).astype(np.float32)
    rng = np.random.default_rng(0)
    return [np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
            for _ in range(n)], 30.0


def keypoint_sizes(track: np.ndarray) -> np.ndarray:
    span = np.nanmax(track[:, :, :2], axis=1) - np.nanmin(track[:, :, :2], axis=1)
    return span.mean(axis=1)


def edgepose_track(frames, fps, preset) -> np.ndarray:
    """(T, 33, 2) of the person found (single-person mode); NaN where nobody is."""
    from edgepose import Pipeline

    track = np.full((len(frames), 33, 2), np.nan)
    with Pipeline(model="full", threads=2, smoothing=preset) as pipe:
        for i, frame in enumerate(frames):
            poses = pipe.process(frame, timestamp_ms=i * 1000.0 / fps).poses
            if poses:
                track[i] = poses[0].keypoints[:, :2]
    return track


def same_person(raw: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``other`` with NaN where it follows another person than ``raw`` (hip centres more
    than a fifth of the person's size apart): a lost and re-detected track may switch."""
    hips = lambda t: t[:, [23, 24], :].mean(axis=1)  # noqa: E731
    apart = np.linalg.norm(hips(raw) - hips(other), axis=1) > 0.2 * keypoint_sizes(raw)
    out = other.copy()
    out[apart] = np.nan
    return out


def mediapipe_track(frames, fps, smooth) -> np.ndarray:
    import mediapipe as mp

    track = np.full((len(frames), 33, 2), np.nan)
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                smooth_landmarks=smooth) as pose:
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            # the legacy API takes no timestamp; it counts frames (its filter assumes 30 fps
            # until it sees real times, which the solution does not pass)
            found = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).pose_landmarks
            if found is not None:
                track[i] = [[lm.x * w, lm.y * h] for lm in found.landmark]
    return track


def measure(tracks: dict[str, np.ndarray], raw_key: dict[str, str], with_lag: bool) -> dict:
    from edgepose.offline_smoothing import jitter, lag_frames

    out = {}
    for name, track in tracks.items():
        sizes = keypoint_sizes(track)
        row = {"jitter": round(jitter(track, sizes), 6),
               "frames_found": int(np.isfinite(track[:, 0, 0]).sum())}
        if with_lag:
            raw = tracks[raw_key[name]]
            row["lag_frames"] = round(lag_frames(raw, same_person(raw, track)), 3)
        out[name] = row
    return out


def main() -> None:
    use_shared_models()
    raw_key = {f"edgepose:{p}": "edgepose:none" for p in PRESETS}
    raw_key |= {"mediapipe:smooth_off": "mediapipe:smooth_off", "mediapipe:smooth_on": "mediapipe:smooth_off"}
    result = {
        "benchmark": "smoothing presets vs MediaPipe smooth_landmarks: jitter and lag",
        "command": command(),
        "device": machine(),
        "definitions": {
            "jitter": "median |x[t+1] - 2x[t] + x[t-1]| of landmarks 11-32 / person size (keypoint box)",
            "lag_frames": "delay of the smoothed track behind the same engine's unsmoothed one, "
                          "cross-correlation of velocities, median over moving coordinates",
        },
        "clips": {},
    }
    for clip_name, (frames, fps), with_lag in (
        ("street_1280x720_50fps", street_clip(), True),
        ("still_photo_with_sensor_noise", still_clip(), False),
    ):
        tracks = {f"edgepose:{p}": edgepose_track(frames, fps, p) for p in PRESETS}
        tracks["mediapipe:smooth_off"] = mediapipe_track(frames, fps, smooth=False)
        tracks["mediapipe:smooth_on"] = mediapipe_track(frames, fps, smooth=True)
        figures = measure(tracks, raw_key, with_lag)
        base_ours = figures["edgepose:none"]["jitter"]
        base_mp = figures["mediapipe:smooth_off"]["jitter"]
        for name, row in figures.items():
            base = base_mp if name.startswith("mediapipe") else base_ours
            row["jitter_vs_unsmoothed"] = round(row["jitter"] / base, 3)
        result["clips"][clip_name] = {"frames": len(frames), "fps": fps, "results": figures}
        print(clip_name)
        for name, row in figures.items():
            lag = f"{row['lag_frames']:6.2f}" if "lag_frames" in row else "     -"
            print(f"  {name:22s} jitter {row['jitter']:.5f} ({row['jitter_vs_unsmoothed']:.2f}x) lag {lag} frames")
    print(f"wrote {write_json(RESULTS / 'smoothing.json', result)}")


if __name__ == "__main__":
    sys.exit(main())
