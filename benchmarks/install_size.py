"""What each install costs: download size, installed size and time of `pip install .` and
of each extra, each in a fresh venv made by `python3 -m venv` (its own pip), from PyPI
alone with pip's cache off: what a new machine that reaches only the registries pays.

    python benchmarks/install_size.py [--extras mediapipe,mediapipe-legacy] [--python python3]
    python benchmarks/install_size.py --table   # README's table again from the JSON, no install

Writes benchmarks/results/install_size.json and the table in README ("Install", between the
install-size markers). A package downloaded more than once (pip backtracking to read another
release's requirements) is counted every time, and named under "downloaded more than once".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, command, write_json

OUT = RESULTS / "install_size.json"
README = ROOT / "README.md"
MARKERS = ("<!-- install-size:start -->", "<!-- install-size:end -->")

DOWNLOADING = re.compile(r"Downloading (\S+) \(([\d.]+) ([kMG]?B)\)")
UNIT = {"B": 1e-6, "kB": 1e-3, "MB": 1.0, "GB": 1e3}


def extras_in_pyproject() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["optional-dependencies"])


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def pypi_only_env() -> dict[str, str]:
    """pip as on a new machine: PyPI, no local wheel folders or extra indexes, no cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "VIRTUAL_ENV"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def measure(python: str, target: str, work: Path) -> dict:
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    empty = size_mb(venv)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"],
                         capture_output=True, text=True).stdout.split()[1]
    started = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", target], cwd=ROOT,
                          env=pypi_only_env(), capture_output=True, text=True)
    seconds = time.monotonic() - started
    files = [(m.group(1), float(m.group(2)) * UNIT[m.group(3)]) for m in DOWNLOADING.finditer(proc.stdout)]
    names = [re.split(r"-\d", Path(f).name, maxsplit=1)[0].lower().replace("_", "-") for f, _ in files]
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True).stdout.split()
    return {
        "install": f"pip install '{target}'", "ok": proc.returncode == 0, "pip": pip,
        "seconds": round(seconds, 1), "downloaded_mb": round(sum(s for _, s in files), 1),
        "files_downloaded": len(files), "installed_mb": round(size_mb(venv) - empty, 1),
        "downloaded_more_than_once": sorted({n for n in names if names.count(n) > 1}),
        "packages": [line for line in freeze if not line.startswith("edgepose")],
        "error": None if proc.returncode == 0 else proc.stderr[-2000:],
    }


def markdown(report: dict) -> str:
    rows = report["rows"]
    light = next(r for r in rows if r["install"] == "pip install '.'")
    lines = [
        f"Measured with `{report['command']}` ({report['python']}, pip {light['pip']}, "
        f"{report['cores']} cores): each in a fresh venv, from PyPI alone with pip's cache off. "
        "Times depend on the network (here a fast one); sizes do not.",
        "",
        "| install | downloaded | installed | beyond `pip install .` | time | pip downloaded twice |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        extra = "" if r is light else f"+{r['installed_mb'] - light['installed_mb']:.0f} MB"
        again = ", ".join(r["downloaded_more_than_once"]) or "-"
        status = "" if r["ok"] else " (failed)"
        lines.append(f"| `{r['install']}`{status} | {r['downloaded_mb']:.0f} MB | {r['installed_mb']:.0f} MB | "
                     f"{extra or '-'} | {r['seconds']:.0f} s | {again} |")
    return "\n".join(lines)


def update_readme(report: dict) -> None:
    text = README.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    README.write_text(text[:start] + "\n" + markdown(report) + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", help="comma-separated (default: every extra in pyproject.toml)")
    parser.add_argument("--python", default="python3", help="interpreter the venvs are made from")
    parser.add_argument("--table", action="store_true",
                        help="only write README's table from the last results")
    args = parser.parse_args()
    if args.table:
        update_readme(json.loads(OUT.read_text()))
        return
    extras = args.extras.split(",") if args.extras else extras_in_pyproject()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgepose-install-") as tmp:
        for extra in [None, *extras]:
            target = "." if extra is None else f".[{extra}]"
            row = measure(args.python, target, Path(tmp))
            rows.append(row)
            print(f"{row['install']:40} {'ok' if row['ok'] else 'FAILED':6} {row['seconds']:6.1f} s "
                  f"{row['downloaded_mb']:8.1f} MB down {row['installed_mb']:8.1f} MB installed"
                  + (f"  (again: {', '.join(row['downloaded_more_than_once'])})"
                     if row["downloaded_more_than_once"] else ""), flush=True)
    python = subprocess.run([args.python, "--version"], capture_output=True, text=True).stdout.strip()
    report = {"command": command(), "python": python, "cores": os.cpu_count(),
              "note": "fresh venv per row, PyPI only, pip cache off; times depend on the network",
              "rows": rows}
    write_json(OUT, report)
    update_readme(report)


if __name__ == "__main__":
    sys.exit(main())
