"""``edgepose bench``: the latency matrix of :mod:`edgepose.bench` on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.cli.options import HelpFormatter
from edgepose.errors import InputError
from edgepose.fileio import check_writable
from edgepose.options import DECODERS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="latency of models x detectors x backends x threads on fixed frames",
        formatter_class=HelpFormatter,
        description="Time process() for every combination of --models, --detectors, "
                    "--backends and --threads on the same frames: warm-up runs, then timed "
                    "runs (count, mean, std, min, p50, p90, p99), printed as a Markdown "
                    "table; --out DIR also writes bench.json (schema edgepose.bench/1), "
                    "bench.md and bench.png.")
    p.add_argument("source", nargs="?", help="video, folder or image (default: the demo photo)")
    p.add_argument("--models", default="full", help="comma-separated: lite,full,heavy or paths")
    p.add_argument("--backends", default="tflite", help="comma-separated backends")
    p.add_argument("--threads", default="2", help="comma-separated thread counts, e.g. 1,2,4")
    p.add_argument("--detectors", default="blazepose",
                   help="comma-separated person detectors, e.g. blazepose,centernet")
    p.add_argument("--max-people", type=int, default=1, help="most people per frame")
    p.add_argument("--decoder", choices=DECODERS, help="--models are your own model files, "
                   "decoded as heatmap, simcc or yolo-pose")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    p.add_argument("--runs", type=int, default=100, help="timed runs per configuration")
    p.add_argument("--max-frames", type=int, default=300, help="frames read from the source")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write bench.json, bench.md and bench.png into DIR (default: only "
                        "print the table)")
    p.set_defaults(func=cmd_bench)
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    from edgepose.bench import bench, markdown_table, write_report
    from edgepose.sources import demo_image

    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        raise InputError(f"--threads must be comma-separated integers, got {args.threads!r}") from None
    if min(args.runs, args.max_frames, args.max_people, *threads) < 1 or args.warmup < 0:
        raise InputError("--runs, --max-frames, --threads and --max-people must be >= 1 and "
                         "--warmup >= 0")
    if args.out:
        check_writable(args.out, args.out)
    source = args.source
    if source is None:
        demo = demo_image(download=True)
        if demo is None:
            raise InputError("give a SOURCE: the demo photo is not here and could not be fetched")
        source = str(demo)
    report, samples = bench(source, args.models.split(","), args.backends.split(","), threads,
                            warmup=args.warmup, runs=args.runs, max_frames=args.max_frames,
                            command="edgepose " + " ".join(sys.argv[1:]),
                            detectors=args.detectors.split(","), max_people=args.max_people,
                            decoder=args.decoder)
    print(markdown_table(report), end="")
    if args.out:
        print("wrote: " + ", ".join(map(str, write_report(report, samples, args.out))))
    return 0
