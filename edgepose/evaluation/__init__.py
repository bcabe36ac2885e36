"""Accuracy on annotated images: OKS AP / AR (pycocotools), PCK@0.2 of the torso, PCKh@0.5
and per-joint errors, for any estimator with ``process(bgr_image) -> FrameResult``.

:mod:`~edgepose.evaluation.datasets` reads COCO keypoint and MPII annotations into one
form (joints mapped to BlazePose by name); :mod:`~edgepose.evaluation.metrics` scores
predictions (its docstring and ``DEFINITIONS`` define every figure). Here: running an
estimator over a set and the entry points.

>>> from edgepose import Pipeline
>>> from edgepose.evaluation import evaluate
>>> with Pipeline(static_image_mode=True, max_people=10) as pipe:
...     result = evaluate(pipe, "test_crowdpose.json", "images/")
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from edgepose.errors import InputError
from edgepose.evaluation.datasets import (
    BOX_AREA_FACTOR,
    COCO_SIGMAS,
    LAYOUTS,
    AnnotatedImage,
    Dataset,
    Person,
    canonical_joint_name,
    detect_layout,
    image_paths,
    load_dataset,
)
from edgepose.evaluation.metrics import (
    DEFINITIONS,
    JointErrors,
    coco_keypoint_metrics,
    joint_errors,
    joint_metrics,
    match_people,
    oks,
    pck,
    prediction_score,
    score,
)
from edgepose.types import FrameResult, Pose

__all__ = [
    "BOX_AREA_FACTOR", "COCO_SIGMAS", "DEFINITIONS", "LAYOUTS", "AnnotatedImage", "Dataset",
    "Estimator", "JointErrors", "Person", "canonical_joint_name", "coco_keypoint_metrics",
    "detect_layout", "evaluate", "evaluate_coco", "evaluate_mpii", "format_summary",
    "image_paths", "joint_errors", "joint_metrics", "load_dataset", "match_people",
    "measured_by", "oks", "pck", "predict", "prediction_score", "score",
]

log = logging.getLogger(__name__)


class Estimator(Protocol):
    """What the evaluation needs: one BGR image in, poses with 33 BlazePose keypoints out."""

    def process(self, image: np.ndarray) -> FrameResult: ...


def measured_by(estimator) -> np.ndarray | None:
    """(33,) bool: the BlazePose rows the estimator's model fills, for a Pipeline whose
    model has a keypoint layout (COCO-17, MPII-16: no face); None (every row) otherwise."""
    from edgepose.keypoints import measured_rows

    layout = getattr(getattr(estimator, "estimator", None), "layout", None)
    return None if layout is None else measured_rows(layout)


def predict(estimator: Estimator, dataset: Dataset, images: Path) -> dict[int, list[Pose]]:
    """Run the estimator once per annotated image; image id -> poses."""
    from edgepose.sources import read_image

    paths = image_paths(dataset, images)
    out = {}
    for img, path in zip(dataset.images, paths):
        out[img.id] = list(estimator.process(read_image(path)).poses)
        log.debug("%s: %d annotated, %d predicted", img.file_name, len(img.people), len(out[img.id]))
    return out


def evaluate(estimator: Estimator, annotations: Path, images: Path) -> dict:
    """Run ``estimator`` on every annotated image and score it; the format is detected.

    The estimator should treat images as unrelated (e.g. ``Pipeline(static_image_mode=True)``).
    Returns a JSON-ready dict: AP, AP50, AP75, AR, AR50, AR75, PCK@0.2, PCKh@0.5 (None when
    the layout has no head segment), counts, and per-joint figures.
    """
    dataset = load_dataset(annotations)
    return score(dataset, predict(estimator, dataset, images), Path(annotations), measured_by(estimator))


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
    return score(dataset, predict(estimator, dataset, images), Path(annotations), measured_by(estimator))


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
