"""The model registry: known BlazePose files, their pinned digests, and where they resolve from.

A model name resolves, in order, from: an explicit file path; the folders in
``EDGEPOSE_MODEL_PATH`` (``os.pathsep``-separated); the user cache (``EDGEPOSE_CACHE``,
default ``~/.cache/edgepose``); the installed ``mediapipe`` wheel; a download from the
published URLs, verified against the pinned SHA-256 (unless ``EDGEPOSE_OFFLINE=1``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from edgepose.errors import ModelError

log = logging.getLogger(__name__)

_NPM = "https://cdn.jsdelivr.net/npm/@mediapipe/pose@0.5.1675469404/"
_ASSETS = "https://storage.googleapis.com/mediapipe-assets/"


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    filename: str
    sha256: str
    role: str  # "detector" or "landmark"
    wheel_path: str | None  # path inside the mediapipe package, when the wheel ships it

    @property
    def urls(self) -> tuple[str, ...]:
        # The npm package @mediapipe/pose is Google's own publication of these exact bytes;
        # the MediaPipe asset bucket is the second source. Both are checked against sha256.
        return (_NPM + self.filename, _ASSETS + self.filename)


KNOWN_MODELS = {
    m.name: m
    for m in (
        KnownModel("detector", "pose_detection.tflite",
                   "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
                   "detector", "modules/pose_detection/pose_detection.tflite"),
        KnownModel("lite", "pose_landmark_lite.tflite",
                   "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
                   "landmark", None),
        KnownModel("full", "pose_landmark_full.tflite",
                   "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
                   "landmark", "modules/pose_landmark/pose_landmark_full.tflite"),
        KnownModel("heavy", "pose_landmark_heavy.tflite",
                   "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
                   "landmark", None),
    )
}


def cache_dir() -> Path:
    if os.environ.get("EDGEPOSE_CACHE"):
        return Path(os.environ["EDGEPOSE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgepose"


def offline() -> bool:
    return os.environ.get("EDGEPOSE_OFFLINE", "").lower() not in ("", "0", "false", "no")


def sha256_of(path: str | Path) -> str:
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mediapipe_dir() -> Path | None:
    # find_spec on a top-level package locates it without importing it.
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def candidates(model: KnownModel) -> list[tuple[str, Path]]:
    """(source, path) places where ``model`` may already be on this machine, in order."""
    out = []
    for folder in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep)):
        out.append(("EDGEPOSE_MODEL_PATH", Path(folder).expanduser() / model.filename))
    out.append(("cache", cache_dir() / model.filename))
    mp_dir = _mediapipe_dir()
    if mp_dir is not None and model.wheel_path:
        out.append(("mediapipe wheel", mp_dir / model.wheel_path))
    return out


def find_local(model: KnownModel) -> tuple[str, Path] | None:
    """The first local copy whose digest matches the pin, or None."""
    for source, path in candidates(model):
        if not path.is_file():
            continue
        if sha256_of(path) == model.sha256:
            return source, path
        log.warning("%s (%s) does not match the pinned sha256 of %s; ignoring it",
                    path, source, model.name)
    return None


def resolve(name_or_path: str | os.PathLike, role: str, download: bool = True) -> str:
    """Path of a model file, given a known name (``full``) or a file path.

    ``role`` is ``"detector"`` or ``"landmark"``; a known name of the other role is an error.
    """
    text = os.fspath(name_or_path)
    model = KNOWN_MODELS.get(text)
    if model is None:
        if os.path.exists(text) or os.sep in text or text.endswith(".tflite"):
            if not os.path.isfile(text):
                raise ModelError(f"model file {text} does not exist")
            return text
        names = ", ".join(n for n, m in KNOWN_MODELS.items() if m.role == role)
        raise ModelError(f"unknown {role} model {text!r}: give one of {names}, or a .tflite path")
    if model.role != role:
        raise ModelError(f"{text!r} is a {model.role} model, not a {role} model")
    found = find_local(model)
    if found:
        return str(found[1])
    if not download or offline():
        raise ModelError(_missing_message(model, "downloads are turned off (EDGEPOSE_OFFLINE)"))
    return str(fetch(model))


def fetch(model: KnownModel, timeout: float = 30.0) -> Path:
    """Download ``model`` into the cache, verify its sha256, then move it into place."""
    dest = cache_dir() / model.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in model.urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-", suffix=".part")
        try:
            log.info("downloading %s", url)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
            digest = sha256_of(tmp)
            if digest != model.sha256:
                errors.append(f"{url}: sha256 {digest[:12]}... is not the pinned {model.sha256[:12]}...")
                continue
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise ModelError(_missing_message(model, "download failed (offline?): " + "; ".join(errors)))


def _missing_message(model: KnownModel, why: str) -> str:
    return (
        f"model {model.name!r} ({model.filename}, sha256 {model.sha256}) is not on this machine "
        f"and {why}. Copy the file into {cache_dir()}, or set EDGEPOSE_MODEL_PATH to its folder, "
        f"or pass its path with --model"
        + (", or pip install 'edgepose[mediapipe]', whose wheel ships it" if model.wheel_path else "")
    )


def status() -> list[dict]:
    """One row per known model: name, role, file, sha256, and where it is found (or None)."""
    rows = []
    for model in KNOWN_MODELS.values():
        found = find_local(model)
        rows.append({
            "name": model.name,
            "role": model.role,
            "file": model.filename,
            "sha256": model.sha256,
            "source": found[0] if found else None,
            "path": str(found[1]) if found else None,
        })
    return rows
