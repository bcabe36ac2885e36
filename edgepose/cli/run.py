"""``edgepose run``: source -> pipeline -> sinks (annotated files or video, a window, JSON
Lines), then a summary of what was found and how fast."""

from __future__ import annotations

import argparse
import contextlib
import sys

from edgepose import __version__
from edgepose.cli.options import HelpFormatter, add_option_flags, options_from_args
from edgepose.errors import InputError, SourceLost
from edgepose.frameloop import run_frames
from edgepose.systemd import Watchdog, notify

DEMO_OUT = "edgepose_demo.jpg"
CLI_STAGES = ("decode", "render")  # stages of this loop, not of the pipeline
LIVE_KINDS = ("camera", "stream")
STALL_TIMEOUT_S = 10.0
# Exit codes: 0 the source ended (a file, a folder) or a stop was asked for (SIGTERM,
# SIGINT, SIGHUP, q); 1 bad input or a problem found (a truncated video); 2 a usage
# error (argparse); 3 a live source lost (it ended, failed or stalled); 130 a second
# signal forced the stop.
EXIT_ERROR = 1
EXIT_FORCED = 130


def add_parser(subparsers) -> argparse.ArgumentParser:
    run = subparsers.add_parser(
        "run", help="find poses in an image, folder, video, camera or stream",
        formatter_class=HelpFormatter,
        description="Find poses in SOURCE. With no SOURCE, runs on a sample photo that an "
                    "installed package ships and writes edgepose_demo.jpg.")
    run.add_argument("source", nargs="?", help="image, folder, video file, camera index "
                     "(0), stream URL, or 'picamera2'")
    outputs = run.add_argument_group("outputs")
    outputs.add_argument("--out", help="annotated output: image file, folder, or .mp4/.avi")
    outputs.add_argument("--json", metavar="PATH", help="write JSON Lines, one object per "
                         "frame ('-' for stdout)")
    outputs.add_argument("--show", action="store_true", help="show frames in a window")
    outputs.add_argument("--layout", choices=("blazepose", "coco"), default="blazepose",
                         help="skeleton drawn on --out/--show")
    outputs.add_argument("--overlay", action="store_true",
                         help="draw rolling FPS and per-stage ms on --out/--show frames")
    live = run.add_argument_group("live sources (camera, stream)")
    live.add_argument("--stall-timeout", type=_seconds, default=STALL_TIMEOUT_S, metavar="SECONDS",
                      help="a camera or stream that sends no frame for this long counts as "
                           "lost: the run ends with exit code 3 (a service manager restarts it)")
    add_option_flags(run)
    run.set_defaults(func=cmd_run)
    return run


def cmd_run(args: argparse.Namespace) -> int:
    from edgepose.stopping import StopSignals

    # from the start (a stop while the model loads) to the last line of the summary
    with StopSignals() as stop:
        return _run(args, stop)


def _run(args: argparse.Namespace, stop) -> int:
    from tqdm import tqdm

    from edgepose import Pipeline
    from edgepose.demo import NoDemoPhoto, demo_photo
    from edgepose.profiler import Profiler
    from edgepose.quiet import native_stderr_quiet
    from edgepose.sources import open_source
    from edgepose.unattended import StallGuard

    spec, out_path = args.source, args.out
    for flag, value in (("--out", args.out), ("--json", args.json)):
        if value is not None and not value.strip():
            raise InputError(f"{flag} is an empty name: give a path"
                             + (" or - for stdout" if flag == "--json" else ""))
    if spec is None:
        try:
            demo = demo_photo()
        except NoDemoPhoto as exc:
            raise InputError(f"give a SOURCE (image, folder, video, camera index or URL): {exc}") from None
        spec = str(demo)
        out_path = out_path or DEMO_OUT
        print(f"edgepose: no source given, running on {demo}", file=sys.stderr)

    with contextlib.ExitStack() as stack:
        # everything opened is closed however the run ends (error, q, a signal)
        source = open_source(spec)
        if source.kind in LIVE_KINDS:  # a read that blocks must not hold the run for ever
            source = StallGuard(source, args.stall_timeout, stop)
        stack.callback(source.close)
        opts = options_from_args(args, static_image_mode=source.kind == "image")
        with native_stderr_quiet(not args.verbose):
            pipe = Pipeline(opts)
        stack.callback(pipe.close)
        mode = "image" if opts.static_image_mode else "video"
        sinks = [stack.enter_context(sink) for sink in open_sinks(args, out_path, source, mode)]
        report = sys.stderr if args.json == "-" else sys.stdout
        stats = Profiler()
        bar = stack.enter_context(tqdm(total=source.total, unit="frame", file=sys.stderr,
                                       disable=None if source.total else True, leave=False))
        try:
            ended = run_frames(source, pipe, sinks, stats, layout=args.layout, overlay=args.overlay,
                               verbose=args.verbose, progress=bar, stop=stop,
                               on_frame=_heartbeat(stats))
        except KeyboardInterrupt:  # a second signal: the frame in hand may be half written
            ended = "forced"
        lost = _lost(source, ended)
        notify(STOPPING=1, STATUS=f"{stats.frames} frame(s); " + (lost or f"ended: {ended}"))
        if stats.frames == 0 and (lost or ended in ("stop", "forced")):
            for sink in sinks:  # nothing to keep: an earlier --json file stays as it was
                getattr(sink, "discard", lambda: None)()
            if lost:
                raise SourceLost(lost)

    if stats.frames or ended == "source":
        print_summary(report, source, pipe, stats, sinks)
    if ended in ("stop", "forced"):
        how = f"by {stop.name}" if stop.name else "on request"
        print(f"edgepose: interrupted {how}: stopped after {stats.frames} frame(s)"
              + (", forced by a second signal" if ended == "forced" else ""), file=sys.stderr)
    # a stop leaves a video unfinished on purpose: not a sign of a truncated file
    problems = source.warnings() if ended in ("source", "sink") or source.kind == "image" else []
    for line in problems:
        print(f"edgepose: warning: {line}", file=sys.stderr)
    if lost:
        print(f"edgepose: error: {lost}", file=sys.stderr)
        return SourceLost.exit_code
    if ended == "forced":
        return EXIT_FORCED
    return EXIT_ERROR if problems else 0


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: give a number of seconds above 0")
    return value


def _lost(source, ended: str) -> str | None:
    """The line that says a live source was lost and what to do, None when it was not."""
    what = getattr(source, "lost", None)  # StallGuard's; None for a URL's whole video file
    if ended != "source" or source.kind not in LIVE_KINDS or not what:
        return None
    check = "the camera (is it connected?)" if source.kind == "camera" else "the stream's server and the network"
    return f"{source.name}: {what}; check {check}, then run again (the systemd unit restarts it)"


def _heartbeat(stats):
    """Called after each frame: READY=1 to systemd after the first, then watchdog pings
    with a STATUS line (no-ops outside systemd)."""
    watchdog = Watchdog()

    def status() -> str:
        fps = stats.rolling_fps
        return f"{stats.frames} frame(s)" + (f", {fps:.1f} FPS" if fps else "")

    def beat() -> None:
        if stats.frames == 1:
            notify(READY=1, STATUS=status())
        watchdog.ping(status)

    return beat


def open_sinks(args: argparse.Namespace, out_path: str | None, source, mode: str | None = None):
    """The sinks the flags ask for, in order --out, --show, --json (a generator: each is
    handed to the caller, who closes it, before the next is opened). ``mode``: "image" or
    "video", written into each JSON record. For a camera or stream, --json FILE is
    appended to a line at a time (restarts of a service add to it; a kill loses nothing
    written); for a fixed set of frames it is replaced when the run ends."""
    from edgepose import sinks

    sinks.check_outputs(source, out_path, args.json)
    if out_path:
        yield sinks.annotated_sink(out_path, source)  # a str: "frames/" names a folder
    if args.show:
        if not sinks.display_available():
            raise InputError("--show needs a display (DISPLAY is not set): use --out to save frames")
        yield sinks.WindowSink(f"edgepose: {source.name}")
    if args.json and args.json != "-" and source.kind in LIVE_KINDS:
        from edgepose.unattended import AppendingJsonLines

        yield AppendingJsonLines(args.json, source.name, mode)  # a service's restarts add up
    elif args.json:
        yield sinks.JsonLinesSink(sys.stdout if args.json == "-" else args.json, source.name, mode)


def print_summary(stream, source, pipe, stats, sinks) -> None:
    s = stats.summary()
    o = pipe.options
    d = pipe.describe()
    model = d["model_file"]
    if d.get("variant"):
        model += f" {d['variant']} of {d.get('converted_from') or '?'}"
    print(f"edgepose {__version__}: {s['frames']} frame(s) from {source.name}, model {d['model']} "
          f"({model}, {d['runtime']}), {'image' if o.static_image_mode else 'video'} mode, "
          f"max_people {o.max_people}, smoothing {'off' if o.static_image_mode else o.smoothing}",
          file=stream)
    if d.get("detector"):
        search = f"detector {d['detector']} ran on {s['detector_frames']} of {s['frames']} frames"
    else:  # the model finds people itself (MoveNet, YOLO-pose)
        search = f"whole-frame search on {s['detector_frames']} of {s['frames']} frames"
    tracks = f", {s['tracks']} track id(s)" if not o.static_image_mode else ""
    print(f"people: {s['people']} pose(s) found{tracks}; {search}", file=stream)
    stages = s["stages_ms"]
    pipeline_ms = sum(v["mean"] for k, v in stages.items() if k not in CLI_STAGES)
    fps = f"{s['fps']:.1f} FPS end to end, " if s["fps"] else ""
    proc = s["process"]
    usage = ""
    if proc["cpu_percent_mean"] is not None:
        usage = f"; process CPU {proc['cpu_percent_mean']:.0f}%, RSS {proc['rss_mb_max']:.0f} MB"
    elif proc["rss_mb_max"] is not None:
        usage = f"; process RSS {proc['rss_mb_max']:.0f} MB"
    print(f"speed: {fps}pipeline {pipeline_ms:.2f} ms/frame{usage}", file=stream)
    print("stages ms (mean / p50 / p90 / p99): " + ", ".join(
        f"{k} {v['mean']:.2f}/{v['p50']:.2f}/{v['p90']:.2f}/{v['p99']:.2f}" for k, v in stages.items()),
        file=stream)
    written = [str(sink.path) for sink in sinks if sink.path is not None and sink.written]
    if written:
        print("wrote: " + ", ".join(written), file=stream)
