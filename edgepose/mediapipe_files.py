"""The model files MediaPipe's engines load, found or made by edgepose and never
downloaded by MediaPipe: the legacy graph's landmark model copied into the mediapipe
package, and a ``.task`` bundle built from our files and cached."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from edgepose import models
from edgepose.errors import BackendError, ModelError
from edgepose.fileio import atomic_write

log = logging.getLogger(__name__)

TASK_SUFFIX = ".task"


def legacy_model_file(name: str, mediapipe_dir: Path | None = None) -> Path:
    """The landmark model the legacy graph loads for ``name`` (lite, full, heavy), inside
    the mediapipe package. The wheel ships only ``full``; MediaPipe would download the
    others on first use, so a missing one is copied there from edgepose's model resolver
    (``EDGEPOSE_MODEL_PATH``, the cache) instead, and never downloaded."""
    mediapipe_dir = mediapipe_dir or models.mediapipe_dir()
    if mediapipe_dir is None:
        raise BackendError("backend 'mediapipe' needs MediaPipe: pip install 'edgepose[mediapipe-legacy]'")
    known = models.KNOWN_MODELS[name]
    target = Path(mediapipe_dir) / "modules" / "pose_landmark" / known.filename
    if target.is_file():
        if models.sha256_of(target) != known.sha256:
            log.warning("%s does not match the pinned sha256 of %s; MediaPipe will run it anyway",
                        target, name)
        return target
    source = models.resolve(name, "landmark", download=False)
    try:
        if not target.parent.is_dir():  # not a mediapipe package: never make one
            raise FileNotFoundError(2, "no such folder", str(target.parent))
        with atomic_write(target) as tmp:
            shutil.copyfile(source, tmp)
    except OSError as exc:
        raise ModelError(
            f"backend 'mediapipe' loads {known.filename} from inside the mediapipe package "
            f"({target.parent}), which the wheel does not ship and which edgepose could not "
            f"write ({exc.strerror or exc}). Copy {source} there, or use backend "
            "'mediapipe-tasks', which reads models from anywhere") from None
    log.info("copied %s into %s for the legacy MediaPipe graph", source, target.parent)
    return target


def cached_task_bundle(detector: str | os.PathLike, landmark: str | os.PathLike) -> Path:
    """A ``.task`` bundle of these two model files, built once and kept in the user cache
    under a name made of both files' digests."""
    from edgepose.task_bundle import build_task_bundle

    key = f"{models.sha256_of(detector)[:16]}-{models.sha256_of(landmark)[:16]}"
    path = models.cache_dir() / "task" / f"pose_landmarker-{key}{TASK_SUFFIX}"
    if path.is_file():
        return path
    try:
        return build_task_bundle(detector, landmark, path)
    except OSError as exc:
        raise ModelError(
            f"could not write the MediaPipe .task bundle {path} ({exc.strerror or exc}): set "
            "EDGEPOSE_CACHE to a writable folder, or build one with `edgepose convert "
            "task-bundle --out FILE.task` and pass it as the model") from None
