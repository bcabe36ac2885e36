"""Our pipeline against MediaPipe Pose itself, on every shared image, same model."""

import cv2
import numpy as np
import pytest

from conftest import IMAGES, count_found, load_coco_people, need

mp = pytest.importorskip("mediapipe", reason="parity needs mediapipe (pip install 'edgepose[mediapipe]')")
if not hasattr(mp, "solutions"):
    pytest.skip("this mediapipe has no legacy Solutions API (needs <= 0.10.21)", allow_module_level=True)


@pytest.fixture(scope="module")
def mediapipe_pose():
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        yield pose


def mediapipe_keypoints(pose, bgr):
    h, w = bgr.shape[:2]
    found = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).pose_landmarks
    if found is None:
        return None
    return np.array([[lm.x * w, lm.y * h] for lm in found.landmark])


def test_same_person_same_landmarks_on_every_shared_image(shared_images, image_pipeline, mediapipe_pose):
    compared = 0
    for path in shared_images:
        bgr = cv2.imread(str(path))
        theirs = mediapipe_keypoints(mediapipe_pose, bgr)
        if theirs is None:
            continue
        ours = image_pipeline.process(bgr).poses
        assert ours, f"{path.name}: MediaPipe found a person, we found none"
        diag = np.hypot(*(theirs.max(axis=0) - theirs.min(axis=0)))
        error = np.linalg.norm(ours[0].keypoints[:, :2] - theirs, axis=1).mean()
        assert error <= 0.02 * diag, f"{path.name}: mean landmark distance {error:.1f}px > 2% of {diag:.0f}px"
        compared += 1
    assert compared >= 10, f"MediaPipe found people on only {compared} images"


def test_multi_person_finds_more_annotated_people_than_mediapipe(model_path, mediapipe_pose):
    from edgepose import Pipeline

    sets = {"aic": "test_aic.json", "crowdpose": "test_crowdpose.json",
            "mhp": "test_mhp.json", "exlpose": "test_exlpose.json"}
    ours = theirs = annotated = 0
    with Pipeline(model=model_path("full"), detector=model_path("detector"),
                  static_image_mode=True, max_people=10, threads=2) as pipe:
        for folder, annotations in sets.items():
            people = load_coco_people(need(IMAGES / folder / annotations))
            for name, persons in people.items():
                bgr = cv2.imread(str(IMAGES / folder / name))
                mine = [p.keypoints for p in pipe.process(bgr).poses]
                single = mediapipe_keypoints(mediapipe_pose, bgr)
                ours += count_found(persons, mine)
                theirs += count_found(persons, [] if single is None else [single])
                annotated += len(persons)
    assert ours > theirs, f"found {ours} of {annotated} annotated people, MediaPipe {theirs}"
    assert ours >= theirs + 4
