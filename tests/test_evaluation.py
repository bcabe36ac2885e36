"""Accuracy evaluation on hand-made cases with known answers: COCO OKS AP / AR and PCK,
joint-name mapping across layouts, MPII PCKh. The cases feed known predictions through a
tiny estimator that returns the poses it is given (tests/evaluation_cases.py); bad input
and the real pipeline are in test_evaluation_runs.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from evaluation_cases import (
    AREA,
    BODY,
    COCO17,
    MPII_NAMES,
    SIGMA,
    TORSO,
    FixedPoses,
    hand_oks,
    make_pose,
    needs_cocotools,
    write_coco,
    write_mpii,
)

from edgepose.evaluation import (
    canonical_joint_name,
    detect_layout,
    evaluate,
    evaluate_coco,
    evaluate_mpii,
    oks,
)
from edgepose.skeletons import BlazePoseLandmark, blazepose_index


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
    "mpii": MPII_NAMES,
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
