"""``edgepose batch``: every video of an archive, one per worker at a time, on every core
of this machine or on a Ray cluster; a JSON Lines (or Parquet) file per video, a manifest,
resume, progress and a summary (docs/batch.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from edgepose.cli.options import HelpFormatter, add_option_flags, options_from_args
from edgepose.errors import InputError
from edgepose.stopping import StopSignals

EXIT_ERROR = 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    batch = subparsers.add_parser(
        "batch", help="find poses in every video of an archive, on every core or a Ray cluster",
        formatter_class=HelpFormatter,
        description="Find poses in every video INPUT names, one video per worker at a time, "
                    "into one file per video in DIR (what `edgepose run VIDEO --json` writes) "
                    "and DIR/manifest.jsonl. Run the same command again to do what is left: "
                    "videos done are skipped, failed ones tried again.")
    batch.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="video file, folder (searched recursively) or .txt list of paths")
    group = batch.add_argument_group("batch")
    group.add_argument("--out", required=True, metavar="DIR",
                       help="output folder: one file per video and manifest.jsonl")
    group.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl",
                       help="per video: JSON Lines, one object per frame, or Parquet, one row "
                            "per pose (pip install 'edgepose[parquet]')")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: worker processes on this machine; ray: a Ray cluster "
                            "(pip install 'edgepose[ray]')")
    group.add_argument("--workers", type=int, metavar="N",
                       help="workers (Ray actors), each holding one pipeline; default one per "
                            "CPU, and --threads the CPUs each worker's share")
    group.add_argument("--address", metavar="ADDR",
                       help="with --engine ray: the cluster to join (HOST:PORT of `ray start "
                            "--head`); default a new Ray instance on this machine")
    add_option_flags(batch)
    batch.set_defaults(func=cmd_batch)
    return batch


class _Progress:
    """Two bars on stderr (videos, frames), shown only on a terminal."""

    def __init__(self) -> None:
        self.videos = self.frames = None
        self.summary = None  # once the workers start: what this run did, also on a stop

    def start(self, summary) -> None:
        from tqdm import tqdm

        self.summary = summary
        print(start_line(summary), file=sys.stderr)
        todo = summary.videos - summary.skipped
        self.videos = tqdm(total=todo, unit="video", file=sys.stderr, disable=None, position=0)
        self.frames = tqdm(unit="frame", file=sys.stderr, disable=None, position=1)

    def record(self, record: dict) -> None:
        if self.videos is not None:
            self.videos.update(1)

    def add_frames(self, n: int) -> None:
        if self.frames is not None:
            self.frames.update(n)

    def close(self) -> None:
        for bar in (self.frames, self.videos):
            if bar is not None:
                bar.close()


def cmd_batch(args: argparse.Namespace) -> int:
    from edgepose.batch.manifest import MANIFEST
    from edgepose.batch.runner import run_batch

    if args.address and args.engine != "ray":
        raise InputError("--address joins a Ray cluster: add --engine ray")
    options = options_from_args(args)
    progress = _Progress()
    # SIGTERM, Ctrl-C and SIGHUP (as edgepose run) raise KeyboardInterrupt wherever the
    # parent waits on its workers; the workers are stopped and what they finished recorded
    with StopSignals(interrupt=True) as stop:
        try:
            summary = run_batch(args.inputs, args.out, options, fmt=args.format, engine=args.engine,
                                workers=args.workers, address=args.address, verbose=args.verbose,
                                on_start=progress.start, on_record=progress.record,
                                on_frames=progress.add_frames)
        except KeyboardInterrupt:
            progress.close()
            if progress.summary is not None:
                print_summary(sys.stdout, progress.summary)
            print(f"edgepose: stopped; every video finished is in {Path(args.out) / MANIFEST}: "
                  "run the same command again to do the rest", file=sys.stderr)
            return 128 + (stop.signum or signal.SIGINT)  # docs/batch.md: 130 / 143 / 129
        finally:
            progress.close()
    print_summary(sys.stdout, summary)
    if summary.failed:
        ran = summary.done + len(summary.failed)
        print(f"edgepose: error: {len(summary.failed)} of {ran} video(s) failed (reasons above "
              f"and in {summary.manifest})", file=sys.stderr)
        return EXIT_ERROR
    if summary.warnings:  # as edgepose run exits 1 on a truncated video
        print(f"edgepose: warning: {len(summary.warnings)} video(s) ended early, results cover the "
              f"frames read (above and in {summary.manifest})", file=sys.stderr)
        return EXIT_ERROR
    return 0


def start_line(summary) -> str:
    d = summary.pipeline
    where = "Ray actor(s)" if summary.engine == "ray" else "local worker(s)"
    return (f"edgepose batch: {summary.videos - summary.skipped} of {summary.videos} video(s) to "
            f"do on {summary.workers} {where} x {summary.threads} thread(s), model {d.get('model')} "
            f"({d.get('model_file')}, {d.get('runtime')})")


def print_summary(stream, summary) -> None:
    ran = summary.done + len(summary.failed)
    before = f", {summary.skipped} done before (skipped)" if summary.skipped else ""
    print(f"edgepose batch: {summary.videos} video(s){before}; this run: {summary.done} done, "
          f"{len(summary.failed)} failed", file=stream)
    if ran:
        fps = f": {summary.fps:.1f} frames/s overall" if summary.fps else ""
        print(f"frames: {summary.frames} in {summary.seconds:.1f} s{fps} on {summary.workers} "
              f"worker(s) x {summary.threads} thread(s)", file=stream)
    if summary.per_worker:
        print("per worker (frames/s while busy): " + ", ".join(
            f"{name} {w['frames'] / w['seconds']:.1f} ({w['videos']} videos)" if w["seconds"] else
            f"{name} - ({w['videos']} videos)" for name, w in sorted(summary.per_worker.items())),
            file=stream)
    for path, text in summary.warnings:
        print(f"warning: {path}: {text}", file=stream)
    for path, reason in summary.failed:
        print(f"failed: {path}: {reason}", file=stream)
    print(f"wrote: {summary.out_dir} (manifest {summary.manifest})", file=stream)
