"""The ONNX Runtime backend behind the Model interface, on tiny models built in code."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_models import affine_model, constant_model

from edgepose.backends import check_input, find_output, open_model
from edgepose.backends.onnxruntime import OnnxModel, select_providers
from edgepose.blazepose import landmarks as lmk
from edgepose.errors import BackendError, InputError, ModelError



@pytest.fixture(scope="module")
def affine(tmp_path_factory) -> Path:
    return affine_model(tmp_path_factory.mktemp("onnx") / "affine.onnx")


def test_runs_and_reports_specs(affine):
    model = OnnxModel(str(affine), threads=1)
    assert [str(s) for s in model.inputs] == ["input [-1, 3] float32"]  # dynamic dim -> -1
    assert [s.name for s in model.outputs] == ["double", "total"]
    x = np.array([[1, 2, 3], [0, -1, 0.5]], np.float32)
    double, total = model.run(x)
    np.testing.assert_allclose(double, 2 * x + 1)
    np.testing.assert_allclose(total, x.sum(axis=1, keepdims=True))
    # wanted picks outputs, in the order asked
    only = model.run(x, [1, 0])
    np.testing.assert_allclose(only[0], total)
    np.testing.assert_allclose(only[1], double)
    assert model.runtime == "onnxruntime-cpu"
    model.close()
    with pytest.raises(RuntimeError, match="after close"):
        model.run(x)


def test_open_model_picks_the_engine_by_suffix(affine, tmp_path):
    model = open_model(affine, threads=1)
    assert isinstance(model, OnnxModel) and model.engine == "onnxruntime"
    assert model.runtime_label == "onnx/onnxruntime-cpu"
    # anything not .onnx goes to the TFLite engine, which says what it is not
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model"):
        open_model(fake)


def test_wrong_input_is_input_error(affine):
    model = OnnxModel(str(affine))
    with pytest.raises(InputError, match=r"input must be float32 \[-1, 3\].*got float64 \[1, 3\]"):
        model.run(np.zeros((1, 3)))
    with pytest.raises(InputError, match=r"got float32 \[1, 4\]"):
        model.run(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("content, match", [
    (b"", "empty or truncated"),
    (b"this is not an onnx model at all", "could not be loaded by ONNX Runtime"),
    (b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32, "is a TFLite model, not ONNX"),
])
def test_bad_files_are_model_errors(tmp_path, content, match):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        OnnxModel(str(path))


def test_truncated_model_is_model_error(affine, tmp_path):
    data = affine.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        OnnxModel(str(path))


def test_missing_file_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        OnnxModel(str(tmp_path / "nothing.onnx"))


def test_provider_selection():
    assert select_providers("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert select_providers("tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                         "CPUExecutionProvider"])[0] == "TensorrtExecutionProvider"
    with pytest.raises(BackendError, match="'cuda' .*not in this onnxruntime build.*onnxruntime-gpu"):
        select_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(BackendError, match="'tensorrt'.*TensorRT"):
        select_providers("tensorrt", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(BackendError, match="unknown ONNX Runtime provider 'gpu'"):
        select_providers("gpu", ["CPUExecutionProvider"])


def test_absent_provider_names_what_to_install(affine):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the absent-provider error cannot happen here")
    with pytest.raises(BackendError, match="pip install onnxruntime-gpu"):
        OnnxModel(str(affine), provider="cuda")


def test_onnxruntime_not_installed(affine, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(BackendError, match=r'pip install "edgepose\[onnxruntime\]"'):
        OnnxModel(str(affine))


def test_bad_threads(affine):
    with pytest.raises(ValueError, match="threads must be >= 1"):
        OnnxModel(str(affine), threads=0)


def test_pipeline_tensor_checks_work_through_onnx(tmp_path):
    """The pipeline's input check and find-outputs-by-shape, on an ONNX model that lists
    BlazePose-landmark-shaped outputs in another order."""
    roles = ["world", "presence", "landmarks", "heatmap"]
    path = constant_model(tmp_path / "fake_landmark.onnx", (1, 256, 256, 3),
                          {r: np.zeros(lmk.SHAPES[r], np.float32) for r in roles})
    model = OnnxModel(str(path))
    check_input(model, (1, lmk.INPUT_SIZE, lmk.INPUT_SIZE, 3), "landmark")
    assert [find_output(model, lmk.SHAPES[r], r, "landmark") for r in roles] == [0, 1, 2, 3]
    with pytest.raises(ModelError, match=r"expected an output of shape \[1, 256, 256, 1\]"):
        find_output(model, lmk.SHAPES["segmentation"], "segmentation", "landmark")
    with pytest.raises(ModelError, match="expected one float32 input of shape"):
        check_input(model, (1, 224, 224, 3), "detector")


def test_converted_blazepose_landmark_model():
    """A BlazePose landmark model converted to ONNX (by `edgepose convert`) passes the
    pipeline's tensor checks and runs."""
    from edgepose.models import cache_dir

    converted = cache_dir() / "converted"
    found = sorted(converted.glob("pose_landmark_*.onnx")) if converted.is_dir() else []
    if not found:
        pytest.skip(f"no converted BlazePose ONNX model in {converted}: run `edgepose convert to-onnx full`")
    model = OnnxModel(str(found[0]))
    check_input(model, (1, lmk.INPUT_SIZE, lmk.INPUT_SIZE, 3), "landmark")
    idx = {r: find_output(model, lmk.SHAPES[r], r, "landmark") for r in lmk.SHAPES}
    out = model.run(np.full((1, 256, 256, 3), 0.5, np.float32), [idx["landmarks"]])
    assert out[0].shape == lmk.SHAPES["landmarks"] and np.isfinite(out[0]).all()
