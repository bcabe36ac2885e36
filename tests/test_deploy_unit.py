"""deploy/edgepose.service is a valid systemd unit (systemd-analyze verify) and runs the
command documented in docs/devices.md. Skips where systemd-analyze is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "edgepose.service"
DEFAULTS = ROOT / "deploy" / "edgepose.default"
VENV_EDGEPOSE = "/opt/edgepose/venv/bin/edgepose"


def test_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart exists: point it at an executable that does.
    text = UNIT.read_text()
    assert VENV_EDGEPOSE in text
    unit = tmp_path / "edgepose.service"
    unit.write_text(text.replace(VENV_EDGEPOSE, shutil.which("true") or "/bin/true"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "edgepose.service" not in proc.stderr, proc.stderr


def test_unit_restarts_on_failure_and_reads_the_defaults_file():
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1]
             for line in UNIT.read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    assert lines["Restart"] == "on-failure"
    assert lines["ExecStart"].startswith(f"{VENV_EDGEPOSE} run ")
    assert lines["EnvironmentFile"] == "-/etc/default/edgepose"
    assert lines["WantedBy"] == "multi-user.target"
    settings = [line.split("=", 1)[0] for line in DEFAULTS.read_text().splitlines()
                if line and not line.startswith("#")]
    assert settings == ["EDGEPOSE_SOURCE", "EDGEPOSE_ARGS"]
