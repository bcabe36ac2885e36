"""Can an OpenCV window open here? Asked before OpenCV is: its Qt build aborts the whole
process (exit 134, "Could not load the Qt platform plugin "xcb"") when DISPLAY names an X
server that does not answer, and no Python code can catch that.

Several OpenCV wheels install into one ``cv2`` folder: ``opencv-python-headless`` (edgepose's,
no GUI) and ``opencv-contrib-python`` (MediaPipe's, a Qt build). Whichever pip installed
last is the one that runs; ``window_problem`` says in one line what to do in either case.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import socket
import sys

# The pip distributions that install a cv2 package; the headless ones have no GUI.
OPENCV_WHEELS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless",
                 "opencv-contrib-python-headless")


def installed_wheels() -> dict[str, str]:
    """Installed OpenCV distributions and their versions."""
    found = {}
    for name in OPENCV_WHEELS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def gui_of_build(build_information: str) -> str:
    """The GUI backend of an OpenCV build ("QT5", "GTK3", "NONE", ...), from
    ``cv2.getBuildInformation()``."""
    match = re.search(r"^\s*GUI:\s*(\S+)", build_information, re.MULTILINE)
    return match.group(1).upper() if match else "NONE"


def x_server_answers(display: str, timeout: float = 1.0) -> bool:
    """Whether an X server accepts a connection at ``display`` ("[host]:N[.screen]")."""
    match = re.fullmatch(r"(?:unix/)?([^:]*):(\d+)(?:\.\d+)?", display.strip())
    if match is None:
        return False
    host, number = match.group(1), int(match.group(2))
    if host in ("", "unix"):
        addresses = [(socket.AF_UNIX, f"/tmp/.X11-unix/X{number}")]
        if sys.platform.startswith("linux"):  # Xorg and Xvfb also listen on the abstract name
            addresses.insert(0, (socket.AF_UNIX, f"\0/tmp/.X11-unix/X{number}"))
    else:
        addresses = [(socket.AF_INET, (host, 6000 + number))]
    for family, address in addresses:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                return True
        except OSError:
            continue
    return False


def window_problem(build_information: str) -> str | None:
    """Why an OpenCV window cannot open here (one line saying what to do), or None.
    ``build_information`` is ``cv2.getBuildInformation()`` of the cv2 that runs."""
    gui = gui_of_build(build_information)
    wheels = installed_wheels()
    if gui == "NONE":
        with_gui = [name for name in wheels if not name.endswith("-headless")]
        if with_gui:
            name = with_gui[0]
            return (f"this cv2 is a build without GUI support, installed over {name}'s in the same "
                    f"folder: `pip install --force-reinstall --no-deps {name}=={wheels[name]}` "
                    "for --show, or write the frames to files")
        return ("this OpenCV has no GUI support (opencv-python-headless): pip install "
                "opencv-python, or write the frames to files")
    if gui.startswith("QT") and sys.platform.startswith("linux"):
        display = os.environ.get("DISPLAY", "")
        if not display:
            return ("this OpenCV's window needs an X display (its Qt has only the xcb plugin) and "
                    "DISPLAY is not set: on Wayland run it under Xwayland, or write the frames to files")
        if not x_server_answers(display):
            return (f"no X server answers at DISPLAY={display} (OpenCV's Qt window would abort "
                    "the process there): start it, unset DISPLAY, or write the frames to files")
    return None
