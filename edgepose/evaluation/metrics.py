"""The metrics of :mod:`edgepose.evaluation` (also in ``DEFINITIONS``, written into every
result):

- OKS AP / AR: COCO's keypoint evaluation (pycocotools), restricted to the joints the
  dataset shares with BlazePose *and* that COCO gives a sigma (nose, eyes, ears,
  shoulders, elbows, wrists, hips, knees, ankles), with those COCO sigmas. The object
  scale is the annotation's area (see :mod:`edgepose.evaluation.datasets`).
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

import contextlib
import dataclasses
import io
import logging
from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.evaluation.datasets import Dataset, Person, box_of
from edgepose.types import Pose

log = logging.getLogger(__name__)

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
            box = box_of(xy, np.ones(len(xy), bool))
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


def score(dataset: Dataset, predictions: dict[int, list[Pose]], source: Path | None = None,
          measured: np.ndarray | None = None) -> dict:
    """All metrics for predictions already made (image id -> poses). ``measured``: (33,)
    bool, the BlazePose rows the model fills (None: all); only the joints the set shares
    with them are scored."""
    dataset = dataset.restricted_to(measured)
    je = joint_errors(dataset, predictions)
    return {
        "annotations": Path(source).name if source else None,
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
