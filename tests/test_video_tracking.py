"""Tracking on the real street video: ids stay stable, the detector runs only when needed."""

import cv2
import numpy as np
import pytest

from conftest import STREET, need


@pytest.fixture(scope="module")
def street_frames():
    from edgepose.sources import read_video

    frames, fps = read_video(need(STREET))
    assert len(frames) == 205 and fps == 50
    return frames


def run(frames, **options):
    from edgepose import Pipeline

    with Pipeline(threads=2, **options) as pipe:
        return [pipe.process(f, timestamp_ms=i * 20.0) for i, f in enumerate(frames)]


def test_single_person_runs_detector_on_a_minority_of_frames(street_frames, model_path):
    results = run(street_frames, model=model_path("full"), detector=model_path("detector"))
    detector_frames = sum(r.detector_ran for r in results)
    assert detector_frames < len(results) / 4, f"detector ran on {detector_frames} of {len(results)}"
    with_pose = [r for r in results if r.poses]
    assert len(with_pose) > 0.9 * len(results)
    assert len({p.track_id for r in with_pose for p in r.poses}) <= 1 + detector_frames


def test_multi_person_ids_are_stable(street_frames, model_path):
    results = run(street_frames[:100], model=model_path("full"), detector=model_path("detector"),
                  max_people=5)
    counts = [len(r.poses) for r in results]
    assert max(counts) >= 3, "several people walk through the street video"
    ids = {p.track_id for r in results for p in r.poses}
    assert len(ids) <= 2 * max(counts), f"{len(ids)} ids for at most {max(counts)} people at once"
    # a track id follows one body: its hips never jump by more than a third of its ROI
    jumps = 0
    for prev, cur in zip(results, results[1:]):
        before = {p.track_id: p for p in prev.poses}
        for pose in cur.poses:
            if pose.track_id in before:
                old = before[pose.track_id]
                hip_move = np.linalg.norm(pose.keypoints[[23, 24], :2].mean(0) - old.keypoints[[23, 24], :2].mean(0))
                jumps += hip_move > old.roi.size / 3
    assert jumps == 0
    # within a frame, ids are unique
    assert all(len({p.track_id for p in r.poses}) == len(r.poses) for r in results)


def test_reset_forgets_tracks(street_frames, model_path):
    from edgepose import Pipeline

    with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2) as pipe:
        assert pipe.process(street_frames[0]).detector_ran
        assert not pipe.process(street_frames[1]).detector_ran
        pipe.reset()
        assert pipe.process(street_frames[2]).detector_ran


def test_person_gone_means_track_lost(street_frames, model_path):
    from edgepose import Pipeline

    with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2) as pipe:
        assert len(pipe.process(street_frames[0]).poses) == 1
        empty = np.full_like(street_frames[0], 127)
        assert pipe.process(empty).poses == []  # presence below threshold: no pose
        assert pipe.process(street_frames[1]).detector_ran  # so the detector looks again


def test_a_person_back_after_a_short_gap_keeps_their_id(street_frames, model_path):
    """Hidden for a few frames (here: blank frames), found again where they were: same id
    (tracking.MEMORY_FRAMES); gone for longer: a new id."""
    from edgepose import Pipeline
    from edgepose.tracking import MEMORY_FRAMES

    empty = np.full_like(street_frames[0], 127)
    short = [street_frames[0], street_frames[1], empty, empty, empty, street_frames[5]]
    long = [street_frames[0], *[empty] * (MEMORY_FRAMES + 1), street_frames[1]]
    for frames, ids in ((short, [0, 0, None, None, None, 0]), (long, [0, *[None] * (MEMORY_FRAMES + 1), 1])):
        with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2) as pipe:
            got = [pipe.process(f, timestamp_ms=20.0 * i).poses for i, f in enumerate(frames)]
        assert [p[0].track_id if p else None for p in got] == ids


def test_rgb_and_bgr_give_the_same_poses(street_frames, image_pipeline):
    bgr = street_frames[0]
    a = image_pipeline.process(bgr).poses
    b = image_pipeline.process(np.ascontiguousarray(bgr[..., ::-1]), color="rgb").poses
    gray = image_pipeline.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a[0].keypoints, b[0].keypoints, atol=1e-3)
    assert gray.image_size == (1280, 720)


def test_caller_frame_is_not_modified_and_outputs_are_complete(street_frames, model_path):
    from edgepose import Pipeline

    frame = street_frames[0].copy()
    before = frame.copy()
    with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2,
                  segmentation=True) as pipe:
        result = pipe.process(frame)
    np.testing.assert_array_equal(frame, before)
    pose = result.poses[0]
    assert pose.world.shape == (33, 3) and np.abs(pose.world).max() < 2.5  # metres
    assert pose.mask.shape == (720, 1280) and pose.mask.dtype == np.float32
    x, y, w, h = pose.bbox
    inside = pose.mask[int(y):int(y + h), int(x):int(x + w)].mean()
    assert inside > 4 * pose.mask.mean(), "the mask is on the person"
    assert set(result.stages_ms) >= {"preprocess", "detector", "landmark", "postprocess"}
