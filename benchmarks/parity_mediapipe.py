"""The figures behind tests/test_parity_mediapipe.py: per shared image, the mean landmark
distance between edgepose and mediapipe.solutions.pose (full model, static image mode) as
a percentage of the person's box diagonal; and how many annotated people each finds on
the AIC, CrowdPose, MHP and ExLPose samples (edgepose with max_people 10). Writes
benchmarks/results/parity_mediapipe.json.

    python benchmarks/parity_mediapipe.py
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from common import IMAGES, RESULTS, ROOT, command, machine, use_shared_models, write_json

sys.path.insert(1, str(ROOT / "tests"))  # the test suite's annotation helpers
from conftest import count_found, load_coco_people  # noqa: E402

SETS = {"aic": "test_aic.json", "crowdpose": "test_crowdpose.json",
        "mhp": "test_mhp.json", "exlpose": "test_exlpose.json"}


def mediapipe_keypoints(pose, bgr):
    h, w = bgr.shape[:2]
    found = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).pose_landmarks
    return None if found is None else np.array([[lm.x * w, lm.y * h] for lm in found.landmark])


def main() -> None:
    import mediapipe as mp

    from edgepose import Pipeline

    use_shared_models()
    images = sorted(p for p in IMAGES.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    per_image = {}
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as theirs, \
            Pipeline(model="full", static_image_mode=True, threads=2) as single, \
            Pipeline(model="full", static_image_mode=True, max_people=10, threads=2) as multi:
        for path in images:
            bgr = cv2.imread(str(path))
            ref = mediapipe_keypoints(theirs, bgr)
            ours = single.process(bgr).poses
            if ref is None or not ours:
                per_image[str(path.relative_to(IMAGES))] = {"mediapipe_found": ref is not None,
                                                           "edgepose_found": bool(ours)}
                continue
            diag = np.hypot(*(ref.max(axis=0) - ref.min(axis=0)))
            error = np.linalg.norm(ours[0].keypoints[:, :2] - ref, axis=1).mean()
            per_image[str(path.relative_to(IMAGES))] = {
                "mean_px": round(float(error), 3), "percent_of_diagonal": round(float(100 * error / diag), 3)}
        found = {"annotated": 0, "edgepose_max_people_10": 0, "mediapipe": 0}
        for folder, annotation_file in SETS.items():
            for name, people in load_coco_people(IMAGES / folder / annotation_file).items():
                bgr = cv2.imread(str(IMAGES / folder / name))
                ref = mediapipe_keypoints(theirs, bgr)
                found["annotated"] += len(people)
                found["edgepose_max_people_10"] += count_found(people, [p.keypoints for p in multi.process(bgr).poses])
                found["mediapipe"] += count_found(people, [] if ref is None else [ref])
    worst = max(v["percent_of_diagonal"] for v in per_image.values() if "percent_of_diagonal" in v)
    result = {"benchmark": "parity with mediapipe.solutions.pose, full model",
              "command": command(), "device": machine(),
              "worst_percent_of_diagonal": worst, "per_image": per_image,
              "annotated_people_found": found}
    out = write_json(RESULTS / "parity_mediapipe.json", result)
    print(f"worst mean landmark distance: {worst:.3f}% of the box diagonal (target <= 2%)")
    print(f"annotated people found: {found}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
