"""PoseNet: the greedy PersonLab decoding on fields whose people the test places, a user's
own PoseNet file behind --decoder posenet, and the converted model (--model posenet) on
the shared photos."""

from __future__ import annotations

import subprocess
import sys
import types

import cv2
import numpy as np
import pytest

from conftest import IMAGES, ROOT, need, need_converted, run_poses
from onnx_models import constant_model

from edgepose import Pipeline
from edgepose.decoders import posenet as pn
from edgepose.errors import ModelError
from edgepose.options import OptionError
from edgepose.skeletons import BLAZEPOSE_TO_COCO, CocoKeypoint as C

STRIDE, GRID = 16.0, 25  # PoseNet's 385x385 input
# A standing person, (x, y) input pixels from the hip centre, COCO-17 order.
BODY = np.array([(0, -90), (5, -95), (-5, -95), (10, -92), (-10, -92), (20, -65), (-20, -65),
                 (28, -35), (-28, -35), (30, -8), (-30, -8), (12, 0), (-12, 0), (13, 45),
                 (-13, 45), (14, 90), (-14, 90)], np.float32)
PART_SCORE = 0.4  # below the root threshold: only the peaks the test places start people


def person_at(x: float, y: float) -> np.ndarray:
    """(17, 2) y, x input pixels of a person whose hips are centred at (x, y)."""
    return (BODY + (x, y))[:, ::-1].copy()


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def fields_for(people: list[np.ndarray], roots: dict[tuple[int, int], float],
               displacement_error=(0.0, 0.0)) -> list[np.ndarray]:
    """The four (1, 25, 25, C) outputs of a PoseNet that sees ``people`` ((17, 2) y, x each):
    each keypoint's cell scores PART_SCORE, or the score ``roots`` gives (person, keypoint);
    every cell's offsets point at the nearest person's keypoint, its displacements
    along each edge are that person's (plus ``displacement_error``, y, x pixels)."""
    cells = np.stack(np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="ij"), axis=-1) * STRIDE
    stacked = np.stack(people)  # (P, 17, 2)

    def nearest(k: int) -> np.ndarray:  # (25, 25) index of the person nearest each cell
        return (((cells[:, :, None] - stacked[None, None, :, k]) ** 2).sum(-1)).argmin(-1)

    heat = np.full((GRID, GRID, 17), logit(0.002), np.float32)
    offsets = np.zeros((GRID, GRID, 17, 2), np.float32)
    for k in range(17):
        offsets[:, :, k] = stacked[nearest(k), k] - cells
        for p, pos in enumerate(people):
            y, x = np.rint(pos[k] / STRIDE).astype(int)
            heat[y, x, k] = logit(roots.get((p, k), PART_SCORE))
    forward = np.zeros((GRID, GRID, 16, 2), np.float32)
    backward = np.zeros_like(forward)
    for e, (parent, child) in enumerate(pn.POSE_TREE):
        forward[:, :, e] = (stacked[:, child] - stacked[:, parent])[nearest(parent)] + displacement_error
        backward[:, :, e] = (stacked[:, parent] - stacked[:, child])[nearest(child)] + displacement_error

    def yx(a):  # (H, W, n, 2) -> (1, H, W, 2n): y channels, then x channels
        return np.concatenate([a[..., 0], a[..., 1]], axis=-1)[None]

    return [heat[None], yx(offsets), yx(forward), yx(backward)]


A, B = person_at(110, 190), person_at(280, 200)


def decode(outputs, **settings):
    return pn.decode_fields(pn.Fields.from_outputs(*outputs, STRIDE), **settings)


# -- the decoder on placed fields ---------------------------------------------------------------------
def test_two_people_grow_from_their_roots_through_the_displacements():
    """A starts at its nose (forward along every edge), B at its right ankle (backward up
    to the nose, then forward): every joint lands where it was placed, scored by the map."""
    scores, people = decode(fields_for([A, B], {(0, C.NOSE): 0.95, (1, C.RIGHT_ANKLE): 0.9}))
    assert len(people) == 2
    np.testing.assert_allclose(people[0, :, :2], A, atol=1e-3)
    np.testing.assert_allclose(people[1, :, :2], B, atol=1e-3)
    assert people[0, C.NOSE, 2] == pytest.approx(0.95, abs=1e-4)
    assert people[1, C.LEFT_WRIST, 2] == pytest.approx(PART_SCORE, abs=1e-4)
    assert scores[0] == pytest.approx((0.95 + 16 * PART_SCORE) / 17, abs=1e-4)
    one, _ = decode(fields_for([A, B], {(0, C.NOSE): 0.95, (1, C.RIGHT_ANKLE): 0.9}), max_people=1)
    assert len(one) == 1 and one[0] == pytest.approx(scores[0])


def test_a_second_root_on_a_decoded_person_starts_nobody():
    """A peak at A's left wrist, the same keypoint of a person already decoded: skipped (root
    NMS), even with no least person score to drop it afterwards."""
    roots = {(0, C.NOSE): 0.95, (1, C.RIGHT_ANKLE): 0.9, (0, C.LEFT_WRIST): 0.8}
    _, people = decode(fields_for([A, B], roots), min_pose_score=0.0)
    assert len(people) == 2
    np.testing.assert_allclose(people[0, :, :2], A, atol=1e-3)


def test_a_root_that_grows_into_a_decoded_person_scores_low():
    """A stray left-wrist peak 48 px from A's wrist whose backward displacement leads to A's
    elbow: beyond the root NMS radius, so it grows, but into A's other 16 joints, which
    count 0 (soft NMS): its person score is its wrist's share alone, below the default
    least score."""
    outputs = fields_for([A, B], {(0, C.NOSE): 0.95, (1, C.RIGHT_ANKLE): 0.9})
    y, x = np.rint(A[C.LEFT_WRIST] / STRIDE).astype(int) + (0, 3)
    outputs[0][0, y, x, C.LEFT_WRIST] = logit(0.8)
    outputs[1][0, y, x, [C.LEFT_WRIST, 17 + C.LEFT_WRIST]] = 0.0  # the stray wrist sits on its cell
    edge = pn.POSE_TREE.index((C.LEFT_ELBOW, C.LEFT_WRIST))
    outputs[3][0, y, x, [edge, 16 + edge]] = A[C.LEFT_ELBOW] - (y * STRIDE, x * STRIDE)
    scores, people = decode(outputs)
    assert len(people) == 2
    scores, people = decode(outputs, min_pose_score=0.0)
    assert len(people) == 3
    others = [k for k in range(17) if k != C.LEFT_WRIST]
    np.testing.assert_allclose(people[2, others, :2], A[others], atol=1e-3)
    assert scores[2] == pytest.approx(0.8 / 17, abs=1e-4)


def test_offsets_refine_what_the_displacements_miss():
    """Displacements off by (5, -6) px: without refinement the error adds up along the
    limbs; two refinement steps snap every joint back onto its keypoint."""
    outputs = fields_for([A], {(0, C.NOSE): 0.95}, displacement_error=(5.0, -6.0))
    _, raw = decode(outputs, refine_steps=0, min_pose_score=0.0)
    _, refined = decode(outputs)
    assert np.abs(raw[0, :, :2] - A).max() > 8
    np.testing.assert_allclose(refined[0, :, :2], A, atol=1e-3)


def test_part_candidates_are_local_maxima_by_score():
    scores = np.zeros((8, 8, 2), np.float32)
    scores[3, 4, 0], scores[3, 5, 0], scores[6, 1, 0] = 0.9, 0.7, 0.6  # (3, 5) is beside a higher one
    scores[1, 1, 1], scores[5, 5, 1] = 0.95, 0.3  # (5, 5) is below the threshold
    parts, s = pn.part_candidates(scores, threshold=0.5)
    assert parts.tolist() == [[1, 1, 1], [0, 3, 4], [0, 6, 1]]
    assert s.tolist() == pytest.approx([0.95, 0.9, 0.6])


def test_fields_of_the_wrong_shape_are_refused():
    heat, offsets, forward, backward = fields_for([A], {(0, C.NOSE): 0.9})
    with pytest.raises(ValueError, match=r"offsets must be \(1, H, W, 34\), got \(1, 25, 25, 32\)"):
        pn.Fields.from_outputs(heat, forward, forward, backward, STRIDE)
    with pytest.raises(ValueError, match="share one grid"):
        pn.Fields.from_outputs(heat, offsets[:, :24], forward, backward, STRIDE)


# -- a user's own PoseNet file (--decoder posenet) ------------------------------------------------------
def own_posenet(path, outputs: list[np.ndarray], names=("heatmap", "offsets", "displacement_fwd",
                                                        "displacement_bwd"), order=(0, 1, 3, 2)) -> str:
    """A constant ONNX model giving ``outputs`` (heatmap, offsets, forward, backward) under
    ``names``, listed in ``order`` (by default backward before forward: read by name)."""
    return str(constant_model(path, (1, 385, 385, 3), {names[i]: outputs[i] for i in order}))


def test_own_posenet_file_finds_the_people_in_image_pixels(tmp_path):
    """A 770x770 frame is the 385 input at half scale: each joint comes back at twice its
    input position, COCO rows filled, boxes around the people."""
    path = own_posenet(tmp_path / "posenet.onnx", fields_for([A, B], {(0, C.NOSE): 0.95, (1, C.RIGHT_ANKLE): 0.9}))
    with Pipeline(model=path, decoder="posenet", max_people=5, static_image_mode=True, threads=1) as pipe:
        assert pipe.describe()["family"] == "posenet" and pipe.estimator.stride == 16.0
        poses = pipe.process(np.zeros((770, 770, 3), np.uint8)).poses
    assert len(poses) == 2
    np.testing.assert_allclose(poses[0].coco17[:, :2], 2 * A[:, ::-1], atol=0.01)
    np.testing.assert_allclose(poses[1].keypoints[BLAZEPOSE_TO_COCO, :2], 2 * B[:, ::-1], atol=0.01)
    assert poses[0].score > poses[1].score > 0.4


def test_unnamed_displacements_are_read_forward_first(tmp_path):
    """Without fwd / bwd in their names the two displacement outputs are taken in model
    order, forward first; B grown from its ankle needs both the right way round."""
    outputs = fields_for([B], {(0, C.RIGHT_ANKLE): 0.95})
    path = own_posenet(tmp_path / "p.onnx", outputs, names=("a", "b", "c", "d"), order=(0, 1, 2, 3))
    with Pipeline(model=path, decoder="posenet", static_image_mode=True, threads=1) as pipe:
        roles = [pipe.estimator.model.outputs[i].name for i in pipe.estimator._outputs]
        poses = pipe.process(np.zeros((385, 385, 3), np.uint8)).poses
    assert roles == ["a", "b", "c", "d"]
    np.testing.assert_allclose(poses[0].coco17[:, :2], B[:, ::-1], atol=0.01)


def test_channels_first_outputs_are_read_too(tmp_path):
    outputs = [np.ascontiguousarray(np.moveaxis(o, -1, 1)) for o in fields_for([A, B], {(0, C.NOSE): 0.95,
                                                                                      (1, C.RIGHT_ANKLE): 0.9})]
    path = own_posenet(tmp_path / "nchw.onnx", outputs)
    with Pipeline(model=path, decoder="posenet", max_people=5, static_image_mode=True, threads=1) as pipe:
        poses = pipe.process(np.zeros((385, 385, 3), np.uint8)).poses
    assert len(poses) == 2
    np.testing.assert_allclose(poses[1].coco17[:, :2], B[:, ::-1], atol=0.01)


def test_a_model_that_is_not_posenet_is_refused_in_one_line(tmp_path):
    heat, offsets, forward, backward = fields_for([A], {(0, C.NOSE): 0.9})
    bad = str(constant_model(tmp_path / "bad.onnx", (1, 385, 385, 3),
                             {"heatmap": heat, "offsets": forward, "fwd": forward, "bwd": backward}))
    with pytest.raises(ModelError, match=r"is not a PoseNet model: expected four outputs .* \(1, H, W, 34\) offsets"):
        Pipeline(model=bad, decoder="posenet")
    good = own_posenet(tmp_path / "good.onnx", [heat, offsets, forward, backward])
    with pytest.raises(OptionError, match=r"keypoint_layout='mpii16' .* is not used by posenet"):
        Pipeline(model=good, decoder="posenet", keypoint_layout="mpii16")
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((100, 100, 3), np.uint8))
    proc = subprocess.run([sys.executable, "-m", "edgepose", "run", str(image), "--model", bad,
                           "--decoder", "posenet"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and "is not a PoseNet model" in lines[0], proc.stderr


# -- the real model (--model posenet, converted by .ci/prepare_models.sh) ----------------------------
@pytest.fixture(scope="module")
def converted_posenet():
    need(IMAGES)
    return need_converted("posenet")


@pytest.mark.parametrize("name, at_least, pck", [
    # measured: crowdpose 4 of 5 people found, PCK@0.2 0.88; aic 9 of 9, 0.79; mhp 4 of 4, 0.70
    ("crowdpose/test_crowdpose.json", 3, 0.7),
    ("aic/test_aic.json", 8, 0.65),
    ("mhp/test_mhp.json", 3, 0.5),
])
def test_posenet_finds_the_annotated_people(converted_posenet, name, at_least, pck):
    from edgepose.evaluation import evaluate

    annotations = need(IMAGES / name)
    with Pipeline(model="posenet", max_people=10, static_image_mode=True, threads=2) as pipe:
        assert pipe.describe()["family"] == "posenet"
        result = evaluate(pipe, annotations, annotations.parent)
    assert result["matched"] >= at_least, result["matched"]
    assert result["PCK@0.2"] >= pck, result["PCK@0.2"]


def test_cli_runs_posenet_by_name(converted_posenet, tmp_path):
    photo = IMAGES / "aic" / "ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg"
    poses = run_poses(photo, "--model", "posenet", "--max-people", "10", tmp_path=tmp_path)
    assert len(poses) >= 5  # six people in the photo, five measured as found


def test_verification_pairs_tflite_outputs_with_the_graph_by_name():
    """TFLite names PoseNet's outputs as the graph does ("a/b:0"), the signature as "a_b",
    and lists them in another order; the two same-shape displacement outputs must pair by
    name, not by position (they did by position, and the float32 file failed its gate)."""
    from converters.verify import match_outputs

    def outputs(*names):
        return types.SimpleNamespace(path="m", outputs=[
            types.SimpleNamespace(name=n, shape=(1, 25, 25, 32)) for n in names])

    graph = outputs("MobilenetV1_displacement_bwd_2_BiasAdd", "MobilenetV1_displacement_fwd_2_BiasAdd")
    tflite = outputs("MobilenetV1/displacement_fwd_2/BiasAdd:0", "MobilenetV1/displacement_bwd_2/BiasAdd:0")
    assert match_outputs(graph, tflite) == [1, 0]
