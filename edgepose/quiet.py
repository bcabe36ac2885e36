"""Silence what native libraries print straight to the process's stderr, and the chatter of
third-party Python packages, while edgepose's own messages still get through.

The commands run quiet unless ``--verbose``: MediaPipe's absl lines, LiteRT's "Created
TensorFlow Lite XNNPACK delegate", TensorFlow's CUDA probing and deprecation notices are
noise to someone who asked for poses or a converted model.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import os
import sys

LOG_FORMAT = "edgepose: %(levelname)s: %(message)s"
_REAL_STDERR: list[int] = []  # the descriptors of the real stderr, one per active block


@contextlib.contextmanager
def native_stderr_quiet(enabled: bool = True):
    """Point file descriptor 2 at /dev/null for the block: what C++ libraries print there
    goes nowhere, also from the threads they start (MediaPipe's graph prints after its
    first frame). Python keeps writing to the real stderr: ``sys.stderr`` is a stream on
    the original descriptor for the block (logging through :class:`StderrHandler`,
    warnings, progress bars, exceptions), and a crash still prints its traceback there
    (faulthandler). Nested blocks are fine."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    previous, swapped = sys.stderr, None
    if _fileno(sys.stderr) == 2:
        swapped = os.fdopen(os.dup(saved), "w", buffering=1,
                            encoding=getattr(previous, "encoding", None) or "utf-8",
                            errors="backslashreplace")
        sys.stderr = swapped
        _REAL_STDERR.append(swapped.fileno())
    crash_report = swapped is not None and not faulthandler.is_enabled()
    if crash_report:
        faulthandler.enable(file=swapped)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        _flush_c_stdio()  # what C code wrote to a buffered stderr belongs to the block
        if crash_report:
            faulthandler.disable()
        if swapped is not None:
            swapped.flush()  # left open: a handler made in the block may still hold it
            sys.stderr = previous
            _REAL_STDERR.pop()
        os.dup2(saved, 2)
        os.close(saved)


def real_stderr() -> int | None:
    """Inside :func:`native_stderr_quiet`, the descriptor of the real stderr (for a child
    process that must print there); None outside."""
    return _REAL_STDERR[-1] if _REAL_STDERR else None


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (Windows)
        pass


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # a StringIO, a closed or detached stream
        return None


class StderrHandler(logging.StreamHandler):
    """A logging handler that writes to whatever ``sys.stderr`` is when it emits, so that
    :func:`native_stderr_quiet` does not silence edgepose's own warnings."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it; sys.stderr is looked up instead
        pass


class _LowerLevelFormatter(logging.Formatter):
    """"edgepose: warning: ...", as the commands' own lines say it."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def configure_logging(verbose: bool, noisy: tuple[str, ...] = ()) -> None:
    """The commands' logging: "edgepose: LEVEL: message" on stderr, INFO with ``verbose``
    else WARNING; the ``noisy`` third-party loggers (e.g. "tensorflow") only say errors
    unless ``verbose``."""
    handler = StderrHandler()
    handler.setFormatter(_LowerLevelFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler],
                        force=True)
    for name in noisy:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
