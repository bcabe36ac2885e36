"""deploy/edgepose.service and deploy/edgepose-serve.service are valid systemd units
(systemd-analyze verify; skips where it is not installed), run the commands documented in
docs/devices.md with the notify protocol, a watchdog and a clean SIGTERM stop; the kiosk
browser script waits for the server, then starts the browser on the page (a stand-in
browser records how it was started: no display here)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "edgepose.service"
SERVE_UNIT = ROOT / "deploy" / "edgepose-serve.service"
DEFAULTS = ROOT / "deploy" / "edgepose.default"
KIOSK = ROOT / "deploy" / "edgepose-kiosk.sh"
VENV_EDGEPOSE = "/opt/edgepose/venv/bin/edgepose"


@pytest.mark.parametrize("unit_path", [UNIT, SERVE_UNIT], ids=lambda p: p.name)
def test_unit_verifies(tmp_path, unit_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart exists: point it at an executable that does.
    text = unit_path.read_text()
    assert VENV_EDGEPOSE in text
    unit = tmp_path / unit_path.name
    unit.write_text(text.replace(VENV_EDGEPOSE, shutil.which("true") or "/bin/true"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, check=False,
                          text=True, timeout=60)
    assert proc.returncode == 0 and unit_path.name not in proc.stderr, proc.stderr


def settings(unit_path: Path) -> dict[str, str]:
    return {line.split("=", 1)[0]: line.split("=", 1)[1]
            for line in unit_path.read_text().splitlines()
            if "=" in line and not line.startswith("#")}


@pytest.mark.parametrize("unit_path", [UNIT, SERVE_UNIT], ids=lambda p: p.name)
def test_unit_notifies_is_watched_restarts_and_stops_with_sigterm(unit_path):
    lines = settings(unit_path)
    assert lines["Type"] == "notify" and lines["NotifyAccess"] == "main"
    assert int(lines["WatchdogSec"]) > 10  # above run's default --stall-timeout
    assert lines["Restart"] == "always" and lines["RestartPreventExitStatus"] == "2"
    assert lines["KillSignal"] == "SIGTERM" and int(lines["TimeoutStopSec"]) > 10
    command = "run" if unit_path == UNIT else "serve"
    assert lines["ExecStart"].startswith(f"{VENV_EDGEPOSE} {command} ")
    assert lines["EnvironmentFile"] == "-/etc/default/edgepose"
    assert lines["WantedBy"] == "multi-user.target"


def test_the_defaults_file_sets_what_the_units_read():
    names = [line.split("=", 1)[0] for line in DEFAULTS.read_text().splitlines()
             if line and not line.startswith("#")]
    assert names == ["EDGEPOSE_SOURCE", "EDGEPOSE_ARGS", "EDGEPOSE_SERVE_ARGS"]
    assert "$EDGEPOSE_SERVE_ARGS" in settings(SERVE_UNIT)["ExecStart"]
    assert settings(SERVE_UNIT)["Conflicts"] == "edgepose.service"


# -- the kiosk browser script -------------------------------------------------------------
def fake_browser(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for Chromium that writes its arguments, one a line, and exits."""
    record = tmp_path / "browser-args"
    browser = tmp_path / "chromium"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    browser.chmod(0o755)
    return browser, record


class Page(http.server.BaseHTTPRequestHandler):
    status = 503  # what serve answers while the camera is lost: still "up"

    def do_GET(self):
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def kiosk(tmp_path, url, **env) -> subprocess.CompletedProcess:
    browser, _ = fake_browser(tmp_path)
    full = {**os.environ, "EDGEPOSE_URL": url, "EDGEPOSE_BROWSER": str(browser),
            "EDGEPOSE_RESPAWN": "0", **env}
    return subprocess.run(["sh", str(KIOSK)], capture_output=True, check=False, text=True,
                          env=full, timeout=60)


def test_kiosk_script_waits_for_the_server_then_opens_the_page_full_screen(tmp_path):
    probe = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    port = probe.server_address[1]
    probe.server_close()  # the port, free: nothing answers there yet
    url = f"http://127.0.0.1:{port}/"
    started = []

    def serve_late():
        time.sleep(2.5)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
        started.append((time.monotonic(), server))
        server.serve_forever()

    threading.Thread(target=serve_late, daemon=True).start()
    proc = kiosk(tmp_path, url, WAYLAND_DISPLAY="wayland-0")
    ended = time.monotonic()
    started[0][1].shutdown()
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert ended > started[0][0]  # it waited for the server
    args = (tmp_path / "browser-args").read_text().splitlines()
    assert args[-1] == url and "--kiosk" in args and "--noerrdialogs" in args
    assert "--ozone-platform=wayland" in args


def test_kiosk_script_gives_up_waiting_and_says_so(tmp_path):
    proc = kiosk(tmp_path, "http://127.0.0.1:9/", EDGEPOSE_WAIT_S="1", WAYLAND_DISPLAY="")
    assert proc.returncode == 0
    assert proc.stderr.startswith("edgepose-kiosk: http://127.0.0.1:9/ does not answer after 1 s")
    args = (tmp_path / "browser-args").read_text().splitlines()
    assert args[-1] == "http://127.0.0.1:9/" and not any("ozone" in a for a in args)


def test_kiosk_script_without_a_browser_says_what_to_install(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no chromium on it
    env.pop("EDGEPOSE_BROWSER", None)
    proc = subprocess.run([shutil.which("sh"), str(KIOSK)], capture_output=True, check=False, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1 and "sudo apt install chromium" in proc.stderr
