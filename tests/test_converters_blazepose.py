"""Conversions of the real BlazePose models, checked on person crops from the shared
images. Float32 / float16 need nothing beyond edgepose; the int8 and ONNX steps run through
`edgepose convert`, which runs them in the convert-quant / convert-tf tool environment
(docs/converters.md; .ci/run builds both), and are verified here; they skip with the
reason when that environment is absent."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import IMAGES, ROOT, need

pytestmark = pytest.mark.slow


def _convert(extra: str, *args) -> None:
    """`edgepose convert ARGS`, which runs the step in ``extra``'s tool environment."""
    from converters import tools

    if tools.environment_python(extra) is None:
        pytest.skip(f"the {extra} tool environment is absent (pip install 'edgepose[{extra}]' "
                    f"into .venv-{extra}, see docs/converters.md)")
    proc = subprocess.run([sys.executable, "-m", "edgepose", "convert", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def crops(model_path):
    from converters import calibration

    need(IMAGES)
    return calibration.person_crops(IMAGES, detector=model_path("detector"),
                                    landmark=model_path("full"), limit=64)


def _px(report: dict) -> float:
    return report["landmarks"]["px_mean"]


@pytest.mark.parametrize("variant", ["float32", "float16"])
def test_float_variants_keep_landmarks_within_a_pixel(variant, crops, model_path, tmp_path):
    from converters import metadata, quantize, verify

    out = quantize.quantize_file(model_path("full"), variant, tmp_path / f"full_{variant}.tflite")
    v = verify.verify(model_path("full"), out, crops, variant=variant, timing=False)
    assert v.passed
    assert v.report["landmarks"]["px_max"] < 1.0
    assert v.report["landmarks"]["presence_agreement"] == 1.0
    meta = metadata.read_metadata(out)
    assert meta["variant"] == variant and meta["task"] == "blazepose-landmark"
    assert meta["source"]["file"] == "pose_landmark_full.tflite"


def test_detector_densified_keeps_its_outputs(model_path, tmp_path):
    from converters import calibration, quantize, verify

    need(IMAGES)
    out = quantize.quantize_file(model_path("detector"), "float32", tmp_path / "det.tflite")
    inputs = calibration.detector_inputs(IMAGES, limit=8)
    v = verify.verify(model_path("detector"), out, inputs, timing=False)
    assert all(o["max_abs"] < 1e-3 for o in v.report["outputs"].values())


def test_converted_model_runs_in_the_pipeline_without_flags(model_path, tmp_path, shared_images):
    import cv2

    from edgepose import Pipeline
    from converters import quantize

    out = quantize.quantize_file(model_path("full"), "float16", tmp_path / "full_fp16.tflite")
    image = cv2.imread(str(next(p for p in shared_images if "mpii" in str(p))))
    with Pipeline(model=str(out), static_image_mode=True, threads=2) as converted, \
            Pipeline(model="full", static_image_mode=True, threads=2) as original:
        a, b = converted.process(image).poses, original.process(image).poses
    assert len(a) == len(b) >= 1
    np.testing.assert_allclose(a[0].keypoints[:, :2], b[0].keypoints[:, :2], atol=0.5)


def test_the_gate_catches_a_collapsed_model(model_path, crops, tmp_path):
    """Zero the landmark head (what a broken full-integer model looks like): the gate
    must fail without any annotated set."""
    from converters import tflite_graph, verify

    model = tflite_graph.load(tflite_graph.prepare_for_tools(open(model_path("full"), "rb").read())[0])
    g = model.subgraphs[0]
    for op in g.operators:
        out_name = tflite_graph.tensor_name(g.tensors[op.outputs[0]])
        if "convld_3d" in out_name or "conv_poseflag" in out_name:
            for i in op.inputs[1:]:
                t = g.tensors[i]
                if tflite_graph.constant(model, t) is not None:
                    model.buffers[t.buffer].data = np.zeros_like(model.buffers[t.buffer].data)
    broken = tmp_path / "collapsed.tflite"
    broken.write_bytes(tflite_graph.dump(model))
    v = verify.verify(model_path("full"), broken, crops, variant="int8-static", timing=False)
    assert not v.passed
    assert any("collapsed" in r for r in v.report["gate"]["reasons"])
    assert v.report["gate"]["fallback"] == "int8-mixed"


# int8-weight keeps its output heads float (quantize.WEIGHT_ONLY_FLOAT_TAIL_DEPTH): with
# every weight int8 full moved 3.5 px and flipped presence on ~15 % of crops.
@pytest.mark.parametrize("variant", ["int8-weight", "int8-mixed"])
def test_int8_full_stays_close(variant, crops, model_path, tmp_path):
    from converters import verify

    # calibrated on the even crops of the same images (the CLI alternates them), tested on the odd
    out = tmp_path / f"full_{variant}.tflite"
    _convert("convert-quant", "quantize", model_path("full"), "--variant", variant, "--images", IMAGES,
             "--calibration-limit", "32", "--no-verify", "--out", out)
    v = verify.verify(model_path("full"), out, crops[1::2], variant=variant, timing=False)
    # No annotated set here: the gate checks collapse; the landmark error must stay small.
    assert v.passed, v.report["gate"]
    assert _px(v.report) < 10.0
    assert v.report["landmarks"]["presence_agreement"] >= 0.9


def test_onnx_round_trip_is_within_a_pixel(model_path, crops, tmp_path):
    from converters import tflite_graph, verify

    onnx_path = tmp_path / "full.onnx"
    _convert("convert-tf", "to-onnx", model_path("full"), "--out", onnx_path)
    v = verify.verify(model_path("full"), onnx_path, crops[:16], timing=False)
    assert v.report["landmarks"]["px_max"] < 1.0
    back = tmp_path / "full_back.tflite"
    _convert("convert-tf", "from-onnx", onnx_path, "--out", back, "--reference", model_path("full"))
    v = verify.verify(model_path("full"), back, crops[:16], timing=False)
    assert v.report["landmarks"]["px_max"] < 1.0
    g = tflite_graph.load(back.read_bytes()).subgraphs[0]
    ref = tflite_graph.load(open(model_path("full"), "rb").read()).subgraphs[0]
    assert [list(g.tensors[i].shape) for i in g.outputs] == [list(ref.tensors[i].shape) for i in ref.outputs]
    assert list(g.tensors[g.inputs[0]].shape) == [1, 256, 256, 3]


def test_detector_to_onnx_handles_densify(model_path, tmp_path):
    from converters import calibration, verify

    need(IMAGES)
    out = tmp_path / "det.onnx"
    _convert("convert-tf", "to-onnx", model_path("detector"), "--out", out)
    v = verify.verify(model_path("detector"), out, calibration.detector_inputs(IMAGES, limit=4), timing=False)
    assert all(o["max_abs"] < 1e-2 for o in v.report["outputs"].values())
