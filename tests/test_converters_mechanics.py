"""Converter mechanics on tiny TFLite models built in code: fold, densify, orphans,
signature, float16, output order, metadata, the gate, the CLI and missing tools.
No conversion tool and no shared data needed (these run in CI)."""

from __future__ import annotations

import numpy as np


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _buffer(schema, values: np.ndarray | None):
    buf = schema.BufferT()
    if values is not None:
        buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
    return buf


def _tensor(schema, name: str, shape, ttype, buffer: int):
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), ttype, buffer
    return t


def _opcode(schema, builtin: int):
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    return code


def _op(schema, opcode: int, inputs, outputs, options_type=0, options=None):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, list(inputs), list(outputs)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _model(schema, tensors, ops, codes, buffers, inputs, outputs):
    g = schema.SubGraphT()
    g.tensors, g.operators, g.inputs, g.outputs, g.name = tensors, ops, inputs, outputs, b"main"
    m = schema.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, codes, [g], buffers
    m.description = b"edgepose test model"
    return m


def fp16_add_model(weights: np.ndarray) -> bytes:
    """x (1, 4) float32 + DEQUANTIZE(fp16 constant ``weights`` (1, 4)) -> two outputs:
    ``sum`` and ``twice`` (sum + sum). The MediaPipe weight layout, in miniature."""
    from converters import tflite_graph

    s = _schema()
    T, B = s.TensorType, s.BuiltinOperator
    buffers = [_buffer(s, None), _buffer(s, None), _buffer(s, weights.astype(np.float16)),
               _buffer(s, None), _buffer(s, None), _buffer(s, None)]
    tensors = [_tensor(s, "x", (1, 4), T.FLOAT32, 1), _tensor(s, "w_fp16", (1, 4), T.FLOAT16, 2),
               _tensor(s, "w", (1, 4), T.FLOAT32, 3), _tensor(s, "sum", (1, 4), T.FLOAT32, 4),
               _tensor(s, "twice", (1, 4), T.FLOAT32, 5)]
    add = s.AddOptionsT()
    ops = [_op(s, 0, [1], [2]), _op(s, 1, [0, 2], [3], s.BuiltinOptions.AddOptions, add),
           _op(s, 1, [3, 3], [4], s.BuiltinOptions.AddOptions, s.AddOptionsT())]
    codes = [_opcode(s, B.DEQUANTIZE), _opcode(s, B.ADD)]
    return tflite_graph.dump(_model(s, tensors, ops, codes, buffers, [0], [3, 4]))


def sparse_add_model(dense: np.ndarray) -> bytes:
    """x (4, 4) + DENSIFY(sparse CSR float32 constant of ``dense``): the detector's
    sparse-weight layout in miniature. Row 0 dense, dim 1 CSR."""
    from converters import tflite_graph

    s = _schema()
    T, B = s.TensorType, s.BuiltinOperator
    rows, cols = dense.shape
    segments, indices, values = [0], [], []
    for r in range(rows):
        for c in range(cols):
            if dense[r, c] != 0:
                indices.append(c)
                values.append(dense[r, c])
        segments.append(len(indices))
    d0 = s.DimensionMetadataT()
    d0.format, d0.denseSize = s.DimensionType.DENSE, rows
    d1 = s.DimensionMetadataT()
    d1.format = s.DimensionType.SPARSE_CSR
    seg, idx = s.Int32VectorT(), s.Int32VectorT()
    seg.values, idx.values = segments, indices
    d1.arraySegmentsType, d1.arraySegments = s.SparseIndexVector.Int32Vector, seg
    d1.arrayIndicesType, d1.arrayIndices = s.SparseIndexVector.Int32Vector, idx
    sparsity = s.SparsityParametersT()
    sparsity.traversalOrder, sparsity.dimMetadata = [0, 1], [d0, d1]
    buffers = [_buffer(s, None), _buffer(s, None), _buffer(s, np.array(values, np.float32)),
               _buffer(s, None), _buffer(s, None)]
    sparse = _tensor(s, "w_sparse", (rows, cols), T.FLOAT32, 2)
    sparse.sparsity = sparsity
    tensors = [_tensor(s, "x", (rows, cols), T.FLOAT32, 1), sparse,
               _tensor(s, "w", (rows, cols), T.FLOAT32, 3), _tensor(s, "y", (rows, cols), T.FLOAT32, 4)]
    ops = [_op(s, 0, [1], [2]), _op(s, 1, [0, 2], [3], s.BuiltinOptions.AddOptions, s.AddOptionsT())]
    codes = [_opcode(s, B.DENSIFY), _opcode(s, B.ADD)]
    return tflite_graph.dump(_model(s, tensors, ops, codes, buffers, [0], [3]))


def run(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    """All outputs of the model ``data`` for input ``x`` (plain builtin kernels)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=data, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


# -- tests -------------------------------------------------------------------------------------------
import json  # noqa: E402

import pytest  # noqa: E402

from converters import metadata, tflite_graph, tools  # noqa: E402
from edgepose.errors import BackendError, InputError, ModelError  # noqa: E402

W = np.array([[0.5, -1.25, 3.0, 0.001]], dtype=np.float32)
X = np.array([[1.0, 2.0, -3.0, 4.0]], dtype=np.float32)


def test_fold_fp16_is_exact_and_drops_the_orphans():
    data = fp16_add_model(W)
    model = tflite_graph.load(data)
    assert tflite_graph.fold_fp16(model) == 1
    assert tflite_graph.op_counts(model) == {"ADD": 2}
    # the fp16 tensor; its buffer and the empty one the folded tensor had before
    assert tflite_graph.drop_orphans(model) == (1, 2)
    assert tflite_graph.add_signature(model)
    assert not tflite_graph.add_signature(model)  # a second call changes nothing
    folded = tflite_graph.dump(model)
    for a, b in zip(run(data, X), run(folded, X)):
        np.testing.assert_array_equal(a, b)
    sig = model.signatureDefs[0]
    assert sig.signatureKey == b"serving_default"
    assert [m.name for m in sig.outputs] == [b"sum", b"twice"]


def test_densify_reads_the_dense_values():
    dense = np.array([[0, 1.5, 0, 0], [2, 0, 0, -3], [0, 0, 0, 0], [0.25, 0, 4, 0]], np.float32)
    data = sparse_add_model(dense)
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    out, done = tflite_graph.prepare_for_tools(data)
    assert done["densified"] == 1
    assert "DENSIFY" not in tflite_graph.op_counts(tflite_graph.load(out))
    np.testing.assert_array_equal(run(out, x)[0], x + dense)
    np.testing.assert_array_equal(run(data, x)[0], run(out, x)[0])


def test_to_float16_round_trip():
    model = tflite_graph.load(fp16_add_model(W))
    tflite_graph.fold_fp16(model)
    tflite_graph.drop_orphans(model)
    assert tflite_graph.to_float16(model, min_elements=1) == 1
    half = tflite_graph.dump(model)
    assert tflite_graph.op_counts(tflite_graph.load(half))["DEQUANTIZE"] == 1
    np.testing.assert_allclose(run(half, X)[0], X + W.astype(np.float16).astype(np.float32), rtol=0, atol=0)


def test_reorder_outputs_and_a_wrong_name():
    model = tflite_graph.load(fp16_add_model(W))
    tflite_graph.reorder_outputs(model, ["twice", "sum"])
    g = model.subgraphs[0]
    assert [tflite_graph.tensor_name(g.tensors[i]) for i in g.outputs] == ["twice", "sum"]
    with pytest.raises(ModelError, match="cannot reorder outputs"):
        tflite_graph.reorder_outputs(model, ["sum", "nope"])


def test_metadata_round_trip_with_the_dependency_free_reader(tmp_path):
    info = metadata.describe("pose_landmark_full.tflite", "ab" * 32, "int8-mixed",
                             "blazepose-landmark", "test", outputs={"landmarks": "Identity"})
    data = metadata.with_tflite_metadata(fp16_add_model(W), info)
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    got = metadata.read_metadata(path)
    assert got == json.loads(json.dumps(info))
    assert got["input"]["std"] == 255.0 and got["keypoints"] == "blazepose-39"
    # replacing keeps one entry; the model still runs
    again = metadata.with_tflite_metadata(data, {**info, "variant": "float16"})
    assert metadata.read_tflite_metadata(again)["variant"] == "float16"
    assert list(metadata.tflite_metadata_entries(again)).count("edgepose") == 1
    np.testing.assert_array_equal(run(again, X)[0], run(data, X)[0])
    assert metadata.read_tflite_metadata(fp16_add_model(W)) is None


def test_google_metadata_entries_are_read(model_path):
    entries = metadata.tflite_metadata_entries(open(model_path("full"), "rb").read())
    assert "min_runtime_version" in entries
    assert metadata.read_tflite_metadata(model_path("full")) is None


@pytest.mark.parametrize("data, message", [
    (b"not a model at all", "not a TFLite model"),
    (b"\x00\x00\x00\x00TFL3\xff\xff", "not a readable TFLite model"),
])
def test_load_rejects_what_is_not_a_model(data, message):
    with pytest.raises(ModelError, match=message):
        tflite_graph.load(data)


def test_missing_tool_names_the_extra(monkeypatch):
    monkeypatch.setattr(tools, "available", lambda name: False)
    monkeypatch.setattr(tools, "environment_python", lambda extra: None)
    with pytest.raises(BackendError, match=r"pip install 'edgepose\[convert-quant\]'"):
        tools.run_in_tool_env(["ai-edge-quantizer"], ["quantize", "full"])
    with pytest.raises(BackendError, match=r"edgepose\[convert-tf\]"):
        tools.require("onnx2tf")
    # yolo-heads needs onnx and onnxruntime only: the light install is named first
    with pytest.raises(BackendError, match=r"^onnx is not installed: pip install onnx here, or pip "
                                           r"install 'edgepose\[convert-tf\]' into its own environment"):
        tools.run_in_tool_env(["onnx", "onnxruntime"], ["yolo-heads", "yolo11n-pose"])


def test_a_step_reruns_in_its_tool_environment(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(tools, "available", lambda name: False)
    monkeypatch.delenv(tools.RERUN_MARK, raising=False)
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EDGEPOSE_CONVERT_QUANT_PYTHON", str(fake))
    monkeypatch.setattr(tools.subprocess, "call", lambda argv, env: calls.append((argv, env)) or 0)
    assert tools.run_in_tool_env(["ai-edge-quantizer"], ["quantize", "full"]) == 0
    argv, env = calls[0]
    assert argv == [str(fake), "-m", "converters.cli", "quantize", "full"]
    assert env[tools.RERUN_MARK] == "1" and env["PATH"].startswith(str(fake.parent))


def test_cli_registers_every_step():
    import argparse

    from converters.cli import add_convert_parser

    parser = argparse.ArgumentParser()
    add_convert_parser(parser.add_subparsers(dest="command"))
    for step in ("quantize", "verify", "to-onnx", "from-onnx", "task-bundle", "yolo-heads"):
        args = parser.parse_args(["convert", step, *(["a", "b"] if step == "verify" else
                                                      ["--out", "x.task"] if step == "task-bundle" else ["m"])])
        assert callable(args.func) and callable(args.step)


def test_calibration_folder_errors(tmp_path):
    from converters import calibration

    with pytest.raises(InputError, match="does not exist"):
        calibration.image_files(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no images"):
        calibration.image_files(tmp_path)


def test_calibration_folder_without_people(tmp_path, model_path):
    import cv2

    from converters import calibration

    cv2.imwrite(str(tmp_path / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(InputError, match="no person found"):
        calibration.person_crops(tmp_path, detector=model_path("detector"), landmark=model_path("full"))


def _report(presence_result=0.9, heat_spread=1.0, ap=(0.5, 0.49)):
    outputs = {
        "Identity": {"shape": [1, 195], "role": "landmarks", "relative": 0.05,
                     "source_spread": 50.0, "result_spread": 49.0, "max_abs": 9.0, "mean_abs": 1.0},
        "Identity_3": {"shape": [1, 64, 64, 39], "role": "heatmap", "relative": 0.2,
                       "source_spread": 1.0, "result_spread": heat_spread, "max_abs": 3.0, "mean_abs": 0.2},
    }
    report = {"outputs": outputs,
              "landmarks": {"presence_mean_source": 0.95, "presence_mean_result": presence_result}}
    if ap is not None:
        report["accuracy"] = {"source": {"mean": {"AP": ap[0]}}, "result": {"mean": {"AP": ap[1]}}}
    return report


@pytest.mark.parametrize("kwargs, passed, reason", [
    ({}, True, None),
    ({"ap": (0.5, 0.45)}, False, "AP dropped 0.050"),
    ({"presence_result": 0.01}, False, "collapsed: mean presence"),
    ({"heat_spread": 0.001, "ap": None}, False, "output Identity_3 is near constant"),
])
def test_gate(kwargs, passed, reason):
    from converters import verify

    g = verify.gate(_report(**kwargs), 0.02, "int8-static")
    assert g["passed"] is passed
    if reason:
        assert any(reason in r for r in g["reasons"])
        assert g["fallback"] == "int8-mixed"
        assert g["worst_outputs"][0].startswith("Identity_3")
        v = verify.Verification("a", "b", {"gate": g})
        with pytest.raises(verify.GateError, match="Try --variant int8-mixed"):
            verify.raise_on_failure(v)


def test_verify_identical_tiny_models_passes(tmp_path):
    from converters import verify

    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    a.write_bytes(fp16_add_model(W))
    model = tflite_graph.load(a.read_bytes())
    tflite_graph.fold_fp16(model)
    tflite_graph.drop_orphans(model)
    b.write_bytes(tflite_graph.dump(model))
    inputs = np.random.default_rng(0).normal(size=(8, 1, 4)).astype(np.float32)
    v = verify.verify(a, b, inputs, variant="float32")
    assert v.passed
    assert v.report["outputs"]["sum"]["max_abs"] == 0.0
    assert (tmp_path / "b.tflite.verify.json").is_file()
    assert "PASSED" in (tmp_path / "b.tflite.verify.md").read_text()
