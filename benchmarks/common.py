"""What the benchmark scripts share: where the repository, the workspace's shared data and
the results are, the models they load, the command line and machine facts they record,
and how a result file is written. Stdlib only at import (benchmarks/emulated_pi.py runs
this folder's scripts under an emulated interpreter too).

    from common import RESULTS, STREET, command, machine, use_shared_models, write_json
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MODELS = SHARED / "models"
IMAGES = SHARED / "images"
VIDEOS = SHARED / "video"
STREET = VIDEOS / "street_1280x720_50fps.avi"
RESULTS = ROOT / "benchmarks" / "results"

# The checkout's edgepose/ and converters/ (not another installed copy) are what is measured.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))


def use_shared_models() -> None:
    """Load models from ../shared/data/models, and never download, when that folder is here
    (a variable already set wins)."""
    if MODELS.is_dir():
        os.environ.setdefault("EDGEPOSE_MODEL_PATH", str(MODELS))
        os.environ.setdefault("EDGEPOSE_OFFLINE", "1")


def require_shared(script: str, *paths: Path) -> None:
    """Exit with one line naming the first of ``paths`` (default: the shared data folder)
    that is absent."""
    missing = [p for p in (paths or (SHARED,)) if not p.exists()]
    if missing:
        sys.exit(f"{script}: {missing[0]} is absent: this benchmark needs the workspace's shared data")


def command() -> str:
    """How this script was run, relative to the repository: 'python benchmarks/x.py --flag'."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def machine() -> dict:
    """CPU, cores, OS, Python, library versions and thermal state (edgepose.profiler)."""
    from edgepose.profiler import device_facts

    return device_facts()


def write_json(path: Path, data: dict, indent: int = 2) -> Path:
    """Write ``data`` as JSON (folders made as needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent) + "\n")
    return path
