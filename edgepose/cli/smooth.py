"""``edgepose smooth``: the One Euro filter over a recorded ``edgepose run --json`` file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepose.cli.options import HelpFormatter
from edgepose.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    smooth = subparsers.add_parser(
        "smooth", help="smooth the poses of a --json file offline", formatter_class=HelpFormatter,
        description="Smooth an 'edgepose run --json' file. Forward is the live filter "
                    "(causal, a little lag); --zero-lag runs it forward and backward, "
                    "cancelling the lag, which only a recorded file allows.")
    smooth.add_argument("input", help="JSON Lines from edgepose run --json")
    smooth.add_argument("--out", required=True, help="where to write the smoothed JSON Lines")
    smooth.add_argument("--preset", default="default", help="light, default or strong")
    smooth.add_argument("--min-cutoff", type=float, help="override the preset's min_cutoff (Hz)")
    smooth.add_argument("--beta", type=float, help="override the preset's beta")
    smooth.add_argument("--zero-lag", action="store_true", help="forward + backward pass")
    smooth.add_argument("--fps", type=float, default=30.0,
                        help="frame rate for records without timestamp_ms")
    smooth.set_defaults(func=cmd_smooth)
    return smooth


def read_records(path: Path) -> list[dict]:
    """The records of a JSON Lines file from ``edgepose run --json``; InputError naming the
    first line that is not one."""
    if not path.is_file():
        raise InputError(f"{path} does not exist: give a JSON Lines file from 'edgepose run --json'")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path} is not text: give a JSON Lines file from 'edgepose run --json'") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            _ = int(record["frame"])
            for pose in record["poses"]:
                _ = pose["id"], len(pose["keypoints"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{number} is not an 'edgepose run --json' record") from None
        records.append(record)
    return records


def cmd_smooth(args: argparse.Namespace) -> int:
    from edgepose.smoothing import config_for, smooth_records

    try:
        config = config_for(args.preset, args.min_cutoff, args.beta)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if config is None:
        raise InputError("--preset none would change nothing: choose light, default or strong")
    records = read_records(Path(args.input))
    photos = [r for r in records if r.get("mode") == "image"]
    if photos:
        raise InputError(f"{args.input} was written in image mode (unrelated photos, such as "
                         f"{photos[0]['image']}), and image mode never smooths: for the frames "
                         "of one sequence, run edgepose run with --no-static-image-mode")
    smoothed = smooth_records(records, config, zero_lag=args.zero_lag, fps=args.fps)
    with open(args.out, "w", encoding="utf-8") as f:
        for record in smoothed:
            f.write(json.dumps(record) + "\n")
    kind = "zero-lag (forward + backward)" if args.zero_lag else "forward (as live)"
    print(f"smoothed {len(records)} frame(s) with {args.preset}, {kind}: wrote {args.out}")
    return 0
