"""The model registry: known BlazePose files, their pinned digests, and where they resolve from.

A model name resolves, in order, from: an explicit file path; the folders in
``EDGEPOSE_MODEL_PATH`` (``os.pathsep``-separated); the user cache (``EDGEPOSE_CACHE``,
default ``~/.cache/edgepose``); the installed ``mediapipe`` wheel; Google's npm tarball
``@mediapipe/pose`` (``NPM_POSE``) when a copy lies in one of those folders; and, unless
``EDGEPOSE_OFFLINE=1``, a download: the published file URLs (a CDN), then that tarball from
the npm registry, whose four BlazePose files all go into the cache. Everything is checked
against pinned SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

from edgepose import downloads
from edgepose.downloads import Archive, Member
from edgepose.errors import ModelError
from edgepose.fileio import not_a_file

log = logging.getLogger(__name__)

_NPM = "https://cdn.jsdelivr.net/npm/@mediapipe/pose@0.5.1675469404/"
_ASSETS = "https://storage.googleapis.com/mediapipe-assets/"

# Google's own publication of the BlazePose files on the npm registry: a versioned,
# immutable tarball (`npm pack @mediapipe/pose@0.5.1675469404`). It holds the landmark
# models as plain files; the detector is the whole of pose_solution_packed_assets.data
# (its loader names it .../pose_detection/pose_detection.tflite, bytes 0 to 2,962,288).
NPM_POSE = Archive(
    "@mediapipe/pose 0.5.1675469404 (npm registry)",
    "https://registry.npmjs.org/@mediapipe/pose/-/pose-0.5.1675469404.tgz",
    "mediapipe-pose-0.5.1675469404.tgz", 40_985_403,
    "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84")
# The npm copy of the detector: other metadata than the wheel's (so another digest), the
# same weights: its outputs on a test photo equal the wheel detector's (max difference 0.0).
_NPM_DETECTOR_SHA256 = "a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85"


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    filename: str
    sha256: str
    role: str  # "detector" or "landmark"
    wheel_path: str | None  # path inside the mediapipe package, when the wheel ships it
    npm: Member  # where it is inside NPM_POSE
    also_sha256: tuple[str, ...] = ()  # other published copies with identical outputs

    @property
    def digests(self) -> tuple[str, ...]:
        """Every digest accepted for this model: the pinned one first."""
        return (self.sha256, *self.also_sha256)

    @property
    def urls(self) -> tuple[str, ...]:
        # The npm package @mediapipe/pose as a CDN serves its files, then the MediaPipe
        # asset bucket; both checked against sha256. (NPM_POSE is tried after them.)
        return (_NPM + self.filename, _ASSETS + self.filename)


KNOWN_MODELS = {
    m.name: m
    for m in (
        KnownModel("detector", "pose_detection.tflite",
                   "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
                   "detector", "modules/pose_detection/pose_detection.tflite",
                   Member("package/pose_solution_packed_assets.data", _NPM_DETECTOR_SHA256,
                          offset=0, size=2_962_288),
                   also_sha256=(_NPM_DETECTOR_SHA256,)),
        KnownModel("lite", "pose_landmark_lite.tflite",
                   "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61",
                   "landmark", None,
                   Member("package/pose_landmark_lite.tflite",
                          "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61")),
        KnownModel("full", "pose_landmark_full.tflite",
                   "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
                   "landmark", "modules/pose_landmark/pose_landmark_full.tflite",
                   Member("package/pose_landmark_full.tflite",
                          "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f")),
        KnownModel("heavy", "pose_landmark_heavy.tflite",
                   "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
                   "landmark", None,
                   Member("package/pose_landmark_heavy.tflite",
                          "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe")),
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
    """The first local copy whose digest is one the model accepts, or None."""
    for source, path in candidates(model):
        if not path.is_file():
            continue
        if sha256_of(path) in model.digests:
            return source, path
        log.warning("%s (%s) does not match the pinned sha256 of %s; ignoring it",
                    path, source, model.name)
    return None


def resolve(name_or_path: str | os.PathLike, role: str, download: bool = True,
            also: tuple[str, ...] = ()) -> str:
    """Path of a model file, given a known name (``full``) or a file path.

    ``role`` is ``"detector"`` or ``"landmark"``; a known name of the other role is an error.
    ``also``: the other names the caller takes (the registry's), listed in the error for
    an unknown name.
    """
    text = os.fspath(name_or_path)
    model = KNOWN_MODELS.get(text)
    if model is None:
        if os.path.lexists(text) or os.sep in text or text.endswith((".tflite", ".onnx", ".task")):
            if not os.path.isfile(text):
                raise ModelError(f"model file {text} {not_a_file(text)}" + _bare_name_hint(text))
            return text
        names = [n for n, m in KNOWN_MODELS.items() if m.role == role] + list(also)
        raise ModelError(f"unknown {role} model {text!r}: give one of {', '.join(names)}, "
                         "or a model file (.tflite, .onnx, .task)")
    if model.role != role:
        raise ModelError(f"{text!r} is a {model.role} model, not a {role} model")
    found = find_local(model)
    if found:
        return str(found[1])
    return str(fetch(model, download=download))


def fetch(model: KnownModel, timeout: float = 30.0, download: bool = True) -> Path:
    """Put ``model`` into the cache: out of a copy of Google's npm tarball (NPM_POSE) in an
    EDGEPOSE_MODEL_PATH folder or the cache; else, when ``download`` and not offline, from
    its file URLs, else from that tarball on the npm registry (one 41 MB download gives all
    four BlazePose files). Each file is checked, then moved into place."""
    tarball = downloads.find_archive(NPM_POSE, _model_folders())
    if tarball is not None:
        return _from_npm_package(model, tarball)
    if not download or offline():
        raise ModelError(_missing_message(model, "downloads are turned off (EDGEPOSE_OFFLINE)"))
    dest = cache_dir() / model.filename
    errors = []
    for url in model.urls:
        try:
            return downloads.download(url, dest, model.sha256, label=model.filename, timeout=timeout)
        except downloads.DownloadError as exc:
            errors.append(str(exc))
    try:
        return _from_npm_package(model, None, timeout)
    except ModelError as exc:
        errors.append(str(exc))
    raise ModelError(_missing_message(model, "the download failed: " + "; ".join(errors)))


def _model_folders() -> list[Path]:
    """Where a copy of NPM_POSE may lie: the EDGEPOSE_MODEL_PATH folders, then the cache."""
    folders = [Path(f).expanduser()
               for f in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep))]
    return folders + [cache_dir()]


def _from_npm_package(model: KnownModel, tarball: Path | None, timeout: float = 30.0) -> Path:
    """Every BlazePose file not yet in the cache, out of NPM_POSE (``tarball``, a local copy,
    or downloaded when None); the path of ``model``'s."""
    cache = cache_dir()
    wanted = {cache / m.filename: m.npm for m in KNOWN_MODELS.values() if find_local(m) is None}
    wanted.setdefault(cache / model.filename, model.npm)
    log.info("%s: taking %s from %s", model.name, ", ".join(p.name for p in wanted), NPM_POSE.name)
    try:
        downloads.fetch_members(NPM_POSE, wanted, cache, local=tarball, timeout=timeout)
    except downloads.DownloadError as exc:
        raise ModelError(f"{NPM_POSE.url}: {exc}") from None
    except OSError as exc:
        raise ModelError(f"could not write {model.filename} into {cache} ({exc.strerror or exc}): "
                         "set EDGEPOSE_CACHE to a writable folder") from None
    return cache / model.filename


def download_checked(urls, dest: Path, sha256: str, name: str, timeout: float, looked_in: str = "") -> Path:
    """Fetch the first of ``urls`` whose bytes match ``sha256`` into ``dest`` (atomically).
    ``looked_in``: where it was looked for, for the error when it cannot be fetched."""
    where = f" (looked in {looked_in})" if looked_in else ""
    if offline():
        raise ModelError(f"{name}: {dest.name} is not on this machine{where} and downloads are "
                         f"turned off (EDGEPOSE_OFFLINE); copy it into {dest.parent}")
    errors = []
    for url in urls:
        try:
            return downloads.download(url, dest, sha256, label=dest.name, timeout=timeout)
        except downloads.DownloadError as exc:
            errors.append(str(exc))
    raise ModelError(f"{name}: {dest.name} is not on this machine{where} and the download failed "
                     f"(offline?): {'; '.join(errors)}. Copy it into {dest.parent}")


def model_path_text() -> str:
    """EDGEPOSE_MODEL_PATH's folders for a message, or "not set"."""
    folders = [str(Path(f).expanduser())
               for f in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep))]
    return ", ".join(folders) if folders else "not set"


def _bare_name_hint(text: str) -> str:
    """For a bare file name: where it was looked for, and that EDGEPOSE_MODEL_PATH is not."""
    if os.path.dirname(text) or os.path.lexists(text):
        return ""
    known = next((m.name for m in KNOWN_MODELS.values() if m.filename == text), None)
    return (f" in the current folder ({os.getcwd()}); a file name is not looked up in "
            f"EDGEPOSE_MODEL_PATH ({model_path_text()}): give the file's path"
            + (f", or the model name {known!r}" if known else ""))


def _missing_message(model: KnownModel, why: str) -> str:
    looked = [f"EDGEPOSE_MODEL_PATH ({model_path_text()})", f"the cache ({cache_dir()})"]
    if model.wheel_path:
        wheel = mediapipe_dir()
        looked.append(f"the mediapipe wheel ({wheel or 'not installed'})")
    return (
        f"model {model.name!r} ({model.filename}, sha256 {model.sha256}) is not on this machine "
        f"(looked in {'; '.join(looked)}) and {why}. Copy the file into {cache_dir()}, or set "
        f"EDGEPOSE_MODEL_PATH to its folder, "
        f"or pass its path with --model"
        + (", or pip install 'edgepose[mediapipe-legacy]', whose wheel ships it" if model.wheel_path else "")
        + f". Without a network here: on a machine that has one, `npm pack "
        f"@mediapipe/pose@0.5.1675469404` (or download {NPM_POSE.url}) and copy "
        f"{NPM_POSE.filename} into a folder of EDGEPOSE_MODEL_PATH: edgepose takes every "
        "BlazePose file from it"
    )
