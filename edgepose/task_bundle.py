"""MediaPipe Tasks ``.task`` bundles for PoseLandmarker, built from our own model files.

A pose ``.task`` file is an uncompressed zip of two TFLite models,
``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``. MediaPipe Tasks reads
each model's input normalisation from its TFLite metadata, so both must carry it:

- detector: RGB float in [-1, 1], mean 127.5 / std 127.5 (Google's detector file already
  carries this metadata; it is checked and kept byte for byte);
- landmark model: RGB float in [0, 1], mean 0 / std 255 (the published files carry no
  metadata; it is written here with MediaPipe's own metadata writer).

Building needs only local files, so PoseLandmarker works offline and with converted
models. The metadata is written from the flatbuffer schemas (``edgepose.mediapipe_metadata``:
MediaPipe's own metadata tools do not import on releases from 0.10.30 on), so any MediaPipe
with the Tasks API will do (``pip install 'edgepose[mediapipe]'``).

    edgepose convert task-bundle --detector detector --model full --out pose_full.task

This is runtime code (the mediapipe-tasks engine builds its bundle on the fly); the
``convert task-bundle`` command only calls :func:`build_task_bundle`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zipfile
from pathlib import Path

from edgepose import mediapipe_metadata
from edgepose.errors import ModelError
from edgepose.fileio import atomic_write

log = logging.getLogger(__name__)

__all__ = ["DETECTOR_MEMBER", "LANDMARK_MEMBER", "MEMBERS", "MemberSpec", "build_task_bundle",
           "check_task_bundle", "read_normalisation", "with_normalisation"]

DETECTOR_MEMBER = "pose_detector.tflite"
LANDMARK_MEMBER = "pose_landmarks_detector.tflite"


@dataclasses.dataclass(frozen=True)
class MemberSpec:
    """What one bundle member must be: its input shape and input normalisation."""

    member: str
    role: str  # "detector" or "landmark", as in edgepose.models
    input_shape: tuple[int, ...]
    mean: float
    std: float
    title: str


MEMBERS = {
    DETECTOR_MEMBER: MemberSpec(DETECTOR_MEMBER, "detector", (1, 224, 224, 3), 127.5, 127.5,
                                "BlazePose person detector"),
    LANDMARK_MEMBER: MemberSpec(LANDMARK_MEMBER, "landmark", (1, 256, 256, 3), 0.0, 255.0,
                                "BlazePose GHUM 3D landmark model"),
}


def read_normalisation(model: bytes) -> tuple[list[float], list[float]] | None:
    """(mean, std) of the first input's NormalizationOptions in a TFLite model's metadata,
    or None when the model has no metadata or no normalisation in it."""
    return mediapipe_metadata.read_normalisation(model)


def with_normalisation(model: bytes, spec: MemberSpec, name: str) -> bytes:
    """``model`` with input-normalisation metadata for ``spec``.

    A model that already carries the right normalisation is returned unchanged; one that
    carries a different normalisation is an error (it is not silently rewritten).
    """
    graph = mediapipe_metadata.load_model(model, name)
    shape = mediapipe_metadata.input_shape(graph)
    if shape != spec.input_shape:
        raise ModelError(f"{name} does not look like a {spec.role} model: input must be "
                         f"{list(spec.input_shape)}, got {list(shape)}")
    found = read_normalisation(model)
    if found is not None:
        mean, std = found
        if _same_values(mean, spec.mean) and _same_values(std, spec.std):
            return model
        raise ModelError(f"{name} carries input normalisation mean {mean} / std {std}, but a "
                         f"BlazePose {spec.role} needs mean {spec.mean} / std {spec.std}")
    # Outputs stay plain feature tensors: MediaPipe's pose graphs find them by index.
    return mediapipe_metadata.with_image_metadata(graph, spec.title, f"{spec.member} written by edgepose",
                                                  spec.mean, spec.std)


def _same_values(values: list[float], want: float) -> bool:
    return bool(values) and all(abs(v - want) < 1e-6 for v in values)


def build_task_bundle(detector: str | os.PathLike, landmark: str | os.PathLike,
                      out: str | os.PathLike) -> Path:
    """Write a PoseLandmarker ``.task`` bundle of ``detector`` and ``landmark`` to ``out``.

    The zip is written next to ``out`` under a temporary name, checked, then renamed, so
    ``out`` is never left half written. Returns ``out`` as a Path.
    """
    out = Path(out)
    sources = {DETECTOR_MEMBER: Path(detector), LANDMARK_MEMBER: Path(landmark)}
    members = {}
    for member, source in sources.items():
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read {source}: {exc.strerror}") from None
        members[member] = with_normalisation(data, MEMBERS[member], str(source))
    with atomic_write(out) as tmp:
        # members uncompressed and 4-byte aligned, as MediaPipe's writer makes them, so
        # that the Tasks runtime can map them straight from the file
        mediapipe_metadata.write_bundle(members, tmp)
        check_task_bundle(tmp)
    log.info("wrote %s (%s + %s)", out, sources[DETECTOR_MEMBER], sources[LANDMARK_MEMBER])
    return out


def check_task_bundle(path: str | os.PathLike) -> None:
    """Raise ModelError unless ``path`` is a PoseLandmarker bundle MediaPipe can load: a zip
    holding both members, stored uncompressed, each with input normalisation metadata."""
    if not os.path.isfile(path):
        raise ModelError(f"task bundle {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a .task bundle (not a zip file)")
    with zipfile.ZipFile(path) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        missing = [m for m in MEMBERS if m not in infos]
        if missing:
            raise ModelError(
                f"{path} is not a pose landmarker bundle: it lacks {', '.join(missing)} "
                f"(it holds {', '.join(sorted(infos)) or 'nothing'}); build one with "
                "`edgepose convert task-bundle`")
        for member in MEMBERS:
            if infos[member].compress_type != zipfile.ZIP_STORED:
                raise ModelError(f"{path}: {member} is compressed; MediaPipe reads only "
                                 "uncompressed (stored) members")
            if read_normalisation(zf.read(member)) is None:
                raise ModelError(
                    f"{path}: {member} has no input normalisation metadata, which MediaPipe "
                    "Tasks needs; rebuild the bundle with `edgepose convert task-bundle`")
