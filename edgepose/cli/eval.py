"""``edgepose eval``: accuracy of a pipeline on a COCO keypoint or MPII annotation file
(:mod:`edgepose.evaluation`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgepose.cli.options import VIDEO_ONLY, HelpFormatter, add_option_flags, options_from_args
from edgepose.errors import InputError
from edgepose.fileio import atomic_write, check_writable, same_file


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``edgepose eval`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "eval", help="accuracy on annotated images (OKS AP/AR, PCK, PCKh)",
        formatter_class=HelpFormatter,
        description="Run the pipeline on every image of a COCO keypoint or MPII annotation "
                    "file and report OKS AP/AR (pycocotools), PCK@0.2 of the torso, PCKh@0.5 "
                    "and per-joint errors. Joints are matched to BlazePose by name. Every "
                    "image runs on its own (image mode): no tracking, no smoothing.")
    p.add_argument("--annotations", type=Path, required=True, metavar="FILE.json",
                   help="COCO keypoint json or MPII json list")
    p.add_argument("--images", type=Path, required=True, metavar="DIR",
                   help="folder the annotation's image file names are relative to")
    p.add_argument("--out", type=Path, metavar="RESULT.json", help="write the figures as JSON")
    add_option_flags(p, skip_groups=("smoothing",), skip_fields=VIDEO_ONLY)
    p.set_defaults(func=cmd_eval)
    return p


def pipeline_facts(pipe) -> dict:
    """Model, runtime and person detector of a pipeline, for results."""
    d, o = pipe.describe(), pipe.options
    return {"model": d["model_file"], "backend": d["runtime"], "detector": d["detector"],
            "max_people": o.max_people, "threads": o.threads}


def cmd_eval(args: argparse.Namespace) -> int:
    from edgepose import Pipeline
    from edgepose.evaluation import format_summary, image_paths, load_dataset, measured_by, predict, score
    from edgepose.quiet import native_stderr_quiet

    dataset = load_dataset(args.annotations)
    image_paths(dataset, args.images)  # fail on a missing image before loading models
    if args.out:
        if args.out.is_dir():
            raise InputError(f"--out {args.out} is a folder: give a file name, such as "
                             f"{args.out / 'eval.json'}")
        if same_file(args.out, args.annotations):
            raise InputError(f"--out {args.out} is the annotations file: writing it would destroy "
                             "it; give another path")
        check_writable(args.out.parent, args.out)
    opts = options_from_args(args, static_image_mode=True)
    with native_stderr_quiet(not getattr(args, "verbose", False)):
        pipe = Pipeline(opts)
    t0 = time.perf_counter()
    with pipe:
        predictions = predict(pipe, dataset, args.images)
    result = {**score(dataset, predictions, args.annotations, measured_by(pipe)), **pipeline_facts(pipe),
              "images_dir": str(args.images), "wall_s": round(time.perf_counter() - t0, 3)}
    print(format_summary(result))
    if args.out:
        try:
            with atomic_write(args.out) as tmp:
                tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"could not write {args.out}: {exc.strerror}") from None
        print(f"wrote: {args.out}")
    return 0
