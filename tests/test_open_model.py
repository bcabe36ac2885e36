"""open_model: one engine per file suffix, its options checked, metadata read from the
same bytes that run; and the converters' verifier on models whose input is not float32."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.backends import Model, engine_for, open_model
from edgepose.errors import BackendError, InputError, ModelError

onnx = pytest.importorskip("onnx", reason="the ONNX tests need onnx: pip install onnx")
pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime: pip install onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
               np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.int32): TensorProto.INT32}


def scale_model(path: Path, dtype, scale: float = 2.0, metadata: str | None = None) -> Path:
    """input (1, 4) of ``dtype`` -> ``scaled`` = float32(input) * scale + 1 (1, 4), and
    ``same`` = the input in its own dtype. ``metadata``: the raw edgepose entry."""
    x = helper.make_tensor_value_info("input", _ONNX_TYPES[np.dtype(dtype)], [1, 4])
    nodes = [helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xf", "scale"], ["times"]),
             helper.make_node("Add", ["times", "one"], ["scaled"]),
             helper.make_node("Identity", ["input"], ["same"])]
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
             numpy_helper.from_array(np.array(1, np.float32), "one")]
    outs = [helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("same", _ONNX_TYPES[np.dtype(dtype)], [1, 4])]
    model = helper.make_model(helper.make_graph(nodes, "scale", [x], outs, inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if metadata is not None:
        prop = model.metadata_props.add()
        prop.key, prop.value = "edgepose", metadata
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


# -- the engine and its options ----------------------------------------------------------------------
@pytest.mark.parametrize("name, engine", [
    ("m.onnx", "onnxruntime"), ("M.ONNX", "onnxruntime"), ("m.tflite", "tflite"),
    ("m.onnx.tflite", "tflite"), ("model", "tflite"),
])
def test_one_rule_for_the_suffix(name, engine):
    assert engine_for(name) == engine
    assert engine_for(Path("/some/dir") / name) == engine


def test_onnx_model_knows_its_engine_and_metadata(tmp_path):
    info = {"format": 1, "task": "centernet-person", "variant": "onnx"}
    path = scale_model(tmp_path / "m.onnx", np.float32, metadata=json.dumps(info))
    with open_model(path, threads=1) as model:
        assert isinstance(model, Model)
        assert model.path == str(path)
        assert (model.engine, model.runtime, model.runtime_label) == (
            "onnxruntime", "onnxruntime-cpu", "onnx/onnxruntime-cpu")
        assert model.metadata == info
        assert [str(s) for s in model.inputs] == ["input [1, 4] float32"]
    assert open_model(scale_model(tmp_path / "plain.onnx", np.float32)).metadata is None


def test_tflite_model_knows_its_engine_and_metadata(model_path, tmp_path):
    pytest.importorskip("ai_edge_litert.schema_py_generated", reason="writing metadata needs LiteRT's schema")
    from converters.metadata import describe, with_tflite_metadata
    from edgepose import models

    source = model_path("lite")
    with open_model(source, threads=1) as model:
        assert model.engine == "tflite" and model.metadata is None
        assert model.runtime_label == f"tflite/{model.runtime}"
    info = describe(source, models.sha256_of(source), "float32", "blazepose-landmark", "test")
    marked = tmp_path / "lite_marked.tflite"
    marked.write_bytes(with_tflite_metadata(Path(source).read_bytes(), info))
    with open_model(marked, threads=1) as model:
        assert model.metadata == json.loads(json.dumps(info))
        assert model.metadata["source"]["file"] == "pose_landmark_lite.tflite"


def test_a_tflite_file_is_opened_once(model_path, monkeypatch):
    """Metadata and interpreter come from one open of the file (the interpreter maps the
    same file; the Python side reads only the pages that hold the metadata)."""
    path = model_path("detector")
    opened = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            opened.append(args[0] if args else kwargs.get("mode", "r"))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    model = open_model(path, threads=1)
    monkeypatch.undo()
    assert opened == ["rb"]
    assert model.metadata is None and len(model.outputs) == 2


def test_a_file_replaced_while_opening_is_a_model_error(model_path, monkeypatch):
    import os

    from edgepose.backends import tflite

    real_stat = os.stat

    def newer(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((st.st_mode, st.st_ino + 1, *tuple(st)[2:]))

    monkeypatch.setattr(tflite.os, "stat", newer)
    with pytest.raises(ModelError, match="was replaced while it was being opened"):
        open_model(model_path("detector"), threads=1)


@pytest.mark.parametrize("suffix, options, refused", [
    (".onnx", {"delegate": "/usr/lib/libedgetpu.so.1"}, "delegate='/usr/lib/libedgetpu.so.1'"),
    (".onnx", {"runtime": "litert"}, "runtime='litert'"),
    (".tflite", {"provider": "cuda"}, "provider='cuda'"),
])
def test_an_option_the_engine_does_not_honour_is_refused(tmp_path, suffix, options, refused):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(b"never read: the options are checked first")
    with pytest.raises(BackendError, match=f"which does not take {refused}"):
        open_model(path, **options)


def test_defaults_of_the_other_engine_are_not_refused(tmp_path, model_path):
    path = scale_model(tmp_path / "m.onnx", np.float32)
    open_model(path, runtime="auto", delegate=None, provider="cpu", threads=1).close()
    open_model(model_path("detector"), runtime="auto", provider="cpu", threads=1).close()


@pytest.mark.parametrize("raw, message", [("{not json", "not JSON"), ("[1, 2]", "not a JSON object")])
def test_broken_metadata_is_a_model_error(tmp_path, raw, message):
    path = scale_model(tmp_path / "m.onnx", np.float32, metadata=raw)
    with pytest.raises(ModelError, match=f"m.onnx: .*{message}"):
        open_model(path)


def test_run_after_close_is_a_clear_error(tmp_path, model_path):
    for path, x in ((scale_model(tmp_path / "m.onnx", np.float32), np.zeros((1, 4), np.float32)),
                    (model_path("detector"), np.zeros((1, 224, 224, 3), np.float32))):
        model = open_model(path, threads=1)
        model.run(x)
        model.close()
        with pytest.raises(RuntimeError, match="run\\(\\) after close\\(\\)"):
            model.run(x)


def test_tflite_wrong_input_is_an_input_error(model_path):
    with open_model(model_path("detector"), threads=1) as model:
        with pytest.raises(InputError, match=r"input must be float32 \[1, 224, 224, 3\].*got float64"):
            model.run(np.zeros((1, 224, 224, 3)))


# -- inputs in their own dtype ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.uint8, np.int8, np.int32])
def test_inputs_keep_their_dtype(tmp_path, dtype):
    path = scale_model(tmp_path / f"{np.dtype(dtype).name}.onnx", dtype)
    with open_model(path, threads=1) as model:
        assert model.inputs[0].dtype == np.dtype(dtype)
        x = np.array([[0, 1, 2, 100]], dtype)
        scaled, same = model.run(x)
        np.testing.assert_array_equal(same, x)
        np.testing.assert_allclose(scaled, x.astype(np.float32) * 2 + 1)
        with pytest.raises(InputError, match=f"input must be {np.dtype(dtype).name}"):
            model.run(x.astype(np.float32 if dtype != np.float32 else np.float64))


@pytest.mark.parametrize("dtype", [np.float16, np.uint8])
def test_verifier_feeds_each_model_its_own_dtype(tmp_path, dtype):
    """The verifier's old runner fed float16 inputs float32 and uint8 inputs int32; ONNX
    Runtime refuses both. Source and result here differ in one output by a known amount."""
    from converters import verify

    name = np.dtype(dtype).name
    source = scale_model(tmp_path / f"source_{name}.onnx", dtype, scale=2.0)
    result = scale_model(tmp_path / f"result_{name}.onnx", dtype, scale=2.5,
                         metadata=json.dumps({"variant": f"test-{name}"}))
    inputs = np.arange(24, dtype=np.float32).reshape(6, 1, 4)  # whole numbers: exact in every dtype
    v = verify.verify(source, result, inputs, timing=True)
    report = v.report
    assert report["result"]["variant"] == f"test-{name}"
    assert report["result"]["engine"] == "onnx/onnxruntime-cpu"
    assert report["outputs"]["same"]["max_abs"] == 0.0
    assert report["outputs"]["scaled"]["max_abs"] == pytest.approx(0.5 * 23)
    for side in ("source", "result"):
        assert {"p50", "p90", "min", "count"} <= set(report["latency_ms"][side])
    assert report["speedup"] > 0
    assert (tmp_path / f"result_{name}.onnx.verify.md").is_file()


def test_verifier_latency_uses_the_profiler_statistics(tmp_path):
    from converters import verify
    from edgepose.profiler import latency_stats

    path = scale_model(tmp_path / "m.onnx", np.uint8)
    with open_model(path, threads=1) as model:
        (stats,) = verify.latency([model], np.ones((1, 4), np.float32), warmup=1, runs=7)
    assert stats["count"] == 7
    assert set(stats) == set(latency_stats([1.0]))


def test_verifier_refuses_models_with_other_inputs(tmp_path):
    from converters import verify

    source = scale_model(tmp_path / "a.onnx", np.float32)
    other = tmp_path / "b.onnx"
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 5])
    y = helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [1, 5])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["input"], ["scaled"])],
                                                "other", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    other.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match=r"takes input \[1, 5\] but .* takes \[1, 4\]"):
        verify.verify(source, other, np.zeros((2, 1, 4), np.float32), write=False, timing=False)
