"""`edgepose convert` as a new user meets it (issue 14): quiet unless --verbose, README's
`edgepose convert tfjs all` working as written and ending with a table, and anything
convert writes running with `edgepose run` and no other flag. The conversions run in the
tool environments (docs/converters.md; .ci/run builds them) and skip without them."""

from __future__ import annotations


import pytest

import conftest
from conftest import IMAGES, MODELS, need


def edgepose(*args, env=None, timeout=900):
    """Conversions take minutes: conftest's runner with a longer limit."""
    return conftest.edgepose(*args, env=env, timeout=timeout)


def needs_tools(extra: str) -> None:
    from converters import tools

    if tools.environment_python(extra) is None:
        pytest.skip(f"the {extra} tool environment is absent (pip install 'edgepose[{extra}]' "
                    f"into .venv-{extra}, see docs/converters.md)")


def runs(*args) -> str:
    """`edgepose run` on a shared photo with ``args`` and nothing else: the summary."""
    code, out, err = edgepose("run", next(need(IMAGES / "mhp").glob("*.jpg")), *args)
    assert code == 0, err
    assert err.strip() == "", err
    return out


def only_edgepose_lines(err: str) -> None:
    noise = [line for line in err.splitlines() if line.strip() and not line.startswith("edgepose:")]
    assert not noise, "\n".join(noise[:10])


# -- quiet unless --verbose ----------------------------------------------------------------
def test_quantize_shows_no_progress_bars_and_what_it_writes_runs(model_path, tmp_path):
    """ai-edge-quantizer drew progress bars into a log (stderr, not a terminal)."""
    needs_tools("convert-quant")
    out = tmp_path / "lite_int8.tflite"
    code, stdout, err = edgepose("convert", "quantize", model_path("lite"), "--variant", "int8-dynamic",
                                 "--images", need(IMAGES / "mhp"), "--out", out)
    assert code == 0, err
    assert err.strip() == "", err
    assert stdout.count("\n") == 1 and "PASSED" in stdout
    assert "people: 1 pose(s)" in runs("--model", out)
    detector = tmp_path / "detector_float16.tflite"  # float16 needs no tool
    code, _, err = edgepose("convert", "quantize", model_path("detector"), "--variant", "float16",
                            "--out", detector, "--no-verify")
    assert code == 0, err
    assert "people: 1 pose(s)" in runs("--detector", detector)


@pytest.mark.slow
def test_to_and_from_onnx_are_quiet_and_what_they_write_runs(model_path, tmp_path):
    """from-onnx printed ~200 TensorSpec lines, TensorFlow its CUDA probing; a detector
    converted with to-onnx was refused as --detector ("no TFL3 identifier")."""
    needs_tools("convert-tf")
    detector, landmark, back = tmp_path / "det.onnx", tmp_path / "full.onnx", tmp_path / "full_back.tflite"
    for source, out in ((model_path("detector"), detector), (model_path("full"), landmark)):
        code, stdout, err = edgepose("convert", "to-onnx", source, "--out", out)
        assert code == 0, err
        only_edgepose_lines(err)
    code, stdout, err = edgepose("convert", "from-onnx", landmark, "--out", back, "--reference", model_path("full"))
    assert code == 0, err
    only_edgepose_lines(err)
    assert "TensorSpec" not in stdout and len(stdout.splitlines()) == 1, stdout[-2000:]
    assert "people: 1 pose(s)" in runs("--detector", detector, "--model", landmark)
    assert "people: 1 pose(s)" in runs("--model", back)


# -- edgepose convert tfjs all, as README writes it -----------------------------------------
def _report(passed: bool, reason: str = "") -> dict:
    return {"gate": {"passed": passed, "reasons": [] if passed else [reason]},
            "outputs": {"y": {"max_abs": 0.5 if not passed else 1e-6, "relative": 0.05}},
            "latency_ms": {"result": {"p50": 3.0}}}


def test_the_verdict_says_what_failed_what_to_use_and_sets_the_exit_code(tmp_path):
    """A float16 file made only because the default makes all three may fail its gate
    (CenterNet's does) without failing the run; the float32 file, or a variant asked for
    with --variant, fails it (exit 2)."""
    from converters import outcome

    files = {v: tmp_path / f"centernet{s}" for v, s in
             (("float32", ".tflite"), ("float16", "_float16.tflite"), ("onnx", ".onnx"))}
    for path in files.values():
        path.write_bytes(b"x" * 1000)
    reports = {"float32": _report(True), "float16": _report(False, "output y differs"), "onnx": _report(True)}
    results = outcome.tfjs_results("centernet", files, reports, None, "--detector centernet")
    table = outcome.tfjs_table(results)
    assert "| centernet | float16 | centernet_float16.tflite | 0.0 | 0.5 | 3.0 | FAILED |" in table
    lines, code = outcome.tfjs_verdict(results)
    assert code == 0 and lines[0].startswith("2 of 3 verified files passed")
    assert "output y differs" in lines[1] and "use centernet.tflite (float32, passed), which " \
           "`--detector centernet` runs" in lines[1]
    asked = outcome.tfjs_results("centernet", files, reports, ["float16"])
    assert outcome.tfjs_verdict(asked)[1] == outcome.EXIT_FAILED_GATE
    reports["float32"] = _report(False, "collapsed")
    assert outcome.tfjs_verdict(outcome.tfjs_results("centernet", files, reports, None))[1] == 2


@pytest.fixture(scope="module")
def converted_as_readme_says(tmp_path_factory):
    """`edgepose convert tfjs all`, word for word, into an empty cache (the TF.js files from
    ../shared through EDGEPOSE_MODEL_PATH, as conftest sets it)."""
    from edgepose.sources import demo_image

    needs_tools("convert-tf")
    need(MODELS / "tfjs")
    if demo_image() is None:
        pytest.skip("no demo photo on this machine to verify on (edgepose.demo)")
    cache = tmp_path_factory.mktemp("cache")
    code, out, err = edgepose("convert", "tfjs", "all", env={"EDGEPOSE_CACHE": str(cache)})
    return cache, code, out, err


@pytest.mark.slow
def test_tfjs_all_works_as_written_and_ends_with_a_table(converted_as_readme_says):
    """It failed with "no photo to verify on" (the tool environment has no demo photo),
    and ended with exit 2 behind ~30 lines of TensorFlow noise."""
    from edgepose import registry

    cache, code, out, err = converted_as_readme_says
    assert code == 0, err[-3000:]
    assert err.strip() == "", err[-3000:]
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith(("| model", "| ---"))]
    files = 3 * len(registry.CONVERTIBLE_MODELS)  # float32, float16, onnx of each
    assert len(rows) == files and all(row.endswith(("| PASSED |", "| FAILED |")) for row in rows), out
    failed = [row for row in rows if row.endswith("FAILED |")]
    assert not any("| float32 |" in row for row in failed)
    if failed:
        assert f"{files - len(failed)} of {files} verified files passed" in out and "Not used by name" in out
    else:
        assert f"All {files} verified file(s) match TensorFlow" in out


@pytest.mark.slow
def test_every_file_tfjs_all_writes_runs_with_no_other_flag(converted_as_readme_says):
    from edgepose import registry

    cache, code, out, err = converted_as_readme_says
    assert code == 0, err[-3000:]
    for model in registry.CONVERTIBLE_MODELS.values():
        flag = "--detector" if model.role == "detector" else "--model"
        for suffix in (".tflite", "_float16.tflite", ".onnx"):
            assert "people:" in runs(flag, cache / "converted" / f"{model.name}{suffix}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nanodet", "movenet-multipose"])
def test_a_tfjs_model_converted_by_path_runs_with_no_other_flag(name, tmp_path):
    """By path it lost what it was: MultiPose's file was read as a BlazePose landmark model
    ("expected one float32 input ... found int32"), NanoDet's as BlazePose's detector.
    A model.json with a known model's sha256 is converted as that model."""
    needs_tools("convert-tf")
    source = need(MODELS / "tfjs" / f"{name}.json")
    args = ["--input-shape", "1,256,256,3"] if name == "movenet-multipose" else []
    code, out, err = edgepose("convert", "tfjs", source, *args, "--variant", "float32",
                              "--images", need(IMAGES / "mhp"), "--out", tmp_path)
    assert code == 0, err[-3000:]
    flag = "--detector" if name == "nanodet" else "--model"
    assert "people: 2 pose(s)" in runs(flag, tmp_path / f"{name}.tflite", "--max-people", 4)


def test_a_task_bundle_runs_with_no_other_flag(model_path, tmp_path):
    """`edgepose run --model pose.task` read the bundle as TFLite ("no TFL3 identifier"):
    a .task bundle runs on MediaPipe Tasks, the only engine that reads one."""
    pytest.importorskip("mediapipe", reason="needs the mediapipe extra")
    bundle = tmp_path / "pose.task"
    code, _, err = edgepose("convert", "task-bundle", "--detector", model_path("detector"),
                            "--model", model_path("full"), "--out", bundle)
    assert code == 0, err
    assert "people: 1 pose(s)" in runs("--model", bundle)
    code, _, err = edgepose("run", next(need(IMAGES / "mhp").glob("*.jpg")), "--model", bundle,
                            "--backend", "tflite")
    assert code == 1 and "MediaPipe .task bundle" in err and "--backend mediapipe-tasks" in err
