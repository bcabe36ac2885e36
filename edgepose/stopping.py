"""Stop on a signal: SIGTERM (``kill``, ``systemctl stop``, ``docker stop``, ``timeout``),
SIGINT (Ctrl-C) and SIGHUP (the terminal went away) become a request that a long-running
loop sees and honours at its next frame, so that it ends as if its source had ended:
every frame done is written, files are finalised, the summary is printed.

    with StopSignals() as stop:          # handlers installed; the old ones come back after
        for frame in frames:
            if stop.is_set():
                break
            ...
    if stop.signum: ...                  # which signal asked (None: none did)

A second signal while the first is being honoured raises KeyboardInterrupt, so a stop
that hangs can still be forced from the keyboard. ``interrupt=True`` raises
KeyboardInterrupt on the first signal instead, for code that waits in places a flag
cannot reach (``edgepose batch`` waiting on its workers). ``on_stop`` is called (in the
main thread, from the handler) once, e.g. to wake an event loop with
``loop.call_soon_threadsafe``. A signal ignored when the handlers are installed (``nohup``
ignores SIGHUP, a shell's background job SIGINT) stays ignored. Handlers can only be
installed from the main thread; elsewhere the object is a plain flag that
:meth:`request` sets.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


class StopSignals:
    def __init__(self, signals: tuple[str, ...] = STOP_SIGNALS, *, interrupt: bool = False,
                 on_stop: Callable[[int | None], None] | None = None) -> None:
        self.signals = tuple(getattr(signal, name) for name in signals if hasattr(signal, name))
        self.interrupt = interrupt
        self.on_stop = on_stop
        self.signum: int | None = None  # the first signal that asked, None if none did
        self._event = threading.Event()
        self._previous: dict[int, object] = {}

    # -- the flag ------------------------------------------------------------------------
    def is_set(self) -> bool:
        """True once a stop was asked for (a signal, or :meth:`request`)."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def request(self, signum: int | None = None) -> None:
        """Ask for a stop from code (a button, a test, another thread)."""
        first = not self._event.is_set()
        if first and self.signum is None:
            self.signum = signum
        self._event.set()
        if first and self.on_stop is not None:
            self.on_stop(signum)

    @property
    def name(self) -> str | None:
        """The asking signal's name (``"SIGTERM"``), None when none asked."""
        return signal.Signals(self.signum).name if self.signum else None

    # -- the handlers --------------------------------------------------------------------
    def install(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return self
        for signum in self.signals:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # ignored on purpose: nohup's SIGHUP, a background job's SIGINT
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers found by :meth:`install`."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        again = self._event.is_set()
        self.request(signum)
        if again or self.interrupt:
            raise KeyboardInterrupt

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()
