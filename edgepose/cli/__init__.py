"""The ``edgepose`` command: thin subcommands over the Python API, one module each (run,
batch, smooth, models, eval, bench, convert). No library module imports this package.

Every failure the user can fix ends in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os

# Quiet OpenCV's and FFmpeg's own stderr chatter (camera probing, corrupt files): our
# errors say what happened in one line. Must be set before cv2 is imported.
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import argparse  # noqa: E402
import sys  # noqa: E402

from edgepose import __version__  # noqa: E402
from edgepose.errors import EdgeposeError  # noqa: E402

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
VERBOSE_HELP = "log what happens, and let native libraries (MediaPipe, TensorFlow) print"


def build_parser() -> argparse.ArgumentParser:
    from edgepose.cli import batch, bench, convert, eval as eval_command, models, run, serve, smooth
    from edgepose.cli.options import HelpFormatter

    parser = argparse.ArgumentParser(prog="edgepose", formatter_class=HelpFormatter,
                                     description="Pose estimation for edge devices. "
                                                 "'edgepose COMMAND --help' lists a command's flags.")
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (run, serve, batch, smooth, models, eval_command, bench, convert):
        command.add_parser(sub)
    for command_parser in sub.choices.values():  # also after the command: edgepose run -v
        command_parser.add_argument("-v", "--verbose", action="store_true",
                                    default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    from edgepose.quiet import configure_logging, native_stderr_quiet

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        # What native libraries print (MediaPipe, LiteRT, TensorFlow) is noise unless
        # --verbose; edgepose's own lines still reach stderr.
        with native_stderr_quiet(not args.verbose):
            return args.func(args)
    except EdgeposeError as exc:
        print(f"edgepose: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_ERROR)
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of --json - went away (e.g. `| head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        # a file we were asked to write or read: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"edgepose: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
