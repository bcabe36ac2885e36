"""The One Euro smoother on signals with known answers, and on the real street video."""

import math

import numpy as np
import pytest

from edgepose.offline_smoothing import jitter, lag_frames, smooth_sequence
from edgepose.smoothing import PRESETS, OneEuroFilter, OneEuroParams, Smoother, config_for
from edgepose.types import Pose, Roi

FPS = 30.0
SIZE = 160.0  # the person size the smoother divides by (pixels)
DEFAULT = PRESETS["default"].landmarks


@pytest.mark.parametrize("params, max_ratio", [
    (DEFAULT, 0.6),                   # MediaPipe's settings on 0.25% jitter
    (OneEuroParams(0.5, 0.0), 0.3),   # beta 0: a plain low-pass, alpha ~0.1 at 30 fps
])
def test_noisy_constant_converges(params, max_ratio):
    rng = np.random.default_rng(1)
    sigma = 0.5  # px, on a 200 px person
    f = OneEuroFilter(params)
    out = np.array([f(i / FPS, np.array([100.0 + rng.normal(0, sigma)]), scale=200.0)[0]
                    for i in range(600)])
    assert abs(out[-300:].mean() - 100.0) < 0.1
    assert out[-300:].std() < max_ratio * sigma


def test_ramp_is_followed_with_bounded_lag():
    f = OneEuroFilter(DEFAULT)
    speed = 150.0  # px/s for a 200 px person: a brisk limb movement
    t = np.arange(120) / FPS
    out = np.array([f(ti, np.array([speed * ti]), scale=200.0)[0] for ti in t])
    lag_s = (speed * t[-30:] - out[-30:]).mean() / speed
    assert 0 <= lag_s < 1.0 / FPS, f"lag {lag_s * FPS:.2f} frames"


def test_timestamps_are_real_times_and_zero_is_valid():
    values = [np.array([0.0]), np.array([10.0]), np.array([11.0])]
    def run(t0):
        f = OneEuroFilter(DEFAULT)
        return [f(t0 + i / FPS, v, 100.0)[0] for i, v in enumerate(values)]
    np.testing.assert_allclose(run(0.0), run(12.5))
    # a dropped frame (double dt) is a longer step, not the same step: the output differs
    f = OneEuroFilter(DEFAULT)
    gap = [f(t, v, 100.0)[0] for t, v in zip([0, 1 / FPS, 3 / FPS], values)]
    assert gap[2] != pytest.approx(run(0.0)[2])


def test_repeated_or_backward_timestamps_never_give_nan():
    f = OneEuroFilter(DEFAULT)
    a = f(1.0, np.array([5.0]), 100.0)
    b = f(1.0 + 1 / FPS, np.array([7.0]), 100.0)
    same = f(1.0 + 1 / FPS, np.array([9.0]), 100.0)  # dt = 0: previous output
    np.testing.assert_array_equal(same, b)
    back = f(0.5, np.array([3.0]), 100.0)             # dt < 0: restart from the new value
    np.testing.assert_array_equal(back, [3.0])
    assert np.isfinite([a, b, same, back]).all()


def test_scale_invariance():
    rng = np.random.default_rng(2)
    signal = np.cumsum(rng.normal(0, 3, 90))
    t = np.arange(90) / FPS
    small = smooth_sequence(t, signal, 100.0, DEFAULT)
    large = smooth_sequence(t, signal * 3, 300.0, DEFAULT)
    np.testing.assert_allclose(large, small * 3, rtol=1e-9)


def make_pose(value: float, track_id: int) -> Pose:
    kp = np.zeros((33, 5), np.float32)
    kp[:, :2] = value
    kp[:, 3:] = 1.0
    return Pose(kp, 0.9, track_id=track_id, roi=Roi(value, value, 200.0))


def test_step_after_lost_track_is_not_smeared():
    smoother = Smoother(PRESETS["default"])
    for i in range(30):
        smoother.step([make_pose(0.0, 7)], i / FPS, [SIZE])
    continuing = Smoother(PRESETS["default"])
    for i in range(30):
        continuing.step([make_pose(0.0, 7)], i / FPS, [SIZE])
    smoother.step([], 30 / FPS)                       # the person is lost for a frame
    back = make_pose(100.0, 7)
    smoother.step([back], 31 / FPS, [SIZE])
    assert back.keypoints[0, 0] == pytest.approx(100.0)  # fresh state: no smear
    jumped = make_pose(100.0, 7)
    continuing.step([jumped], 31 / FPS, [SIZE])
    assert jumped.keypoints[0, 0] < 99.0                 # without the loss it is smoothed


def test_tracks_are_filtered_independently():
    rng = np.random.default_rng(3)
    both, alone = Smoother(PRESETS["default"]), Smoother(PRESETS["default"])
    for i in range(40):
        a = make_pose(50 + rng.normal(0, 3), 1)
        b = make_pose(400 + rng.normal(0, 3), 2)
        a_copy = make_pose(float(a.keypoints[0, 0]), 1)
        both.step([a, b], i / FPS, [SIZE, SIZE])
        alone.step([a_copy], i / FPS, [SIZE])
        np.testing.assert_allclose(a.keypoints, a_copy.keypoints)


def test_visibility_is_low_passed_and_input_arrays_untouched():
    smoother = Smoother(PRESETS["default"])
    first = make_pose(10.0, 0)
    smoother.step([first], 0.0, [SIZE])
    pose = make_pose(10.0, 0)
    pose.keypoints[:, 3] = 0.0
    original = pose.keypoints
    smoother.step([pose], 1 / FPS, [SIZE])
    assert pose.keypoints[0, 3] == pytest.approx(0.9)  # alpha 0.1 towards 0
    assert original[0, 3] == 0.0                       # the old array was not written into


def test_zero_lag_offline_smoother_cancels_the_lag():
    rng = np.random.default_rng(4)
    t = np.arange(300) / FPS
    clean = 80 * np.sin(2 * math.pi * 0.7 * t)
    track = np.zeros((300, 33, 2))
    track[:, :, 0] = clean[:, None] + rng.normal(0, 1.5, (300, 33))
    params = OneEuroParams(0.5, 0.5)
    forward = smooth_sequence(t, track, 200.0, params)
    both_ways = smooth_sequence(t, track, 200.0, params, zero_lag=True)
    assert lag_frames(track, forward) > 0.5
    assert abs(lag_frames(track, both_ways)) < 0.25
    sizes = np.full(300, 200.0)
    assert jitter(both_ways, sizes) < 0.5 * jitter(track, sizes)


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "silky"}, "unknown smoothing preset"),
    ({"preset": "none", "beta": 3.0}, "'none' preset"),
    ({"preset": "default", "min_cutoff": 0.0}, "min_cutoff must be a number > 0"),
    ({"preset": "default", "min_cutoff": float("inf")}, "min_cutoff must be a number > 0"),
    ({"preset": "default", "beta": -1.0}, "beta must be a number >= 0"),
    ({"preset": "default", "beta": float("nan")}, "beta must be a number >= 0"),
])
def test_bad_parameters_fail_fast(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config_for(**kwargs)


def test_pipeline_smoothing_cuts_jitter_on_real_video(model_path):
    import cv2

    from conftest import STREET, need
    from edgepose import Pipeline

    cap = cv2.VideoCapture(str(need(STREET)))
    frames = [cap.read()[1] for _ in range(80)]
    tracks = {}
    for preset in ("none", "default"):
        with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2,
                      smoothing=preset) as pipe:
            results = [pipe.process(f, timestamp_ms=i * 20.0) for i, f in enumerate(frames)]
        assert all(len(r.poses) == 1 for r in results)
        assert ("smoothing" in results[5].stages_ms) == (preset != "none")
        tracks[preset] = (np.stack([r.poses[0].keypoints for r in results]),
                          np.array([r.poses[0].roi.size for r in results]))
    raw, smooth = jitter(*tracks["none"]), jitter(*tracks["default"])
    assert smooth < 0.7 * raw, f"jitter {raw:.5f} -> {smooth:.5f}"


def synthetic_records(n=60, gap_at=None, step_ms=1000 / 30):
    """One person walking right with noise, ``n`` video frames ``step_ms`` apart (none
    in frame ``gap_at``), as ``edgepose run --json`` writes them."""
    rng = np.random.default_rng(5)
    records = []
    for i in range(n):
        kp = np.zeros((33, 5))
        kp[:, 0] = 100 + 2 * i + rng.normal(0, 1.0, 33)
        kp[:, 1] = 200 + np.arange(33) * 5 + rng.normal(0, 1.0, 33)
        kp[:, 3:] = 1.0
        poses = [] if i == gap_at else [{"id": 0, "score": 1.0, "bbox": [0, 0, 1, 1],
                                         "keypoints": kp.tolist()}]
        records.append({"frame": i, "mode": "video", "timestamp_ms": i * step_ms, "poses": poses})
    return records


def test_offline_records_smoothing_reduces_jitter_and_keeps_input():
    from edgepose.offline_smoothing import smooth_records

    records = synthetic_records()
    before = [r["poses"][0]["keypoints"][0][:] for r in records]
    out = smooth_records(records, PRESETS["strong"], zero_lag=True)
    assert [r["poses"][0]["keypoints"][0] for r in records] == before  # input untouched
    raw = np.array([r["poses"][0]["keypoints"] for r in records])
    smooth = np.array([r["poses"][0]["keypoints"] for r in out])
    sizes = np.full(len(records), 160.0)
    assert jitter(smooth, sizes) < 0.5 * jitter(raw, sizes)


def test_offline_gap_restarts_the_track():
    from edgepose.offline_smoothing import smooth_records

    records = synthetic_records(gap_at=30)
    out = smooth_records(records, PRESETS["strong"])
    # the first frame after the gap starts a fresh filter: it is the raw value
    np.testing.assert_allclose(out[31]["poses"][0]["keypoints"], records[31]["poses"][0]["keypoints"], atol=1e-3)
    moved = np.abs(np.subtract(out[29]["poses"][0]["keypoints"], records[29]["poses"][0]["keypoints"]))
    assert moved.max() > 0.1
