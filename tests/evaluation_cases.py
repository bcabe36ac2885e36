"""The hand-made world the evaluation tests share: one reference body with known joints,
an estimator that returns the poses it is given, and COCO / MPII annotation files of that
body written to a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.evaluation import canonical_joint_name
from edgepose.skeletons import BlazePoseLandmark
from edgepose.types import FrameResult, Pose

needs_cocotools = pytest.mark.skipif(
    importlib.util.find_spec("pycocotools") is None,
    reason="pycocotools is not installed: pip install 'edgepose[eval]'")

# COCO's sigmas, typed in again here so the expected OKS does not come from the code under test.
SIGMA = {"nose": .026, "eye": .025, "ear": .035, "shoulder": .079, "elbow": .072,
         "wrist": .062, "hip": .107, "knee": .087, "ankle": .089}

# A person facing the camera in a 200 x 300 image (their left is the image's right).
BODY = {
    "nose": (100, 40), "left_eye": (105, 35), "right_eye": (95, 35),
    "left_ear": (112, 38), "right_ear": (88, 38),
    "left_shoulder": (125, 80), "right_shoulder": (75, 80),
    "left_elbow": (135, 125), "right_elbow": (65, 125),
    "left_wrist": (140, 165), "right_wrist": (60, 165),
    "left_hip": (115, 165), "right_hip": (85, 165),
    "left_knee": (117, 220), "right_knee": (83, 220),
    "left_ankle": (118, 275), "right_ankle": (82, 275),
}
COCO17 = list(BODY)
# Both shoulder - opposite hip diagonals are sqrt(40^2 + 85^2).
TORSO = math.hypot(40, 85)
AREA = 10_000.0


def body_xy(name: str, offset: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """Where the reference body has this joint; joints BlazePose lacks get a fixed spot."""
    canonical = canonical_joint_name(name)
    if canonical in BODY:
        x, y = BODY[canonical]
    else:
        # head top, neck, heels...: a spot on the person's side, so that mirroring moves it
        side = canonical.split("_")[0]
        x, y = {"left": 160.0, "right": 40.0}.get(side, 100.0), 240.0 + 2 * len(canonical)
    return x + offset[0], y + offset[1]


def make_pose(offset=(0.0, 0.0), shifts: dict[str, tuple[float, float]] | None = None,
              score: float = 1.0, visibility: float = 1.0) -> Pose:
    """The reference body as a BlazePose prediction, moved by ``offset`` and per-joint ``shifts``."""
    kp = np.zeros((33, 5), np.float32)
    for lm in BlazePoseLandmark:
        x, y = body_xy(lm.name, offset)
        dx, dy = (shifts or {}).get(lm.name.lower(), (0.0, 0.0))
        kp[lm] = (x + dx, y + dy, 0.0, visibility, 1.0)
    return Pose(kp, score)


class FixedPoses:
    """Returns the poses given for each image, told apart by image width."""

    def __init__(self, poses_by_width: dict[int, list[Pose]]) -> None:
        self.poses_by_width = poses_by_width

    def process(self, image: np.ndarray) -> FrameResult:
        h, w = image.shape[:2]
        return FrameResult(list(self.poses_by_width.get(w, [])), (w, h))


def write_images(folder: Path, count: int) -> list[str]:
    """Blank images 200 + i pixels wide, so FixedPoses can tell them apart."""
    folder.mkdir(exist_ok=True)
    names = []
    for i in range(count):
        names.append(f"img{i}.png")
        cv2.imwrite(str(folder / names[-1]), np.zeros((300, 200 + i, 3), np.uint8))
    return names


def write_coco(tmp_path: Path, people_per_image: list[list[tuple[float, float]]],
               names: list[str] = COCO17, unlabelled: tuple[str, ...] = ()) -> Path:
    """COCO keypoint json: per image, one reference body per offset; ``names`` in file order."""
    files = write_images(tmp_path / "images", len(people_per_image))
    anns = []
    for image_id, offsets in enumerate(people_per_image):
        for off in offsets:
            kps = []
            for n in names:
                v = 0 if n in unlabelled else 2
                kps += [*body_xy(n, off), v] if v else [0, 0, 0]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1,
                         "keypoints": kps, "num_keypoints": len(names) - len(unlabelled),
                         "bbox": [off[0] + 50, off[1] + 20, 100, 260], "area": AREA,
                         "iscrowd": 0})
    data = {"images": [{"id": i, "file_name": f} for i, f in enumerate(files)],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": names}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def hand_oks(dx: float) -> float:
    """OKS of the 17 COCO joints all moved by dx pixels, COCO's formula written out:
    mean over joints of exp(-d^2 / (2 * area * (2 sigma)^2))."""
    sig = [SIGMA[n.split("_")[-1]] for n in COCO17]
    return sum(math.exp(-dx * dx / (2 * AREA * (2 * s) ** 2)) for s in sig) / len(sig)


# MPII's joints as the shared annotation file spells them.
MPII_NAMES = ["Right-ankle", "Right-knee", "Right-hip", "Left-hip", "Left-knee", "Left-ankle",
              "Pelvis", "Thorax", "Upper-neck", "Head-top", "Right-wrist", "Right-elbow",
              "Right-shoulder", "Left-shoulder", "Left-elbow", "Left-wrist"]


def write_mpii(tmp_path: Path, head_top=(100.0, 20.0), upper_neck=(100.0, 60.0),
               unlabelled: tuple[str, ...] = ()) -> Path:
    names = MPII_NAMES
    joints, vis = [], []
    for n in names:
        c = canonical_joint_name(n)
        xy = head_top if c == "head_top" else upper_neck if c == "upper_neck" else body_xy(c)
        labelled = c not in unlabelled
        joints.append(list(xy) if labelled else [-1.0, -1.0])
        vis.append(int(labelled))
    files = write_images(tmp_path / "images", 1)
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps([{"image": files[0], "joints": joints, "joints_vis": vis,
                                 "center": [100.0, 150.0], "scale": 1.5}]))
    return path
