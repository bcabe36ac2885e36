"""``edgepose convert tfjs``: TF.js graph models (known names or model.json paths) ->
SavedModel, TFLite float32 / float16 and ONNX files, each verified against TensorFlow, then
one table of every file and a plain verdict (:mod:`converters.outcome`, which also says
what the exit code means)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from converters.tools import converted_dir
from edgepose.errors import InputError

log = logging.getLogger(__name__)


def cmd_tfjs(args) -> int:
    from converters import outcome, tfjs_export
    from edgepose import registry

    names = list(registry.CONVERTIBLE_MODELS) if args.model == ["all"] else args.model
    shape = parse_shape(args.input_shape) if args.input_shape else None
    variants = tuple(args.variant or ("float32", "float16", "onnx"))
    images = verification_photos(args.images, variants)
    results = []
    for name in names:
        source, known = _tfjs_source(name)
        label = known.name if known and name == known.name else Path(name).stem
        t0 = time.perf_counter()
        result = tfjs_export.convert(source, args.out or converted_dir(), name=label, variants=variants,
                                     input_shape=shape or (known.input_shape if known else None),
                                     images=images, task=known.task if known else None)
        by_name = known is not None and label == known.name and args.out in (None, converted_dir())
        runs_as = f"--{'detector' if known.role == 'detector' else 'model'} {label}" if by_name else None
        results += outcome.tfjs_results(label, result.files, result.reports, args.variant, runs_as)
        print(f"{label}: wrote {', '.join(p.name for p in result.files.values())} "
              f"({time.perf_counter() - t0:.0f} s, verified on {len(images[:16])} photo(s))", flush=True)
    return outcome.print_outcome(results)


def verification_photos(images: Path | None, variants: tuple[str, ...]) -> list[Path]:
    """The photos to verify each file on (``--images``: a folder or one photo). InputError
    without any, or when ONNX is asked for and tf2onnx is missing."""
    from converters import calibration, tools

    if images is None:
        raise InputError("no photo to verify on: the demo photo is not on this machine; give "
                         "--images DIR or --images FILE (photos of people)")
    photos = [images] if images.is_file() else calibration.image_files(images)
    if "onnx" in variants and not tools.available("tf2onnx"):
        raise InputError(tools.install_hint("tf2onnx") + " (or leave out --variant onnx)")
    return photos


def _tfjs_source(name: str):
    """(model.json path, the known model it is or None) for a name or a path. A path whose
    sha256 is a known model's is that model: it gets that model's task and input shape,
    so that what it becomes runs with no other flag."""
    from edgepose import registry

    known = registry.CONVERTIBLE_MODELS.get(name)
    if known is not None:
        return registry.find_convertible_source(known) or registry.fetch_convertible_source(known), known
    if not name.endswith(".json"):
        raise InputError(f"unknown TF.js model {name!r}: give a model.json path or one of "
                         f"{', '.join(registry.CONVERTIBLE_MODELS)}")
    path = Path(name)
    return path, (known_by_sha256(path, registry.CONVERTIBLE_MODELS.values()) if path.is_file() else None)


def known_by_sha256(path: Path, known):
    """The model of ``known`` whose pinned sha256 the file at ``path`` has (logged), else None."""
    from edgepose import models

    digest = models.sha256_of(path)
    for model in known:
        if model.sha256 == digest:
            log.info("%s is %s (same sha256): converted as that model", path, model.name)
            return model
    return None


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise InputError(f"--input-shape must be comma-separated sizes like 1,256,256,3, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise InputError(f"--input-shape must be positive sizes, got {text!r}")
    return shape
