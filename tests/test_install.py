"""README's first command, verbatim, on a fresh copy of the checkout: a new venv, the light
install, the BlazePose files and the demo photo fetched from the registries into an empty
cache (no EDGEPOSE_MODEL_PATH), and a pose drawn on the written image. Then the
``mediapipe`` extra on top: the Tasks engine on a current MediaPipe release, and ``--show``
with a display that does not answer (one line, never the Qt abort).

Needs PyPI and the npm registry; skips, saying so, when either cannot be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

pytestmark = [pytest.mark.install, pytest.mark.registry]

REGISTRIES = ("https://pypi.org/simple/pip/",
              "https://registry.npmjs.org/@mediapipe%2Fpose")
DEMO_OUT = "edgepose_demo.jpg"


def readme_command(marker: str) -> str:
    """The command of the ```bash block that follows ``<!-- marker -->`` in README."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```bash\n(.*?)\n```", text, re.S)
    assert found, f"README has no ```bash block after <!-- {marker} -->"
    return found.group(1).strip()


def unreachable_registry() -> str | None:
    for url in REGISTRIES:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
                pass
        except urllib.error.HTTPError:
            pass  # it answered
        except (urllib.error.URLError, OSError) as exc:
            return f"{url}: {getattr(exc, 'reason', exc)}"
    return None


def fresh_checkout(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked, plus new files not ignored)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to copy as a fresh clone")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def user_env(cache: Path) -> dict[str, str]:
    """This environment as a new user's shell would have it: no venv active, no model path,
    downloads on, an empty edgepose cache."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "EDGEPOSE_MODEL_PATH",
                        "EDGEPOSE_OFFLINE", "EDGEPOSE_CACHE")}
    if sys.prefix != sys.base_prefix:  # the test runs in a venv: take its bin off PATH
        ours = str(Path(sys.prefix) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != ours)
    env["EDGEPOSE_CACHE"] = str(cache)
    return env


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


@pytest.fixture(scope="module")
def first_command(tmp_path_factory):
    why = unreachable_registry()
    if why:
        pytest.skip(f"the package registries cannot be reached, README's first command needs them: {why}")
    command = readme_command("first-command")
    work = tmp_path_factory.mktemp("fresh")
    checkout = fresh_checkout(work / "edgepose")
    cache = work / "cache"
    env = user_env(cache)
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=1200)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return {"command": command, "checkout": checkout, "cache": cache, "env": env, "proc": proc,
            "seconds": seconds, "venv": checkout / ".venv"}


def test_readmes_first_command_shows_a_pose_on_a_fresh_machine(first_command, capsys):
    proc, checkout, cache = first_command["proc"], first_command["checkout"], first_command["cache"]
    assert "people: 1 pose(s)" in proc.stdout, proc.stdout
    # every BlazePose file came into the empty cache, and the demo photo with them
    assert {"pose_detection.tflite", "pose_landmark_full.tflite"} <= {p.name for p in cache.iterdir()}
    used = re.search(r"no source given, running on (\S+)", proc.stderr)
    assert used, proc.stderr
    import cv2

    photo, drawn = cv2.imread(used.group(1)), cv2.imread(str(checkout / DEMO_OUT))
    assert photo is not None and drawn is not None and photo.shape == drawn.shape
    # the skeleton: strongly changed pixels (JPEG alone moves a few grey levels), in lines
    changed = np.abs(drawn.astype(int) - photo.astype(int)).max(axis=2) > 80
    assert changed.sum() > 300, f"only {changed.sum()} pixels changed: no pose drawn"
    rows, cols = np.nonzero(changed)
    assert np.ptp(rows) > photo.shape[0] / 4 and np.ptp(cols) > photo.shape[1] / 4
    with capsys.disabled():
        print(f"\n[install] {first_command['command']!r}: {first_command['seconds']:.0f} s, "
              f"venv {size_mb(first_command['venv']):.0f} MB installed")


def test_the_mediapipe_extra_runs_the_tasks_engine_and_keeps_show_safe(first_command, capsys, tmp_path):
    """The extra on top of README's install: a current MediaPipe (Tasks only, no models),
    our .task bundle from the files the first command fetched."""
    venv, checkout, env = first_command["venv"], first_command["checkout"], first_command["env"]
    before = size_mb(venv)
    started = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", ".[mediapipe]"], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=1200)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    photo = re.search(r"no source given, running on (\S+)", first_command["proc"].stderr).group(1)
    edgepose = str(venv / "bin" / "edgepose")
    run = subprocess.run([edgepose, "run", photo, "--backend", "mediapipe-tasks", "--out",
                          str(tmp_path / "tasks.jpg")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "people: 1 pose(s)" in run.stdout and "mediapipe-tasks/mediapipe " in run.stdout, run.stdout
    show = subprocess.run([edgepose, "run", photo, "--show"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**env, "DISPLAY": ":4711"})
    lines = [line for line in show.stderr.splitlines() if line.strip()]
    assert show.returncode == 1 and len(lines) == 1, show.stderr  # 134: Qt's abort
    with capsys.disabled():
        print(f"\n[install] pip install '.[mediapipe]' on top: {seconds:.0f} s, "
              f"+{size_mb(venv) - before:.0f} MB installed")
