"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent;
no test downloads anything (EDGEPOSE_OFFLINE=1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MODELS = SHARED / "models"
IMAGES = SHARED / "images"
STREET = SHARED / "video" / "street_1280x720_50fps.avi"

os.environ["EDGEPOSE_OFFLINE"] = "1"
# The stop-signal tests send SIGHUP and expect a clean stop. Run under nohup (or a CI
# runner that ignores SIGHUP), the ignored disposition is inherited by every process the
# tests start, and edgepose rightly keeps an ignored SIGHUP ignored (tested apart, in
# test_systemd_notify): give the tests the default a terminal session has.
signal.signal(signal.SIGHUP, signal.SIG_DFL)
if MODELS.is_dir():
    os.environ.setdefault("EDGEPOSE_MODEL_PATH", str(MODELS))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the workspace's ../shared/data")
    return path


def edgepose(*args, cwd=None, env=None, timeout=300) -> tuple[int, str, str]:
    """``python -m edgepose ARGS`` (``env`` added to this one's): exit code, stdout, stderr."""
    proc = subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})
    return proc.returncode, proc.stdout, proc.stderr


def one_error_line(code: int, err: str) -> str:
    """The one ``edgepose: error:`` line of a failed command (exit 1, no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("edgepose: error: "), err
    return lines[0]


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """The first 12 frames of the street video, as a small MJPG file."""
    import cv2

    cap = cv2.VideoCapture(str(need(STREET)))
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (1280, 720))
    for _ in range(12):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    return path


@pytest.fixture(scope="session")
def shared_images() -> list[Path]:
    need(IMAGES)
    return sorted(p for p in IMAGES.rglob("*") if p.suffix.lower() in (".jpg", ".png"))


@pytest.fixture(scope="session")
def model_path():
    """Path of a BlazePose model file by name, from ../shared or the mediapipe wheel."""
    from edgepose import models
    from edgepose.errors import ModelError

    def get(name: str) -> str:
        try:
            return models.resolve(name, models.KNOWN_MODELS[name].role, download=False)
        except ModelError as exc:
            pytest.skip(f"model {name} is not available offline: {exc}")

    return get


@pytest.fixture(scope="session")
def image_pipeline(model_path):
    from edgepose import Pipeline

    with Pipeline(model=model_path("full"), detector=model_path("detector"),
                  static_image_mode=True, threads=2) as pipe:
        yield pipe


def need_converted(name: str) -> Path:
    """The converted .tflite of a registry model (``.ci/prepare_models.sh`` builds them
    from ../shared); skips saying how to make it when absent."""
    from edgepose import registry

    need(MODELS)
    path = registry.CONVERTIBLE_MODELS[name].converted()
    if not path.is_file():
        pytest.skip(f"{path} is absent: run .ci/prepare_models.sh (or `edgepose convert tfjs {name}`)")
    return path


def run_poses(source: Path, *flags: str, tmp_path: Path) -> list[dict]:
    """``edgepose run SOURCE FLAGS --json``: the poses of its first record (it must exit 0)."""
    import subprocess
    import sys

    out = tmp_path / "poses.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgepose", "run", str(source), *flags, "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text().splitlines()[0])["poses"]


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def load_coco_people(annotation_file: Path) -> dict[str, list[dict[int, tuple[float, float]]]]:
    """Image file -> list of people, each {blazepose index: (x, y)} over the labelled joints
    whose names BlazePose shares (mapped by name, not index)."""
    from edgepose.skeletons import blazepose_index

    data = json.loads(annotation_file.read_text())
    names = data["categories"][0]["keypoints"]
    files = {img["id"]: img["file_name"] for img in data["images"]}
    people: dict[str, list] = {name: [] for name in files.values()}
    for ann in data["annotations"]:
        kps = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
        joints = {}
        for name, (x, y, v) in zip(names, kps):
            idx = blazepose_index(name)
            if idx is not None and v > 0:
                joints[idx] = (x, y)
        if joints:
            people[files[ann["image_id"]]].append({"joints": joints, "bbox": ann["bbox"]})
    return people


def count_found(people: list[dict], predicted: list[np.ndarray], max_error: float = 0.2) -> int:
    """How many annotated people some predicted (33, >=2) keypoint array matches, one to one.

    Error = mean distance over the labelled joints / sqrt(annotated box area)."""
    pairs = []
    for i, person in enumerate(people):
        idx = list(person["joints"])
        gt = np.array([person["joints"][k] for k in idx])
        size = np.sqrt(person["bbox"][2] * person["bbox"][3])
        for j, kp in enumerate(predicted):
            err = np.linalg.norm(kp[idx, :2] - gt, axis=1).mean() / size
            pairs.append((err, i, j))
    used_gt, used_pred, found = set(), set(), 0
    for err, i, j in sorted(pairs):
        if err < max_error and i not in used_gt and j not in used_pred:
            used_gt.add(i)
            used_pred.add(j)
            found += 1
    return found


# -- the live engine (tests/test_live*.py) --------------------------------------------------
@pytest.fixture(scope="module")
def replay():
    """The street clip replayed as a live stream (live_helpers.open_replay)."""
    from live_helpers import open_replay

    server = open_replay()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def engine(replay, model_path):
    """A live engine on the replayed stream, once its first frames are in."""
    from live_helpers import open_engine, wait_for

    with open_engine(replay.url, model_path) as live:
        wait_for(lambda: live.state == "ok" and live.frames > 0, 30, "first frames")
        yield live
