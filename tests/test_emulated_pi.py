"""The pipeline on an emulated Raspberry Pi (qemu-aarch64 as a Cortex-A72 / A76) gives the
keypoints of this machine's run, with LiteRT and with tflite-runtime
(benchmarks/emulated_pi.py; its docstring says how and its constants give the tolerances).

Slow: the first run downloads Debian arm64 packages and ~600 MB of wheels into
~/.cache/edgepose/emulated-pi, and every run emulates two TFLite models instruction by
instruction (about two minutes on 2 cores once cached). Skips when qemu-user, apt, the
registries or ../shared/data are unavailable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "emulated_pi.py"


@pytest.mark.slow
def test_emulated_pi_matches_x86(tmp_path):
    if not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")):
        pytest.skip("qemu-aarch64 is not installed (apt-get install qemu-user-static)")
    out = tmp_path / "emulated_pi.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--images", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=1500)
    if proc.returncode == 2:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert out.is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    wrong = [r for r in result["runs"] if not r["as_expected"]]
    assert not wrong, json.dumps(wrong, indent=1)
    matched = {r["name"] for r in result["runs"] if r.get("matches")}
    assert {"pi4-litert", "pi4-tflite-runtime", "pi5-litert"} <= matched
    assert proc.returncode == 0, proc.stderr[-2000:]
