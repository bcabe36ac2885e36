"""Accuracy on annotated images: OKS AP / AR (pycocotools), PCK@0.2 of the torso, PCKh@0.5
and per-joint errors, for any estimator with ``process(bgr_image) -> FrameResult``.

Two annotation formats, told apart by their shape:

- COCO keypoints: ``{"images", "annotations", "categories"}``, the joint names in
  ``categories[i]["keypoints"]``. Any layout: COCO-17, CrowdPose-14, AIC-14, JHMDB-15,
  MPII-16 names (as in MHP), BlazePose-33.
- MPII: a list of ``{"image", "joints" (16 x 2), "joints_vis" (16), "center", "scale"}``,
  one record per person, joints in MPII order.

Joints map to BlazePose landmarks by name ('Right-ankle', 'right_ankle', 'R_Ankle' are
one joint). Joints BlazePose has no landmark for (head top, neck, pelvis, thorax, belly)
are left out, never guessed.

Definitions (also in ``DEFINITIONS``, written into every result):

- OKS AP / AR: COCO's keypoint evaluation (pycocotools), restricted to the joints the
  dataset shares with BlazePose *and* that COCO gives a sigma (nose, eyes, ears,
  shoulders, elbows, wrists, hips, knees, ankles), with those COCO sigmas. The object
  scale is the annotation's ``area``; without one (CrowdPose, AIC, JHMDB, MPII) it is
  0.53 x the box area, mmpose's convention for such datasets (the box is the annotation's
  ``bbox``, or for MPII the box around the labelled joints).
- Prediction score (ranks predictions for AP): pose.score (the landmark model's presence
  probability) x the mean visibility of the OKS joints, so a confident pose whose joints
  the model itself doubts ranks lower.
- Matching for PCK and joint errors: each annotated person is paired with at most one
  prediction, greedily by highest OKS, only where OKS >= 0.1 (below that it is another
  person). An annotated person left unpaired counts all its joints as wrong.
- PCK@0.2: a joint is correct when its error is <= 0.2 x the person's torso size; torso
  size = mean of the labelled diagonals left shoulder - right hip and right shoulder -
  left hip. People with neither diagonal labelled are left out of PCK.
- PCKh@0.5: error <= 0.5 x head size, head size = 0.6 x the distance head top - upper
  neck. MPII's own evaluation uses 0.6 x the head box diagonal; these files carry no head
  box, so the head segment stands in for it (a tighter threshold than MPII's). Only for
  layouts that name both joints (MPII-16, MHP). MPII's head column (head top, upper neck)
  is not scored: BlazePose has no such landmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from edgepose.errors import EdgeposeError, InputError
from edgepose.skeletons import BlazePoseLandmark, CocoKeypoint, blazepose_index, normalize_joint_name
from edgepose.types import FrameResult, Pose

log = logging.getLogger(__name__)

# -- layouts: joint names in annotation order ------------------------------------------------
LAYOUTS: dict[str, tuple[str, ...]] = {
    "coco": tuple(k.name.lower() for k in CocoKeypoint),
    "mpii": ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
             "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
             "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"),
    "crowdpose": ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                  "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
                  "left_ankle", "right_ankle", "head", "neck"),
    "aic": ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
            "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
            "left_ankle", "head_top", "neck"),
    "jhmdb": ("neck", "belly", "head", "right_shoulder", "left_shoulder", "right_hip",
              "left_hip", "right_elbow", "left_elbow", "right_knee", "left_knee",
              "right_wrist", "left_wrist", "right_ankle", "left_ankle"),
    "blazepose": tuple(k.name.lower() for k in BlazePoseLandmark),
}

# COCO's per-keypoint OKS sigmas (cocoapi's COCOeval defaults), by joint name.
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}

# Segmentation area ~ this x box area on COCO; mmpose uses it for datasets without 'area'.
BOX_AREA_FACTOR = 0.53
MATCH_MIN_OKS = 0.1
PCK_ALPHA = 0.2
PCKH_ALPHA = 0.5
HEAD_SIZE_FACTOR = 0.6
TORSO_DIAGONALS = (("left_shoulder", "right_hip"), ("right_shoulder", "left_hip"))
HEAD_SEGMENT = ("head_top", "upper_neck")

DEFINITIONS = {
    "AP/AR": "pycocotools OKS keypoint AP/AR over the joints shared with BlazePose that have "
             "a COCO sigma; scale = annotation area, else 0.53 x box area",
    "score": "pose.score (presence probability) x mean visibility of the OKS joints",
    "matching": "greedy by OKS, one prediction per annotated person, OKS >= 0.1; "
                "unmatched people count every joint wrong",
    "PCK@0.2": "error <= 0.2 x torso size; torso = mean of labelled diagonals "
               "left shoulder-right hip, right shoulder-left hip",
    "PCKh@0.5": "error <= 0.5 x head size; head size = 0.6 x |head top - upper neck| "
                "(MPII's 0.6 x head-box diagonal is not in these files)",
}


class Estimator(Protocol):
    """What the evaluation needs: one BGR image in, poses with 33 BlazePose keypoints out."""

    def process(self, image: np.ndarray) -> FrameResult: ...


def canonical_joint_name(name: str) -> str:
    """'Right-ankle', 'Right Ankle', 'right_ankle', 'R_Ankle' -> 'right_ankle'."""
    parts = [p for p in normalize_joint_name(name).lower().split("_") if p]
    if parts and parts[0] in ("l", "r"):
        parts[0] = "left" if parts[0] == "l" else "right"
    return "_".join(parts)


def detect_layout(names: tuple[str, ...]) -> str:
    """Name of the known layout with exactly these joints in this order, else 'custom'."""
    canonical = tuple(canonical_joint_name(n) for n in names)
    return next((key for key, layout in LAYOUTS.items() if layout == canonical), "custom")


# -- annotations ---------------------------------------------------------------------------
@dataclasses.dataclass
class Person:
    """One annotated person. xy: (J, 2) float64 pixels; labelled: (J,) bool;
    bbox: (x, y, w, h) pixels; area: the OKS object scale in square pixels."""

    xy: np.ndarray
    labelled: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    crowd: bool = False


@dataclasses.dataclass
class AnnotatedImage:
    id: int
    file_name: str
    people: list[Person]


@dataclasses.dataclass
class Dataset:
    """Annotations in one form for both formats; ``joints`` are canonical names (J)."""

    format: str  # "coco" or "mpii"
    layout: str
    joints: tuple[str, ...]
    images: list[AnnotatedImage]

    @functools.cached_property
    def blazepose_indices(self) -> np.ndarray:
        """(J,) int BlazePose landmark of each joint, -1 where BlazePose has none."""
        return np.array([-1 if (i := blazepose_index(n)) is None else i for n in self.joints])

    @functools.cached_property
    def oks_mask(self) -> np.ndarray:
        """(J,) bool: joints that BlazePose has and COCO gives a sigma."""
        return (self.blazepose_indices >= 0) & np.array([n in COCO_SIGMAS for n in self.joints])

    @functools.cached_property
    def oks_sigmas(self) -> np.ndarray:
        """(K,) COCO sigma of each OKS joint (K = oks_mask.sum()), in dataset order."""
        return np.array([COCO_SIGMAS[n] for n, k in zip(self.joints, self.oks_mask) if k])


def load_dataset(path: Path) -> Dataset:
    """Read a COCO-keypoint or MPII annotation file; InputError when it is neither."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"annotation file {path} does not exist: give --annotations a COCO "
                         "keypoint or MPII json file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}): give a COCO keypoint or MPII "
                         "annotation file") from None
    if isinstance(data, dict) and {"images", "annotations", "categories"} <= data.keys():
        fmt, parse = "COCO", _parse_coco
    elif isinstance(data, list) and data and all(isinstance(r, dict) and "joints" in r for r in data):
        fmt, parse = "MPII", _parse_mpii
    else:
        raise InputError(f"{path} is neither COCO keypoint json (a dict with images, annotations, "
                         "categories) nor MPII json (a list of records with image, joints, "
                         "joints_vis): convert it to one of these")
    try:
        return parse(data, path)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        # A missing field or a value of the wrong kind: name it rather than show a traceback.
        raise InputError(f"{path}: malformed {fmt} annotation ({type(exc).__name__}: {exc}): "
                         "fix the file") from None


def _joint_names(names: list[str], path: Path) -> tuple[str, ...]:
    canonical = tuple(canonical_joint_name(n) for n in names)
    if len(set(canonical)) != len(canonical):
        raise InputError(f"{path}: keypoint names {names} name one joint twice: fix the "
                         "category's keypoints list")
    if not any(blazepose_index(n) is not None for n in canonical):
        raise InputError(f"{path}: none of the keypoints {names} is a BlazePose joint "
                         "(e.g. left_shoulder): name the joints as COCO does")
    return canonical


def _box_of(xy: np.ndarray, labelled: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) around the labelled rows of xy (J, 2); zeros when none is labelled."""
    if not labelled.any():
        return 0.0, 0.0, 0.0, 0.0
    pts = xy[labelled]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def _parse_coco(data: dict, path: Path) -> Dataset:
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if not cats:
        raise InputError(f"{path}: no category lists keypoint names: add "
                         "categories[0]['keypoints']")
    cat = next((c for c in cats if c.get("name") == "person"), cats[0])
    joints = _joint_names(cat["keypoints"], path)
    images = {img["id"]: AnnotatedImage(img["id"], img["file_name"], []) for img in data["images"]}
    for ann in data["annotations"]:
        if ann.get("category_id", cat.get("id")) != cat.get("id"):
            continue
        if ann.get("image_id") not in images:
            raise InputError(f"{path}: annotation {ann.get('id')} names image_id "
                             f"{ann.get('image_id')}, which is not in 'images': fix the file")
        images[ann["image_id"]].people.append(_coco_person(ann, len(joints), path))
    return Dataset("coco", detect_layout(joints), joints, list(images.values()))


def _coco_person(ann: dict, num_joints: int, path: Path) -> Person:
    kps = np.asarray(ann.get("keypoints", []), dtype=np.float64)
    if kps.size != 3 * num_joints:
        raise InputError(f"{path}: annotation {ann.get('id')} has {kps.size} keypoint values, "
                         f"expected {3 * num_joints} (x, y, v for {num_joints} joints)")
    kps = kps.reshape(num_joints, 3)
    labelled = kps[:, 2] > 0
    bbox = tuple(float(v) for v in ann["bbox"]) if "bbox" in ann else _box_of(kps[:, :2], labelled)
    area = float(ann.get("area") or BOX_AREA_FACTOR * bbox[2] * bbox[3])
    return Person(kps[:, :2], labelled, bbox, area, bool(ann.get("iscrowd", 0)))


def _parse_mpii(records: list[dict], path: Path) -> Dataset:
    joints = LAYOUTS["mpii"]
    images: dict[str, AnnotatedImage] = {}
    for n, rec in enumerate(records):
        xy = np.asarray(rec["joints"], dtype=np.float64)
        vis = np.asarray(rec.get("joints_vis", np.ones(len(joints))), dtype=np.float64)
        if "image" not in rec or xy.shape != (len(joints), 2) or vis.shape != (len(joints),):
            raise InputError(f"{path}: record {n} must have image, joints (16 x 2) and "
                             f"joints_vis (16), got joints of shape {xy.shape}")
        labelled = vis > 0
        bbox = _box_of(xy, labelled)
        person = Person(xy, labelled, bbox, BOX_AREA_FACTOR * bbox[2] * bbox[3])
        name = rec["image"]
        images.setdefault(name, AnnotatedImage(len(images), name, [])).people.append(person)
    return Dataset("mpii", "mpii", joints, list(images.values()))


# -- running the estimator ---------------------------------------------------------------------
def image_paths(dataset: Dataset, images: Path) -> list[Path]:
    """Path of every annotated image under ``images``; InputError naming the first missing."""
    images = Path(images)
    if not images.is_dir():
        raise InputError(f"image folder {images} does not exist: give --images the folder "
                         "the annotation's file names are relative to")
    paths = [images / img.file_name for img in dataset.images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} of {len(paths)} annotated images are not in {images} "
                         f"(first: {missing[0].relative_to(images)}): give --images the "
                         "folder that holds them")
    return paths


def predict(estimator: Estimator, dataset: Dataset, images: Path) -> dict[int, list[Pose]]:
    """Run the estimator once per annotated image; image id -> poses."""
    from edgepose.sources import read_image

    paths = image_paths(dataset, images)
    out = {}
    for img, path in zip(dataset.images, paths):
        out[img.id] = list(estimator.process(read_image(path)).poses)
        log.debug("%s: %d annotated, %d predicted", img.file_name, len(img.people), len(out[img.id]))
    return out


# -- OKS AP with pycocotools ----------------------------------------------------------------
def prediction_score(pose: Pose, landmarks: np.ndarray) -> float:
    """pose.score x mean visibility of ``landmarks`` (BlazePose indices)."""
    return float(pose.score) * float(np.mean(pose.keypoints[landmarks, 3]))


def _coco_header(dataset: Dataset, keep: np.ndarray) -> dict:
    names = [n for n, k in zip(dataset.joints, keep) if k]
    return {"images": [{"id": img.id, "file_name": img.file_name} for img in dataset.images],
            "categories": [{"id": 1, "name": "person", "keypoints": names}]}


def _coco_gt(dataset: Dataset, keep: np.ndarray) -> dict:
    """COCO keypoint ground truth over the joints in ``keep`` (J,) bool."""
    anns = []
    for img in dataset.images:
        for p in img.people:
            v = np.where(p.labelled[keep], 2.0, 0.0)
            xy = np.where(v[:, None] > 0, p.xy[keep], 0.0)
            anns.append({"id": len(anns) + 1, "image_id": img.id, "category_id": 1,
                         "keypoints": np.column_stack([xy, v]).ravel().tolist(),
                         "num_keypoints": int(np.count_nonzero(v)), "bbox": list(p.bbox),
                         "area": p.area, "iscrowd": int(p.crowd)})
    return {**_coco_header(dataset, keep), "annotations": anns}


def _coco_dt(dataset: Dataset, predictions: dict[int, list[Pose]], keep: np.ndarray) -> dict:
    """The predictions as a COCO result set over the same joints (pycocotools' loadRes
    fails on an empty list, so the set is built here)."""
    landmarks = dataset.blazepose_indices[keep]
    anns = []
    for img in dataset.images:
        for pose in predictions.get(img.id, []):
            xy = pose.keypoints[landmarks, :2].astype(np.float64)
            box = _box_of(xy, np.ones(len(xy), bool))
            anns.append({"id": len(anns) + 1, "image_id": img.id, "category_id": 1,
                         "keypoints": np.column_stack([xy, np.ones(len(xy))]).ravel().tolist(),
                         "score": prediction_score(pose, landmarks), "bbox": list(box),
                         "area": box[2] * box[3]})
    return {**_coco_header(dataset, keep), "annotations": anns}


def coco_keypoint_metrics(dataset: Dataset, predictions: dict[int, list[Pose]]) -> dict:
    """AP, AP50, AP75, AR, AR50, AR75 from pycocotools over the OKS joints (None when
    there is no person to score)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise EdgeposeError("OKS AP needs pycocotools: pip install 'edgepose[eval]' "
                            "(or pip install pycocotools)") from None
    keep = dataset.oks_mask
    chatter = io.StringIO()  # pycocotools prints its progress and table
    with contextlib.redirect_stdout(chatter):
        gt, dt = COCO(), COCO()
        gt.dataset, dt.dataset = _coco_gt(dataset, keep), _coco_dt(dataset, predictions, keep)
        gt.createIndex()
        dt.createIndex()
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.kpt_oks_sigmas = dataset.oks_sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    log.debug("pycocotools:\n%s", chatter.getvalue())
    names = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
    stats = dict(zip(names, (float(s) for s in ev.stats)))
    return {k: (None if stats[k] < 0 else round(stats[k], 4))
            for k in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")}


# -- matching, PCK, per-joint errors ------------------------------------------------------------
def oks(gt_xy: np.ndarray, labelled: np.ndarray, area: float, pred_xy: np.ndarray,
        sigmas: np.ndarray) -> np.ndarray:
    """COCO's object keypoint similarity of one annotated person with P predictions.

    gt_xy (K, 2), labelled (K,) bool, pred_xy (P, K, 2), sigmas (K,) -> (P,) in [0, 1];
    0 when no joint is labelled.
    """
    if not labelled.any():
        return np.zeros(len(pred_xy))
    d2 = ((pred_xy - gt_xy) ** 2).sum(axis=-1)
    e = d2 / (2.0 * (2.0 * sigmas) ** 2 * (area + np.spacing(1)))
    return np.exp(-e)[:, labelled].mean(axis=1)


def match_people(people: list[Person], poses: list[Pose], dataset: Dataset) -> list[int | None]:
    """For each annotated person, the index of its prediction or None (greedy by OKS)."""
    keep = dataset.oks_mask
    pred_xy = np.array([p.keypoints[dataset.blazepose_indices[keep], :2] for p in poses])
    pairs = []
    for g, person in enumerate(people):
        if person.crowd or not poses:
            continue
        scores = oks(person.xy[keep], person.labelled[keep], person.area, pred_xy, dataset.oks_sigmas)
        pairs += [(s, g, j) for j, s in enumerate(scores) if s >= MATCH_MIN_OKS]
    match: list[int | None] = [None] * len(people)
    used = set()
    for _, g, j in sorted(pairs, reverse=True):
        if match[g] is None and j not in used:
            match[g] = j
            used.add(j)
    return match


def _segment(xy: np.ndarray, labelled: np.ndarray, joints: tuple[str, ...], a: str, b: str) -> float:
    """Length of joint a - joint b, NaN when either is missing or unlabelled."""
    if a not in joints or b not in joints:
        return np.nan
    i, j = joints.index(a), joints.index(b)
    return float(np.linalg.norm(xy[i] - xy[j])) if labelled[i] and labelled[j] else np.nan


def torso_size(person: Person, joints: tuple[str, ...]) -> float:
    """Mean of the labelled shoulder - opposite hip distances (pixels); NaN when none."""
    sizes = [_segment(person.xy, person.labelled, joints, a, b) for a, b in TORSO_DIAGONALS]
    sizes = [s for s in sizes if not np.isnan(s)]
    return float(np.mean(sizes)) if sizes else np.nan


def head_size(person: Person, joints: tuple[str, ...]) -> float:
    """0.6 x |head top - upper neck| (pixels); NaN when the layout or labels lack them."""
    return HEAD_SIZE_FACTOR * _segment(person.xy, person.labelled, joints, *HEAD_SEGMENT)


@dataclasses.dataclass
class JointErrors:
    """Errors of every annotated (non-crowd) person, over the joints BlazePose shares.

    error: (N, M) pixels; NaN where the joint is not labelled, inf where it is labelled but
        the person has no matched prediction. torso, head: (N,) sizes, NaN when unknown.
    names: (M,) joint names.
    """

    names: tuple[str, ...]
    error: np.ndarray
    torso: np.ndarray
    head: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.error)


def joint_errors(dataset: Dataset, predictions: dict[int, list[Pose]]) -> JointErrors:
    """Errors of the matched predictions; columns in BlazePose landmark order, so tables of
    different layouts line up."""
    bp = dataset.blazepose_indices
    cols = np.flatnonzero(bp >= 0)
    cols = cols[np.argsort(bp[cols], kind="stable")]
    landmarks = bp[cols]
    rows, torso, head = [], [], []
    for img in dataset.images:
        poses = predictions.get(img.id, [])
        match = match_people(img.people, poses, dataset)
        for person, j in zip(img.people, match):
            if person.crowd:
                continue
            if j is None:
                err = np.full(len(landmarks), np.inf)
            else:
                err = np.linalg.norm(poses[j].keypoints[landmarks, :2] - person.xy[cols], axis=1)
            rows.append(np.where(person.labelled[cols], err, np.nan))
            torso.append(torso_size(person, dataset.joints))
            head.append(head_size(person, dataset.joints))
    names = tuple(dataset.joints[c] for c in cols)
    return JointErrors(names, np.array(rows).reshape(-1, len(names)), np.array(torso), np.array(head))


def pck(error: np.ndarray, size: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Correct and labelled counts per joint. error (N, M) as in JointErrors, size (N,);
    people whose size is NaN are left out. Returns two (M,) int arrays."""
    rows = ~np.isnan(size)
    err, thr = error[rows], alpha * size[rows, None]
    labelled = ~np.isnan(err)
    correct = labelled & (err <= thr)
    return correct.sum(axis=0), labelled.sum(axis=0)


def _ratio(num: float, den: float) -> float | None:
    return round(float(num) / float(den), 4) if den else None


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 3) if values.size else None


def joint_metrics(je: JointErrors) -> dict:
    """PCK@0.2, PCKh@0.5 overall and per joint, mean errors per joint (matched people)."""
    pck_ok, pck_n = pck(je.error, je.torso, PCK_ALPHA)
    pckh_ok, pckh_n = pck(je.error, je.head, PCKH_ALPHA)
    per_joint = {}
    for m, name in enumerate(je.names):
        col = je.error[:, m]
        found = np.isfinite(col)
        torso_found = found & ~np.isnan(je.torso)
        per_joint[name] = {
            "labelled": int(je.labelled[:, m].sum()),
            "matched": int(found.sum()),
            "mean_error_px": _mean(col[found]),
            "mean_error_torso": _mean(col[torso_found] / je.torso[torso_found]),
            "PCK@0.2": _ratio(pck_ok[m], pck_n[m]),
            "PCKh@0.5": _ratio(pckh_ok[m], pckh_n[m]),
        }
    return {
        "PCK@0.2": _ratio(pck_ok.sum(), pck_n.sum()),
        "pck_people": int((~np.isnan(je.torso) & je.labelled.any(axis=1)).sum()),
        "PCKh@0.5": _ratio(pckh_ok.sum(), pckh_n.sum()),
        "pckh_people": int((~np.isnan(je.head) & je.labelled.any(axis=1)).sum()),
        "joints": per_joint,
    }


# -- public entry points -----------------------------------------------------------------------
def evaluate(estimator: Estimator, annotations: Path, images: Path) -> dict:
    """Run ``estimator`` on every annotated image and score it; the format is detected.

    The estimator should treat images as unrelated (e.g. ``Pipeline(static_image_mode=True)``).
    Returns a JSON-ready dict: AP, AP50, AP75, AR, AR50, AR75, PCK@0.2, PCKh@0.5 (None when
    the layout has no head segment), counts, and per-joint figures.
    """
    dataset = load_dataset(annotations)
    return score(dataset, predict(estimator, dataset, images), Path(annotations))


def evaluate_coco(estimator: Estimator, annotations: Path, images: Path) -> dict:
    """:func:`evaluate` for a COCO keypoint file; InputError for any other format."""
    return _evaluate_format(estimator, annotations, images, "coco")


def evaluate_mpii(estimator: Estimator, annotations: Path, images: Path) -> dict:
    """:func:`evaluate` for an MPII json list; InputError for any other format."""
    return _evaluate_format(estimator, annotations, images, "mpii")


def _evaluate_format(estimator: Estimator, annotations: Path, images: Path, fmt: str) -> dict:
    dataset = load_dataset(annotations)
    if dataset.format != fmt:
        raise InputError(f"{annotations} is {dataset.format.upper()} json, not {fmt.upper()}: "
                         f"use evaluate_{dataset.format} or evaluate")
    return score(dataset, predict(estimator, dataset, images), Path(annotations))


def score(dataset: Dataset, predictions: dict[int, list[Pose]], source: Path | None = None) -> dict:
    """All metrics for predictions already made (image id -> poses)."""
    je = joint_errors(dataset, predictions)
    return {
        "annotations": source.name if source else None,
        "format": dataset.format,
        "layout": dataset.layout,
        "images": len(dataset.images),
        "annotated_people": len(je.torso),
        # people with at least one labelled joint that BlazePose shares: the ones scored
        "people": int(je.labelled.any(axis=1).sum()),
        "predictions": sum(len(p) for p in predictions.values()),
        "matched": int(np.isfinite(je.error).any(axis=1).sum()),
        "oks_joints": [n for n, k in zip(dataset.joints, dataset.oks_mask) if k],
        **coco_keypoint_metrics(dataset, predictions),
        **joint_metrics(je),
        "definitions": DEFINITIONS,
    }


# -- the `edgepose eval` subcommand ---------------------------------------------------------------
def pipeline_facts(pipe) -> dict:
    """Model and backend of an edgepose Pipeline, for results."""
    o = pipe.options
    return {"model": Path(pipe.landmark_path).name, "backend": pipe.runtime,
            "max_people": o.max_people, "threads": o.threads}


def format_summary(result: dict) -> str:
    """A few human lines: counts, AP/AR, PCK, the per-joint table."""
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [
        f"{result['annotations']} ({result['layout']}, {result['format']} format): "
        f"{result['images']} images, {result['people']} people scored "
        f"({result['annotated_people']} annotated), {result['predictions']} "
        f"poses predicted, {result['matched']} matched"
        + (f"; model {result['model']} ({result['backend']}), max_people {result['max_people']}"
           if "model" in result else ""),
        f"OKS over {len(result['oks_joints'])} joints: AP {f(result['AP'])}  AP50 {f(result['AP50'])}  "
        f"AP75 {f(result['AP75'])}  AR {f(result['AR'])}",
        f"PCK@0.2 torso {f(result['PCK@0.2'])} ({result['pck_people']} people)  "
        f"PCKh@0.5 {f(result['PCKh@0.5'])} ({result['pckh_people']} people)",
        f"{'joint':16} {'labelled':>8} {'error px':>9} {'PCK@0.2':>8}",
    ]
    for name, j in result["joints"].items():
        err = "-" if j["mean_error_px"] is None else f"{j['mean_error_px']:.1f}"
        lines.append(f"{name:16} {j['labelled']:8d} {err:>9} {f(j['PCK@0.2']):>8}")
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from edgepose.cli import native_stderr_quiet, options_from_args
    from edgepose.engines import create_pipeline

    if getattr(args, "static_image_mode", True) is False:
        raise InputError("eval runs every image on its own: drop --no-static-image-mode")
    dataset = load_dataset(args.annotations)
    image_paths(dataset, args.images)  # fail on a missing image before loading models
    opts = options_from_args(args, static_image_mode=True)
    with native_stderr_quiet(not getattr(args, "verbose", False)):
        pipe = create_pipeline(args.backend, opts)
    t0 = time.perf_counter()
    with pipe:
        predictions = predict(pipe, dataset, args.images)
    result = {**score(dataset, predictions, args.annotations), **pipeline_facts(pipe),
              "images_dir": str(args.images), "wall_s": round(time.perf_counter() - t0, 3)}
    print(format_summary(result))
    if args.out:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"could not write {args.out}: {exc.strerror}") from None
        print(f"wrote: {args.out}")
    return 0


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``edgepose eval`` on an argparse subparsers object."""
    from edgepose.cli import add_option_flags

    p = subparsers.add_parser(
        "eval", help="accuracy on annotated images (OKS AP/AR, PCK, PCKh)",
        description="Run the pipeline on every image of a COCO keypoint or MPII annotation "
                    "file and report OKS AP/AR (pycocotools), PCK@0.2 of the torso, PCKh@0.5 "
                    "and per-joint errors. Joints are matched to BlazePose by name.")
    p.add_argument("--annotations", type=Path, required=True, metavar="FILE.json",
                   help="COCO keypoint json or MPII json list")
    p.add_argument("--images", type=Path, required=True, metavar="DIR",
                   help="folder the annotation's image file names are relative to")
    p.add_argument("--out", type=Path, metavar="RESULT.json", help="write the figures as JSON")
    add_option_flags(p)
    p.set_defaults(func=cmd_eval)
    return p
