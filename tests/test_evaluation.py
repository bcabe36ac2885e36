"""Accuracy evaluation: metrics on hand-made cases with known answers, joint-name mapping
across layouts, bad input, and one run of the real pipeline on shared annotated images.

The metric cases feed known predictions through a tiny estimator (it returns the poses it
is given); the last tests run the real models.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import IMAGES, need
from edgepose.errors import InputError
from edgepose.cli.eval import add_parser as add_eval_parser
from edgepose.evaluation import (
    canonical_joint_name,
    detect_layout,
    evaluate,
    evaluate_coco,
    evaluate_mpii,
    oks,
)
from edgepose.skeletons import BlazePoseLandmark, blazepose_index
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


# -- COCO OKS AP / AR ----------------------------------------------------------------------
def test_oks_matches_the_hand_formula():
    gt = np.array([BODY[n] for n in COCO17], float)
    sigmas = np.array([SIGMA[n.split("_")[-1]] for n in COCO17])
    pred = np.stack([gt, gt + [8.0, 0.0]])
    got = oks(gt, np.ones(17, bool), AREA, pred, sigmas)
    assert got == pytest.approx([1.0, hand_oks(8.0)])
    half = np.arange(17) < 8  # unlabelled joints do not count, however far off
    assert oks(gt, half, AREA, (gt + np.where(half, 0.0, 500.0)[:, None])[None], sigmas) == pytest.approx([1.0])


@needs_cocotools
def test_perfect_prediction_scores_one(tmp_path):
    ann = write_coco(tmp_path, [[(0, 0)], [(0, 0)]])
    r = evaluate_coco(FixedPoses({200: [make_pose()], 201: [make_pose()]}), ann, tmp_path / "images")
    assert (r["AP"], r["AP50"], r["AP75"], r["AR"]) == (1.0, 1.0, 1.0, 1.0)
    assert r["PCK@0.2"] == 1.0
    assert (r["images"], r["people"], r["predictions"], r["matched"]) == (2, 2, 2, 2)
    assert all(j["mean_error_px"] == 0.0 for j in r["joints"].values())
    assert r["PCKh@0.5"] is None  # COCO-17 names no head top / upper neck


@needs_cocotools
@pytest.mark.parametrize("dx, expected_ap, ap75", [(5.0, 0.8, 1.0), (8.0, 0.5, 0.0)])
def test_shifted_keypoints_lower_ap_by_the_hand_computed_oks(tmp_path, dx, expected_ap, ap75):
    oks = hand_oks(dx)
    thresholds = np.linspace(0.5, 0.95, 10)
    assert np.min(np.abs(thresholds - oks)) > 0.01, "keep the case away from a threshold"
    # A single person matches at every OKS threshold <= its OKS: AP = that share of the 10.
    assert expected_ap == pytest.approx(np.mean(thresholds <= oks))
    ann = write_coco(tmp_path, [[(0, 0)]])
    r = evaluate_coco(FixedPoses({200: [make_pose(shifts={n: (dx, 0) for n in COCO17})]}),
                      ann, tmp_path / "images")
    assert r["AP"] == pytest.approx(expected_ap)
    assert r["AR"] == pytest.approx(expected_ap)
    assert (r["AP50"], r["AP75"]) == (1.0, ap75)
    assert r["PCK@0.2"] == 1.0  # dx < 0.2 x torso (18.8 px)
    assert r["joints"]["left_hip"]["mean_error_px"] == pytest.approx(dx)


@needs_cocotools
@pytest.mark.parametrize("joint", COCO17)
def test_each_joint_is_scored_with_its_coco_sigma(tmp_path, joint):
    # Only this joint is labelled, moved so that by COCO's formula OKS = 0.725:
    # exp(-d^2 / (2 area (2 sigma)^2)) = 0.725. A sigma 6 % off crosses 0.7 or 0.75.
    sigma = SIGMA[joint.split("_")[-1]]
    d = math.sqrt(-math.log(0.725) * 2 * AREA * (2 * sigma) ** 2)
    ann = write_coco(tmp_path, [[(0, 0)]], unlabelled=tuple(n for n in COCO17 if n != joint))
    pose = make_pose(shifts={n: (d, 0) if n == joint else (0, 40) for n in COCO17})
    r = evaluate_coco(FixedPoses({200: [pose]}), ann, tmp_path / "images")
    assert r["AP"] == pytest.approx(0.5)  # matched at 0.5 ... 0.7, not at 0.75 and above
    assert r["joints"][joint]["mean_error_px"] == pytest.approx(d, abs=1e-3)


@needs_cocotools
def test_missed_person_halves_recall(tmp_path):
    ann = write_coco(tmp_path, [[(0, 0), (300, 0)]])
    # The second person is missed; a doubtful pose far below it is no match for it.
    ghost = make_pose(offset=(300, 600), visibility=0.5)
    r = evaluate_coco(FixedPoses({200: [make_pose(), ghost]}), ann, tmp_path / "images")
    assert r["AR"] == pytest.approx(0.5)
    # Precision 1 up to recall 0.5, nothing beyond: 51 of COCO's 101 recall points.
    assert r["AP"] == pytest.approx(51 / 101, abs=1e-4)
    assert (r["people"], r["predictions"], r["matched"]) == (2, 2, 1)
    assert r["PCK@0.2"] == pytest.approx(0.5)  # the missed person's joints all count wrong
    assert r["joints"]["nose"]["labelled"] == 2 and r["joints"]["nose"]["matched"] == 1


@needs_cocotools
def test_one_prediction_pairs_with_one_person_even_when_two_overlap(tmp_path):
    ann = write_coco(tmp_path, [[(6, 0), (0, 0)]])  # the nearer one second
    r = evaluate_coco(FixedPoses({200: [make_pose()]}), ann, tmp_path / "images")
    assert (r["matched"], r["AR"]) == (1, pytest.approx(0.5))
    assert r["joints"]["nose"]["mean_error_px"] == 0.0


@needs_cocotools
def test_a_confident_false_pose_lowers_ap_a_doubtful_one_does_not(tmp_path):
    ann = write_coco(tmp_path, [[(0, 0), (300, 0)]])
    ghost = make_pose(offset=(0, 600))
    people = [make_pose(score=0.9), make_pose(offset=(300, 0), score=0.9)]
    ranked_last = evaluate_coco(FixedPoses({200: [*people, make_pose((0, 600), visibility=0.5)]}),
                                ann, tmp_path / "images")
    assert ranked_last["AP"] == pytest.approx(1.0)
    ranked_first = evaluate_coco(FixedPoses({200: [*people, ghost]}), ann, tmp_path / "images")
    # Ghost first: precision 1/2 at recall 1/2 and 2/3 at recall 1 -> interpolated 2/3 everywhere.
    assert ranked_first["AP"] == pytest.approx(2 / 3, abs=1e-4)
    assert ranked_first["AR"] == pytest.approx(1.0)


@needs_cocotools
def test_pck_counts_joints_beyond_a_fifth_of_the_torso(tmp_path):
    shifts = {"left_wrist": (0.3 * TORSO, 0), "right_wrist": (0, 0.3 * TORSO),
              "left_elbow": (0.1 * TORSO, 0), "right_elbow": (0, -0.19 * TORSO)}
    ann = write_coco(tmp_path, [[(0, 0)]])
    r = evaluate_coco(FixedPoses({200: [make_pose(shifts=shifts)]}), ann, tmp_path / "images")
    assert r["PCK@0.2"] == pytest.approx(15 / 17, abs=1e-4)
    joints = r["joints"]
    assert joints["left_wrist"]["PCK@0.2"] == 0.0 and joints["right_elbow"]["PCK@0.2"] == 1.0
    assert joints["left_wrist"]["mean_error_torso"] == pytest.approx(0.3, abs=1e-3)
    assert joints["left_elbow"]["mean_error_px"] == pytest.approx(0.1 * TORSO, abs=1e-3)


@needs_cocotools
def test_no_predictions_scores_zero(tmp_path):
    ann = write_coco(tmp_path, [[(0, 0)]])
    r = evaluate(FixedPoses({}), ann, tmp_path / "images")
    assert (r["AP"], r["AR"], r["PCK@0.2"], r["predictions"], r["matched"]) == (0.0, 0.0, 0.0, 0, 0)


# -- joint names across layouts -----------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("Right-ankle", "right_ankle"), ("right ankle", "right_ankle"), ("Right Ankle", "right_ankle"),
    ("RIGHT_ANKLE", "right_ankle"), ("R_Ankle", "right_ankle"), ("l-wrist", "left_wrist"),
    ("Head top", "head_top"), ("Upper-neck", "upper_neck"),
])
def test_joint_names_normalise(name, expected):
    assert canonical_joint_name(name) == expected


LAYOUT_NAMES = {
    # as the shared annotation files spell them
    "crowdpose": ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                  "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
                  "left_ankle", "right_ankle", "head", "neck"],
    "aic": ["Right Shoulder", "Right Elbow", "Right Wrist", "Left Shoulder", "Left Elbow",
            "Left Wrist", "Right Hip", "Right Knee", "Right Ankle", "Left Hip", "Left Knee",
            "Left Ankle", "Head top", "Neck"],
    "jhmdb": ["neck", "belly", "head", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
              "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
              "right_ankle", "left_ankle"],
    "mpii": ["Right-ankle", "Right-knee", "Right-hip", "Left-hip", "Left-knee", "Left-ankle",
             "Pelvis", "Thorax", "Upper-neck", "Head-top", "Right-wrist", "Right-elbow",
             "Right-shoulder", "Left-shoulder", "Left-elbow", "Left-wrist"],
    "coco": COCO17,
    "blazepose": [lm.name.lower() for lm in BlazePoseLandmark],
}
LIMBS = {f"{side}_{part}" for side in ("left", "right")
         for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}
LACKING = {"head", "neck", "head_top", "upper_neck", "pelvis", "thorax", "belly"}


@pytest.mark.parametrize("layout", list(LAYOUT_NAMES))
def test_layouts_map_to_blazepose_by_name(layout):
    names = LAYOUT_NAMES[layout]
    assert detect_layout(tuple(names)) == layout
    canonical = [canonical_joint_name(n) for n in names]
    shared = {n for n in canonical if blazepose_index(n) is not None}
    assert LIMBS <= shared  # the 12 limb joints of every layout are found
    for n in names:
        idx = blazepose_index(canonical_joint_name(n))
        if idx is not None:  # same name on both sides
            assert BlazePoseLandmark(idx).name.lower() == canonical_joint_name(n)
    for lacking in LACKING:
        assert blazepose_index(lacking) is None


@needs_cocotools
@pytest.mark.parametrize("layout", list(LAYOUT_NAMES))
def test_every_layout_scores_a_perfect_prediction_one_and_a_mirrored_one_less(tmp_path, layout):
    names = LAYOUT_NAMES[layout]
    ann = write_coco(tmp_path, [[(0, 0)]], names=names)
    perfect = evaluate_coco(FixedPoses({200: [make_pose()]}), ann, tmp_path / "images")
    assert (perfect["AP"], perfect["PCK@0.2"]) == (1.0, 1.0)
    expected_oks = LIMBS | ({"nose", "left_eye", "right_eye", "left_ear", "right_ear"}
                            if layout in ("coco", "blazepose") else set())
    assert set(perfect["oks_joints"]) == expected_oks
    assert not LACKING & set(perfect["joints"])

    # Left and right swapped: a mapping by index instead of name would not notice.
    mirrored = make_pose()
    for lm in BlazePoseLandmark:
        if lm.name.startswith("LEFT_"):
            other = BlazePoseLandmark["RIGHT_" + lm.name[5:]]
            mirrored.keypoints[[lm, other]] = mirrored.keypoints[[other, lm]]
    r = evaluate_coco(FixedPoses({200: [mirrored]}), ann, tmp_path / "images")
    assert r["AP"] < 0.5 and r["PCK@0.2"] < 0.5


# -- MPII PCKh ------------------------------------------------------------------------------
def write_mpii(tmp_path: Path, head_top=(100.0, 20.0), upper_neck=(100.0, 60.0),
               unlabelled: tuple[str, ...] = ()) -> Path:
    names = LAYOUT_NAMES["mpii"]
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


@needs_cocotools
def test_mpii_pckh_by_hand(tmp_path):
    # Head segment 40 px -> head size 0.6 x 40 = 24 px -> PCKh@0.5 threshold 12 px.
    ann = write_mpii(tmp_path, unlabelled=("left_ankle",))
    shifts = {"left_knee": (10.0, 0), "right_knee": (0, 11.5), "right_ankle": (12.5, 0),
              "left_ankle": (50.0, 0)}  # left ankle is not labelled: not counted
    r = evaluate_mpii(FixedPoses({200: [make_pose(shifts=shifts)]}), ann, tmp_path / "images")
    assert (r["format"], r["layout"], r["images"], r["people"]) == ("mpii", "mpii", 1, 1)
    assert r["pckh_people"] == 1
    assert r["PCKh@0.5"] == pytest.approx(10 / 11, abs=1e-4)  # 11 labelled limb joints, 1 too far
    assert r["joints"]["right_ankle"]["PCKh@0.5"] == 0.0
    assert r["joints"]["right_knee"]["PCKh@0.5"] == 1.0
    assert r["joints"]["left_ankle"]["labelled"] == 0
    assert "head_top" not in r["joints"] and "pelvis" not in r["joints"]
    assert list(r["joints"])[:2] == ["left_shoulder", "right_shoulder"]  # BlazePose order


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("not_json", "not valid JSON"),
    ("other_json", "neither COCO keypoint json"),
    ("missing_image", "are not in"),
    ("no_image_dir", "image folder"),
    ("wrong_format", "is MPII json, not COCO"),
    ("short_keypoints", "has 3 keypoint values, expected 51"),
    ("no_file_name", "malformed COCO annotation .KeyError: 'file_name'"),
])
def test_bad_input_is_one_clear_error(tmp_path, case, message):
    images = tmp_path / "images"
    ann = write_mpii(tmp_path)
    if case == "missing":
        ann = tmp_path / "nope.json"
    elif case == "not_json":
        ann.write_text("{not json")
    elif case == "other_json":
        ann.write_text(json.dumps({"images": []}))
    elif case == "missing_image":
        (images / "img0.png").unlink()
    elif case == "no_image_dir":
        images = tmp_path / "elsewhere"
    elif case in ("short_keypoints", "no_file_name"):
        ann = write_coco(tmp_path, [[(0, 0)]])
        data = json.loads(ann.read_text())
        if case == "short_keypoints":
            data["annotations"][0]["keypoints"] = [1, 2, 2]
        else:
            del data["images"][0]["file_name"]
        ann.write_text(json.dumps(data))
    run = evaluate_coco if case == "wrong_format" else evaluate
    with pytest.raises(InputError, match=message) as err:
        run(FixedPoses({}), ann, images)
    assert "\n" not in str(err.value)


def test_eval_subcommand_parses_its_flags():
    parser = argparse.ArgumentParser(prog="edgepose")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "--annotations", "a.json", "--images", "imgs",
                              "--max-people", "4", "--model", "lite", "--out", "r.json"])
    assert (args.annotations, args.images, args.out) == (Path("a.json"), Path("imgs"), Path("r.json"))
    assert (args.max_people, args.model) == (4, "lite")
    assert args.func.__name__ == "cmd_eval"


# -- the real pipeline on shared annotated images ---------------------------------------------
@needs_cocotools
def test_real_pipeline_on_crowdpose_through_the_cli(tmp_path, model_path):
    folder = need(IMAGES / "crowdpose")
    model_path("full")
    model_path("detector")
    parser = argparse.ArgumentParser(prog="edgepose")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "result.json"
    args = parser.parse_args(["eval", "--annotations", str(folder / "test_crowdpose.json"),
                              "--images", str(folder), "--max-people", "10", "--threads", "2",
                              "--out", str(out)])
    assert args.func(args) == 0
    r = json.loads(out.read_text())
    # 5 annotated people; one has no labelled joint, so 4 are scored.
    assert (r["images"], r["annotated_people"], r["people"]) == (2, 5, 4)
    assert r["layout"] == "crowdpose" and r["model"] == "pose_landmark_full.tflite"
    assert r["max_people"] == 10 and r["backend"].startswith("tflite/")
    for key in ("AP", "AP50", "AP75", "AR", "PCK@0.2"):
        assert 0.0 <= r[key] <= 1.0, key
    assert 1 <= r["matched"] <= r["predictions"] <= 20
    assert r["AP50"] > 0.2  # the front-facing people are found


@needs_cocotools
def test_real_pipeline_on_mpii(image_pipeline):
    folder = need(IMAGES / "mpii")
    r = evaluate_mpii(image_pipeline, folder / "test_mpii.json", folder)
    assert (r["images"], r["people"], r["predictions"]) == (5, 5, 5)
    assert r["pckh_people"] == 5
    for key in ("AP", "AR", "PCK@0.2", "PCKh@0.5"):
        assert 0.0 <= r[key] <= 1.0, key
    # full model, single person: most limb joints land within a fifth of the torso
    assert r["PCK@0.2"] >= 0.5 and r["AP50"] >= 0.4
