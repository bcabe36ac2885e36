"""systemd's notify protocol (sd_notify(3)), with no dependency: a service started with
``Type=notify`` tells systemd when it is ready, how it is doing and when it stops, and
with ``WatchdogSec=`` proves it is alive by pinging; a service that stops pinging is
killed and restarted (``Restart=``). Outside systemd (no ``NOTIFY_SOCKET``) every call is
a no-op that returns False.

    from edgepose.systemd import Watchdog, notify

    watchdog = Watchdog()
    for frame in frames:
        ...                                   # a frame processed
        if first:
            notify(READY=1)
        watchdog.ping(lambda: f"{n} frames, {fps:.1f} FPS")  # STATUS, rate-limited
    notify(STOPPING=1)

Ping from the loop that does the work, after each unit of work, never from a timer
thread: a loop that hangs must stop pinging so that systemd restarts it. A service that
is meant to outlive a lost camera (``edgepose serve`` reopens it) pings from each turn of
its loop, also the turns that wait for the camera with a timeout; ``edgepose run`` ends
on a lost camera by itself (exit code 3) and pings only after frames. ``READY=1`` when
the service does what it is for: ``run`` after its first frame, ``serve`` once it
listens.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0  # STATUS updates when there is no watchdog to ping


def notify(**fields) -> bool:
    """Send ``KEY=value`` lines to the service manager, e.g. ``notify(READY=1,
    STATUS="running")`` (True is sent as 1). True when sent; False when ``NOTIFY_SOCKET``
    is unset or names no socket that takes the datagram (a service must not fail because
    its manager went away)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not fields or not address:
        return False
    if address.startswith("@"):  # the abstract namespace
        address = "\0" + address[1:]
    elif not address.startswith("/"):  # vsock: and others: not for a local service
        log.debug("NOTIFY_SOCKET %r is not a unix socket: not notifying", address)
        return False
    message = "\n".join(f"{key}={int(value) if isinstance(value, bool) else value}"
                        for key, value in fields.items())
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify to %s failed: %s", address, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings systemd asks for (half of ``WATCHDOG_USEC``), or
    None when it asks for none (or asked another process, ``WATCHDOG_PID``)."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


class Watchdog:
    """``ping()`` sends ``WATCHDOG=1`` (and ``STATUS=``, when given) at most once per
    half of ``WatchdogSec=``; without a watchdog, STATUS alone at most every
    ``status_every_s``. Cheap enough to call on every frame."""

    def __init__(self, status_every_s: float = STATUS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = watchdog_interval()
        self.active = bool(os.environ.get("NOTIFY_SOCKET"))
        self.every = min(self.interval, status_every_s) if self.interval else status_every_s
        self.clock = clock
        self.sent = 0
        self._last: float | None = None

    def ping(self, status: str | Callable[[], str] | None = None) -> bool:
        """Tell systemd the caller is alive (when due); ``status`` is a line or a function
        that makes one (called only when a ping goes out). True when one was sent."""
        if not self.active:
            return False
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        fields: dict[str, object] = {"WATCHDOG": 1} if self.interval else {}
        if status is not None:
            fields["STATUS"] = status() if callable(status) else status
        sent = notify(**fields)
        self.sent += sent
        return sent
