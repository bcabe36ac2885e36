"""Silence what native libraries print straight to the process's stderr."""

from __future__ import annotations

import contextlib
import os
import sys


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
