"""edgepose.systemd (sd_notify without a dependency) against a real unix datagram socket,
bound at a path and in the abstract namespace as systemd binds NOTIFY_SOCKET; and
edgepose.stopping, the one stop-on-signal piece of run, batch and serve, with real
signals sent to this process."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from edgepose import systemd
from edgepose.stopping import StopSignals


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path, monkeypatch):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        name = f"@edgepose-unit-{os.getpid()}"
        sock.bind("\0" + name[1:])
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def test_notify_sends_one_datagram_of_key_value_lines(listener):
    assert systemd.notify(READY=True, STATUS="12 frame(s), 24.0 FPS")
    assert listener.recv(4096) == b"READY=1\nSTATUS=12 frame(s), 24.0 FPS"


def test_notify_is_a_no_op_outside_systemd(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.notify(READY=1)
    assert not systemd.Watchdog().ping("x")
    # a socket that is gone (systemd restarted) must not fail the service
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert not systemd.notify(READY=1)


def test_watchdog_pings_at_half_of_watchdog_usec(listener, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    now = [100.0]
    dog = systemd.Watchdog(clock=lambda: now[0])
    assert dog.interval == 2.0
    calls = []

    def status():
        calls.append(1)
        return "1 frame(s)"

    assert dog.ping(status)
    assert listener.recv(4096) == b"WATCHDOG=1\nSTATUS=1 frame(s)"
    now[0] += 1.9
    assert not dog.ping(status) and len(calls) == 1  # rate-limited; status not even made
    now[0] += 0.1
    assert dog.ping()
    assert listener.recv(4096) == b"WATCHDOG=1"
    assert dog.sent == 2


def test_watchdog_meant_for_another_process_is_not_ours(listener, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    dog = systemd.Watchdog(clock=lambda: 0.0)
    assert dog.interval is None and dog.every == systemd.STATUS_EVERY_S
    assert dog.ping("status only")  # STATUS still goes out, but no WATCHDOG=1
    assert listener.recv(4096) == b"STATUS=status only"


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_sets_the_flag_and_a_second_one_forces(name):
    signum = getattr(signal, name)
    before = signal.getsignal(signum)
    woken = []
    with StopSignals(on_stop=woken.append) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signum)
        assert stop.wait(5) and stop.signum == signum and stop.name == name and woken == [signum]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
            stop.wait(5)  # the handler runs here at the latest
        assert stop.signum == signum and woken == [signum]  # the first one is kept
    assert signal.getsignal(signum) is before  # handlers restored


def test_interrupt_mode_raises_at_once_as_batch_needs():
    with StopSignals(("SIGTERM",), interrupt=True) as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        stop.wait(5)
    assert stop.signum == signal.SIGTERM


def test_an_ignored_signal_stays_ignored():
    """nohup ignores SIGHUP: the run must go on when the terminal closes."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with StopSignals() as stop:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            assert not stop.wait(0.2)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
