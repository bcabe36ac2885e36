"""Annotated image sets for :mod:`edgepose.evaluation`: one :class:`Dataset` form for two
annotation formats, told apart by their shape:

- COCO keypoints: ``{"images", "annotations", "categories"}``, the joint names in
  ``categories[i]["keypoints"]``. Any layout: COCO-17, CrowdPose-14, AIC-14, JHMDB-15,
  MPII-16 names (as in MHP), BlazePose-33.
- MPII: a list of ``{"image", "joints" (16 x 2), "joints_vis" (16), "center", "scale"}``,
  one record per person, joints in MPII order.

Joints map to BlazePose landmarks by name ('Right-ankle', 'right_ankle', 'R_Ankle' are
one joint). Joints BlazePose has no landmark for (head top, neck, pelvis, thorax, belly)
are left out, never guessed. The OKS object scale is the annotation's ``area``; without
one (CrowdPose, AIC, JHMDB, MPII) it is 0.53 x the box area, mmpose's convention for
such datasets (the box is the annotation's ``bbox``, or for MPII the box around the
labelled joints).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from edgepose.errors import InputError
from edgepose.skeletons import BlazePoseLandmark, CocoKeypoint, blazepose_index, normalize_joint_name

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

    def restricted_to(self, measured: np.ndarray | None) -> Dataset:
        """The set without the joints a model does not measure (``measured``: (33,) bool
        BlazePose rows, e.g. :func:`edgepose.keypoints.measured_rows` of an MPII-16 model,
        which has no face), so it is scored over the joints the two share. Joints with no
        BlazePose landmark (head top, neck) stay: they are never scored, PCKh needs them."""
        if measured is None:
            return self
        keep = (self.blazepose_indices < 0) | np.asarray(measured, bool)[np.maximum(self.blazepose_indices, 0)]
        if keep.all():
            return self
        if not (keep & (self.blazepose_indices >= 0)).any():
            raise InputError(f"the model measures none of this set's joints ({', '.join(self.joints)})")
        images = [AnnotatedImage(img.id, img.file_name,
                                 [dataclasses.replace(p, xy=p.xy[keep], labelled=p.labelled[keep])
                                  for p in img.people])
                  for img in self.images]
        return Dataset(self.format, self.layout, tuple(n for n, k in zip(self.joints, keep) if k), images)


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


def box_of(xy: np.ndarray, labelled: np.ndarray) -> tuple[float, float, float, float]:
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
    bbox = tuple(float(v) for v in ann["bbox"]) if "bbox" in ann else box_of(kps[:, :2], labelled)
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
        bbox = box_of(xy, labelled)
        person = Person(xy, labelled, bbox, BOX_AREA_FACTOR * bbox[2] * bbox[3])
        name = rec["image"]
        images.setdefault(name, AnnotatedImage(len(images), name, [])).people.append(person)
    return Dataset("mpii", "mpii", joints, list(images.values()))


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

