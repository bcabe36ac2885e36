"""--show never takes the process down: OpenCV's Qt build aborts (exit 134) when DISPLAY
names no X server, and a headless cv2 installed over a GUI one must say what to do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from edgepose import opencv_gui

QT_BUILD = "General configuration\n  GUI:                           QT5\n    QT:  YES (ver 5.15.16 )\n"
HEADLESS_BUILD = "General configuration\n  GUI:                           NONE\n"
NO_SERVER = ":4711"  # nothing listens there


def test_gui_is_read_from_the_build_information():
    assert opencv_gui.gui_of_build(QT_BUILD) == "QT5"
    assert opencv_gui.gui_of_build(HEADLESS_BUILD) == "NONE"
    assert opencv_gui.gui_of_build("no such line") == "NONE"


def test_a_qt_build_without_an_x_server_is_one_line(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the Qt xcb abort is a Linux matter")
    monkeypatch.setenv("DISPLAY", NO_SERVER)
    problem = opencv_gui.window_problem(QT_BUILD)
    assert problem.startswith(f"no X server answers at DISPLAY={NO_SERVER}")
    monkeypatch.delenv("DISPLAY")
    assert "needs an X display" in opencv_gui.window_problem(QT_BUILD)


def test_an_answering_x_server_is_found(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("abstract unix sockets are Linux's")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        number = 4700 + os.getpid() % 50
        server.bind(f"\0/tmp/.X11-unix/X{number}")  # where Xorg and Xvfb listen too
        server.listen(8)  # connections are never accepted: room for each
        assert opencv_gui.x_server_answers(f":{number}")
        assert opencv_gui.x_server_answers(f"unix:{number}.0")
        monkeypatch.setenv("DISPLAY", f":{number}")
        assert opencv_gui.window_problem(QT_BUILD) is None
    assert not opencv_gui.x_server_answers(NO_SERVER)
    assert not opencv_gui.x_server_answers("not a display")


def test_headless_over_a_gui_build_says_how_to_get_the_window_back(monkeypatch):
    monkeypatch.setattr(opencv_gui, "installed_wheels",
                        lambda: {"opencv-contrib-python": "4.11.0.86", "opencv-python-headless": "4.11.0.86"})
    problem = opencv_gui.window_problem(HEADLESS_BUILD)
    assert "pip install --force-reinstall --no-deps opencv-contrib-python==4.11.0.86" in problem
    monkeypatch.setattr(opencv_gui, "installed_wheels", lambda: {"opencv-python-headless": "4.11.0.86"})
    assert "no GUI support" in opencv_gui.window_problem(HEADLESS_BUILD)


def test_show_with_a_display_that_does_not_answer_is_one_line_not_an_abort(tmp_path, model_path):
    """Whatever cv2 this environment has (the mediapipe extras bring a Qt one)."""
    import cv2

    models = ["--model", model_path("full"), "--detector", model_path("detector")]
    image = tmp_path / "grey.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    env = dict(os.environ, DISPLAY=NO_SERVER)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "edgepose", "run", str(image), "--show", *models],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr  # 134 was the Qt abort
    assert len(lines) == 1 and lines[0].startswith("edgepose: error:"), proc.stderr
    assert ("no X server answers" in lines[0]) or ("GUI support" in lines[0])
