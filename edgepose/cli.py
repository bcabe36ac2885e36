"""The ``edgepose`` command: thin subcommands over the Python API.

Every failure the user can fix ends in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os

# Quiet OpenCV's and FFmpeg's own stderr chatter (camera probing, corrupt files): our
# errors say what happened in one line. Must be set before cv2 is imported.
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from edgepose import __version__  # noqa: E402
from edgepose.errors import EdgeposeError, InputError  # noqa: E402

log = logging.getLogger("edgepose")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
DEMO_OUT = "edgepose_demo.jpg"
PIPELINE_STAGES = ("preprocess", "detector", "landmark", "postprocess", "smoothing", "mediapipe")
EXIT_ERROR = 1


# -- options: flags generated from the Options dataclass, never copied by hand ------------
def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """--backend and one flag per Options field."""
    from edgepose.engines import ENGINES
    from edgepose.pipeline import Options

    parser.add_argument("--backend", choices=list(ENGINES), default="tflite",
                        help="engine: tflite (edgepose on LiteRT), mediapipe (legacy "
                             "mediapipe.solutions.pose, one person), mediapipe-tasks "
                             "(MediaPipe PoseLandmarker) (default: tflite)")

    for field in dataclasses.fields(Options):
        flag = "--" + field.name.replace("_", "-")
        helptext = field.metadata.get("help", "")
        kind = str(field.type)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS,
                                help=f"{helptext} (default: {'on' if field.default else 'off'})")
            continue
        conv = int if kind.startswith("int") else float if kind.startswith("float") else str
        parser.add_argument(flag, type=conv, default=argparse.SUPPRESS,
                            help=f"{helptext} (default: {field.default})")


def options_from_args(args: argparse.Namespace, **defaults):
    from edgepose.pipeline import Options

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Options)
             if hasattr(args, f.name)}
    try:
        return Options(**{**defaults, **given})
    except ValueError as exc:
        raise InputError(str(exc)) from None


@contextlib.contextmanager
def native_stderr_quiet(enabled: bool = True):
    """Silence what C++ libraries print straight to fd 2 (LiteRT's "Created TensorFlow Lite
    XNNPACK delegate" INFO line has no switch). Python exceptions still come through."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- outputs ------------------------------------------------------------------------------
class AnnotatedOutput:
    """Writes annotated frames to one image, a folder of images, or a video file."""

    def __init__(self, path: Path, source) -> None:
        from edgepose.sources import IMAGE_EXTENSIONS

        self.path = path
        self.source = source
        suffix = path.suffix.lower()
        single_image = source.kind == "image" and source.total == 1
        if suffix in VIDEO_EXTENSIONS:
            self.mode = "video"
        elif suffix in IMAGE_EXTENSIONS:
            if not single_image:
                raise InputError(f"--out {path} is one image but the source has many frames: "
                                 "give a folder or a .mp4/.avi file")
            self.mode = "image"
        else:
            self.mode = "folder"
            path.mkdir(parents=True, exist_ok=True)
        if self.mode != "folder":
            path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = None
        self.written = 0

    def write(self, image, frame) -> None:
        import cv2

        if self.mode == "video":
            if self.writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
                h, w = image.shape[:2]
                self.writer = cv2.VideoWriter(str(self.path), fourcc, self.source.fps or 30.0, (w, h))
                if not self.writer.isOpened():
                    raise InputError(f"could not write video {self.path}: try a .avi file")
            self.writer.write(image)
        else:
            if self.mode == "image":
                target = self.path
            elif self.source.kind == "image":
                target = self.path / (Path(frame.name).stem + ".jpg")
            else:
                target = self.path / f"{frame.index:06d}.jpg"
            ok, data = cv2.imencode(target.suffix or ".jpg", image)
            if not ok:
                raise InputError(f"could not encode {target}")
            try:
                data.tofile(target)
            except OSError as exc:
                raise InputError(f"could not write {target}: {exc.strerror}") from None
        self.written += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class Window:
    """An OpenCV window; fails early with a clear line when there is no display."""

    def __init__(self, title: str) -> None:
        import cv2

        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise InputError("--show needs a display (DISPLAY is not set): use --out to save frames")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise InputError("this OpenCV has no GUI support (opencv-python-headless): "
                             "pip install opencv-python, or use --out") from None

    def show(self, image) -> bool:
        """Show a frame; False when the user pressed q or Esc."""
        import cv2

        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


# -- subcommands ------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edgepose.engines import create_pipeline
    from edgepose.profiler import Profiler
    from edgepose.sources import demo_image, open_source

    spec, out_path = args.source, args.out
    if spec is None:
        demo = demo_image()
        if demo is None:
            raise InputError("give a SOURCE (image, folder, video, camera index or URL); "
                             "no demo photo was found (pip install scikit-image for one)")
        spec = str(demo)
        out_path = out_path or DEMO_OUT
        print(f"edgepose: no source given, running on {demo}", file=sys.stderr)

    with contextlib.ExitStack() as stack:
        # everything opened is closed however the run ends (error, q, Ctrl-C)
        source = open_source(spec)
        stack.callback(source.close)
        opts = options_from_args(args, static_image_mode=source.kind == "image")
        with native_stderr_quiet(not args.verbose):
            pipe = create_pipeline(args.backend, opts)
        stack.callback(pipe.close)
        output = AnnotatedOutput(Path(out_path), source) if out_path else None
        if output:
            stack.callback(output.close)
        window = Window(f"edgepose: {source.name}") if args.show else None
        if window:
            stack.callback(window.close)
        json_file = None
        if args.json == "-":
            json_file = sys.stdout
        elif args.json:
            json_file = stack.enter_context(open(args.json, "w", encoding="utf-8"))
        report = sys.stderr if args.json == "-" else sys.stdout
        stats = Profiler()
        bar = stack.enter_context(tqdm(total=source.total, unit="frame", file=sys.stderr,
                                       disable=None if source.total else True, leave=False))
        try:
            run_frames(args, source, pipe, output, window, json_file, stats, bar)
        except KeyboardInterrupt:
            print("edgepose: interrupted", file=sys.stderr)

    print_summary(report, source, pipe, stats, output, args.json)
    problems = source.warnings()
    for line in problems:
        print(f"edgepose: warning: {line}", file=sys.stderr)
    return EXIT_ERROR if problems else 0


def run_frames(args, source, pipe, output, window, json_file, stats, bar) -> None:
    """The frame loop of ``edgepose run``: decode, process, draw, write, profile."""
    from edgepose.draw import draw_overlay, draw_poses

    frames = iter(source)
    while True:
        t0 = time.perf_counter_ns()
        frame = next(frames, None)
        if frame is None:
            return
        decode_ms = (time.perf_counter_ns() - t0) / 1e6
        # MediaPipe starts its graph (and prints) on the first frame
        with native_stderr_quiet(stats.frames == 0 and not args.verbose):
            result = pipe.process(frame.image, frame.timestamp_ms)
        stages = {"decode": decode_ms, **result.stages_ms}
        if output or window:
            t1 = time.perf_counter_ns()
            canvas = draw_poses(frame.image, result.poses, layout=args.layout)
            if args.overlay:
                draw_overlay(canvas, stats.rolling_fps, stages, len(result.poses))
            stages["render"] = (time.perf_counter_ns() - t1) / 1e6
            if output:
                output.write(canvas, frame)
            if window and not window.show(canvas):
                return
        if json_file:
            record = {"source": source.name, "frame": frame.index, "image": frame.name,
                      **result.to_dict(), "image_size": list(result.image_size)}
            json_file.write(json.dumps(record) + "\n")
        stats.add(stages, len(result.poses), result.detector_ran,
                  tuple(p.track_id for p in result.poses))
        bar.update(1)


def print_summary(stream, source, pipe, stats, output, json_path) -> None:
    s = stats.summary()
    o = pipe.options
    model = Path(pipe.landmark_path).name
    info = getattr(pipe, "landmark_info", None)
    if info and info.get("variant"):
        model += f" {info['variant']} of {info.get('source', {}).get('file', '?')}"
    print(f"edgepose {__version__}: {s['frames']} frame(s) from {source.name}, model {o.model} "
          f"({model}, {pipe.runtime}), {'image' if o.static_image_mode else 'video'} mode, "
          f"max_people {o.max_people}, smoothing {'off' if o.static_image_mode else o.smoothing}",
          file=stream)
    detector = f"detector ran on {s['detector_frames']} of {s['frames']} frames"
    tracks = f", {s['tracks']} track id(s)" if not o.static_image_mode else ""
    print(f"people: {s['people']} pose(s) found{tracks}; {detector}", file=stream)
    stages = s["stages_ms"]
    pipeline_ms = sum(stages[k]["mean"] for k in PIPELINE_STAGES if k in stages)
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
    written = []
    if output and output.written:
        written.append(str(output.path))
    if json_path and json_path != "-":
        written.append(json_path)
    if written:
        print("wrote: " + ", ".join(written), file=stream)


def cmd_smooth(args: argparse.Namespace) -> int:
    from edgepose.smoothing import config_for, smooth_records

    try:
        config = config_for(args.preset, args.min_cutoff, args.beta)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if config is None:
        raise InputError("--preset none would change nothing: choose light, default or strong")
    path = Path(args.input)
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
    smoothed = smooth_records(records, config, zero_lag=args.zero_lag, fps=args.fps)
    with open(args.out, "w", encoding="utf-8") as f:
        for record in smoothed:
            f.write(json.dumps(record) + "\n")
    kind = "zero-lag (forward + backward)" if args.zero_lag else "forward (as live)"
    print(f"smoothed {len(records)} frame(s) with {args.preset}, {kind}: wrote {args.out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from edgepose import models

    for name in args.download or []:
        if name not in models.KNOWN_MODELS:
            raise InputError(f"unknown model {name!r}: choose from {', '.join(models.KNOWN_MODELS)}")
        found = models.find_local(models.KNOWN_MODELS[name])
        path = found[1] if found else models.fetch(models.KNOWN_MODELS[name])
        print(f"{name}: {path}")
    rows = models.status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':18} {'role':9} {'layout':27} {'sha256':14} where")
    for r in rows:
        if r["path"]:
            where = f"{r['path']} ({r['source']})"
        elif r["state"] == "convert":
            where = f"needs converting: edgepose convert tfjs {r['name']}"
        else:
            where = "missing: edgepose models --download " + r["name"]
        print(f"{r['name']:18} {r['role']:9} {r['layout']:27} {r['sha256'][:12]}.. {where}")
    print(f"cache: {models.cache_dir()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgepose", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="find poses in an image, folder, video, camera or stream",
                         description="Find poses in SOURCE. With no SOURCE, runs on a sample "
                                     "photo that an installed package ships.")
    run.add_argument("source", nargs="?", help="image, folder, video file, camera index "
                     "(0), stream URL, or 'picamera2'")
    run.add_argument("--out", help="annotated output: image file, folder, or .mp4/.avi")
    run.add_argument("--json", metavar="PATH", help="write JSON Lines, one object per frame "
                     "('-' for stdout)")
    run.add_argument("--show", action="store_true", help="show frames in a window")
    run.add_argument("--layout", choices=("blazepose", "coco"), default="blazepose",
                     help="skeleton drawn on --out/--show (default: blazepose)")
    run.add_argument("--overlay", action="store_true",
                     help="draw rolling FPS and per-stage ms on --out/--show frames")
    add_option_flags(run)
    run.set_defaults(func=cmd_run)

    smooth = sub.add_parser("smooth", help="smooth the poses of a --json file offline",
                            description="Smooth an 'edgepose run --json' file. Forward is the "
                            "live filter (causal, a little lag); --zero-lag runs it forward and "
                            "backward, cancelling the lag, which only a recorded file allows.")
    smooth.add_argument("input", help="JSON Lines from edgepose run --json")
    smooth.add_argument("--out", required=True, help="where to write the smoothed JSON Lines")
    smooth.add_argument("--preset", default="default", help="light, default or strong")
    smooth.add_argument("--min-cutoff", type=float, help="override the preset's min_cutoff (Hz)")
    smooth.add_argument("--beta", type=float, help="override the preset's beta")
    smooth.add_argument("--zero-lag", action="store_true", help="forward + backward pass")
    smooth.add_argument("--fps", type=float, default=30.0,
                        help="frame rate for records without timestamp_ms (default: 30)")
    smooth.set_defaults(func=cmd_smooth)

    mods = sub.add_parser("models", help="list known models and where they are found")
    mods.add_argument("--download", nargs="+", metavar="NAME",
                      help="download these models into the cache (sha256-checked)")
    mods.add_argument("--json", action="store_true", help="print JSON")
    mods.set_defaults(func=cmd_models)

    from converters.cli import add_convert_parser
    from edgepose.bench import add_bench_parser
    from edgepose.evaluation import add_eval_parser

    add_eval_parser(sub)
    add_bench_parser(sub)
    add_convert_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="edgepose: %(levelname)s: %(message)s")
    try:
        return args.func(args)
    except EdgeposeError as exc:
        print(f"edgepose: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of --json - went away (e.g. `| head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        # a file we were asked to write or read: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"edgepose: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
