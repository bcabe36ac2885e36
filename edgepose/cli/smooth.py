"""``edgepose smooth``: the One Euro filter over a recorded ``edgepose run --json`` file."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from edgepose.cli.options import HelpFormatter
from edgepose.errors import InputError
from edgepose.fileio import not_a_file, same_file

GIVE = "give the JSON Lines that 'edgepose run --json' writes"


def add_parser(subparsers) -> argparse.ArgumentParser:
    smooth = subparsers.add_parser(
        "smooth", help="smooth the poses of a --json file offline", formatter_class=HelpFormatter,
        description="Smooth an 'edgepose run --json' file. Forward is the live filter "
                    "(causal, a little lag); --zero-lag runs it forward and backward, "
                    "cancelling the lag, which only a recorded file allows. Timestamps are "
                    "read as a live run reads them: one that goes back restarts the filters, "
                    "and from a repeated one on the frames are timed at --fps.")
    smooth.add_argument("input", help="JSON Lines from edgepose run --json")
    smooth.add_argument("--out", required=True, help="where to write the smoothed JSON Lines")
    smooth.add_argument("--preset", default="default", help="light, default or strong")
    smooth.add_argument("--min-cutoff", type=float, help="override the preset's min_cutoff (Hz)")
    smooth.add_argument("--beta", type=float, help="override the preset's beta")
    smooth.add_argument("--zero-lag", action="store_true", help="forward + backward pass")
    smooth.add_argument("--fps", type=float, default=30.0,
                        help="frame rate for records without timestamp_ms, and after a "
                             "repeated one")
    smooth.set_defaults(func=cmd_smooth)
    return smooth


def read_records(path: Path) -> list[dict]:
    """The records of a JSON Lines file from ``edgepose run --json``; InputError naming the
    first line that is not one, or saying that the file holds none."""
    if not path.is_file():
        raise InputError(f"{path} {not_a_file(path)}: {GIVE}")
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    records.append(parse_record(line, f"{path}:{number}"))
    except UnicodeDecodeError:
        raise InputError(f"{path} is not text: {GIVE}") from None
    except OSError as exc:
        raise InputError(f"could not read {path}: {exc.strerror or exc}") from None
    if not records:
        raise InputError(f"no pose records in {path}: {GIVE}")
    return records


def parse_record(line: str, where: str) -> dict:
    """One line as a record: frame an integer, timestamp_ms a finite number or null, each
    pose an integer id and a table of finite keypoints (world, when there, too)."""
    try:
        record = json.loads(line)
        if not isinstance(record["frame"], int) or isinstance(record["frame"], bool):
            raise ValueError("frame")
        if record.get("timestamp_ms") is not None and not finite_number(record["timestamp_ms"]):
            raise InputError(f"{where}: timestamp_ms must be a finite number of milliseconds or "
                             f"null, got {record['timestamp_ms']!r}")
        if not isinstance(record["poses"], list):
            raise ValueError("poses")
        for pose in record["poses"]:
            if not isinstance(pose["id"], int) or isinstance(pose["id"], bool):
                raise ValueError("id")
            for name in ("keypoints", "world"):
                if name == "keypoints" or pose.get(name) is not None:
                    rows = pose[name]
                    if not (isinstance(rows, list) and rows and all(
                            isinstance(row, list) and len(row) == len(rows[0]) >= 2
                            and all(map(finite_number, row)) for row in rows)):
                        raise InputError(f"{where}: {name} must be rows of finite numbers, one "
                                         f"per keypoint (pose id {pose['id']})")
    except InputError:
        raise
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{where} is not an 'edgepose run --json' record") from None
    return record


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cmd_smooth(args: argparse.Namespace) -> int:
    from edgepose.sinks import JsonLinesSink
    from edgepose.offline_smoothing import smooth_records
    from edgepose.smoothing import config_for

    try:
        config = config_for(args.preset, args.min_cutoff, args.beta)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if config is None:
        raise InputError("--preset none would change nothing: choose light, default or strong")
    if not 0 < args.fps < math.inf:  # NaN fails both comparisons
        raise InputError(f"--fps must be a number of frames per second > 0, got {args.fps}")
    source = Path(args.input)
    if not source.is_file():
        raise InputError(f"{source} {not_a_file(source)}: {GIVE}")
    out = Path(args.out)
    if same_file(out, source):
        raise InputError(f"--out {out} is the input file: writing it would destroy it; give "
                         "another path")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give a file name, such as "
                         f"{out / (source.stem + '.smooth.jsonl')}")
    # opened before any work (an output that cannot be written fails first); renamed into
    # place when whole, so a failure leaves an earlier file as it was
    with JsonLinesSink(out, source.name) as sink:
        records = read_records(source)
        photos = [r for r in records if r.get("mode") == "image"]
        if photos:
            raise InputError(f"{args.input} was written in image mode (unrelated photos, such as "
                             f"{photos[0].get('image')}), and image mode never smooths: for the "
                             "frames of one sequence, run edgepose run with --no-static-image-mode")
        for record in smooth_records(records, config, zero_lag=args.zero_lag, fps=args.fps):
            sink.write_record(record)
    kind = "zero-lag (forward + backward)" if args.zero_lag else "forward (as live)"
    print(f"smoothed {len(records)} frame(s) with {args.preset}, {kind}: wrote {args.out}")
    return 0
