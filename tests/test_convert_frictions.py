"""`edgepose convert` as a new user meets it (issue 14): quiet unless --verbose, README's
`edgepose convert tfjs all` working as written and ending with a table, and anything
convert writes running with `edgepose run` and no other flag. The conversions run in the
tool environments (docs/converters.md; .ci/run builds them) and skip without them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IMAGES, MODELS, ROOT, need


def edgepose(*args, env=None, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    return proc.returncode, proc.stdout, proc.stderr


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
def test_quantize_shows_no_progress_bars(model_path, tmp_path):
    """ai-edge-quantizer drew progress bars into a log (stderr, not a terminal)."""
    needs_tools("convert-quant")
    out = tmp_path / "lite_int8.tflite"
    code, stdout, err = edgepose("convert", "quantize", model_path("lite"), "--variant", "int8-dynamic",
                                 "--images", need(IMAGES / "mhp"), "--out", out)
    assert code == 0, err
    assert err.strip() == "", err
    assert stdout.count("\n") == 1 and "PASSED" in stdout


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
