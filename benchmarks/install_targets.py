"""Does `pip install edgepose[...]` resolve where users deploy? Resolves the requirements
in pyproject.toml for each device target (Linux aarch64 and x86_64, CPython 3.10-3.12)
with binary wheels only, from the package registry, without installing anything.

    python benchmarks/install_targets.py [--extras mediapipe,eval] [--target NAME]

Writes benchmarks/results/install_targets.json: per target and extra, resolved or not,
the packages and versions pip picked, or the package that has no wheel there.
tests/test_install_targets.py runs the same resolution as a test.

Two things pip gets wrong for a foreign target, handled here:
- `--platform/--python-version` choose wheels, but pip evaluates environment markers,
  also those of dependencies, against the interpreter running it: on a Python 3.11
  x86_64 host, `pytest` resolved for 3.10 leaves out `exceptiongroup; python_version <
  "3.11"`. pip is therefore run with its marker environment replaced by the target's
  (the report's "environment" shows which one it used), and the result is checked
  independently: every dependency that the target's markers require must be in the
  resolved set with a version that satisfies it.
- `pip download` fetches every wheel (hundreds of MB per target); `pip install --dry-run
  --report` runs the same finder and resolver on the registry's metadata files only.

Any pip runs it: pip < 23.3 takes `--platform/--abi` only with `--target` (even with
`--dry-run`), so a temporary `--target` is always given (nothing is written there); pip
< 22.2 has no `--dry-run --report`, so a current pip is first installed (with that pip,
`--target`) into a temporary folder and runs the resolutions from there.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
RESULTS = ROOT / "benchmarks" / "results"

# pip output that means the registry was not reached, as opposed to "no such wheel".
_NETWORK_ERRORS = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name "
                   "resolution", "Network is unreachable", "ProxyError", "ConnectTimeoutError",
                   "Connection refused", "Could not fetch URL", "ReadTimeoutError")
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (\S+)")

# Runs pip with the target's marker environment (see the module docstring).
_PIP_FOR_TARGET = """\
import json, sys
from pip._vendor.packaging import markers
env = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(env)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@dataclasses.dataclass(frozen=True)
class Target:
    """A device's platform as pip sees it. ``glibc`` decides which manylinux wheels fit."""

    name: str
    machine: str            # platform_machine: aarch64 | x86_64
    python: str             # python_full_version of the distribution's interpreter
    glibc: tuple[int, int]
    where: str

    @property
    def python_version(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    def platforms(self) -> list[str]:
        """Wheel platform tags the target accepts, newest first. pip does not expand
        manylinux_2_X tags to older ones itself, so all are listed."""
        tags = [f"manylinux_{self.glibc[0]}_{minor}_{self.machine}"
                for minor in range(self.glibc[1], 16, -1)]
        return tags + [f"manylinux2014_{self.machine}"]

    def marker_environment(self) -> dict[str, str]:
        env = dict(default_environment())
        env.update(
            implementation_name="cpython", implementation_version=self.python,
            os_name="posix", platform_machine=self.machine,
            platform_python_implementation="CPython", platform_release="",
            platform_system="Linux", platform_version="", python_full_version=self.python,
            python_version=self.python_version, sys_platform="linux",
        )
        return env

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python,
                "--abi", self.abi]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args


# Python and glibc as shipped by each distribution.
TARGETS = (
    Target("pi-bookworm-aarch64-cp311", "aarch64", "3.11.2", (2, 36),
           "Raspberry Pi 4/5, Raspberry Pi OS Bookworm 64-bit"),
    Target("jetson-jp6-aarch64-cp310", "aarch64", "3.10.12", (2, 35),
           "Jetson Orin, JetPack 6 (Ubuntu 22.04)"),
    Target("ubuntu2404-aarch64-cp312", "aarch64", "3.12.3", (2, 39),
           "arm64 boards with Ubuntu 24.04"),
    Target("ubuntu2204-x86_64-cp310", "x86_64", "3.10.12", (2, 35), "x86_64, Ubuntu 22.04"),
    Target("debian12-x86_64-cp311", "x86_64", "3.11.2", (2, 36), "x86_64, Debian 12"),
    Target("ubuntu2404-x86_64-cp312", "x86_64", "3.12.3", (2, 39), "x86_64, Ubuntu 24.04"),
)
TARGETS_BY_NAME = {t.name: t for t in TARGETS}


def _load_pyproject(path: Path = PYPROJECT) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]


def extras_in_pyproject(path: Path = PYPROJECT) -> list[str]:
    return sorted(_load_pyproject(path).get("optional-dependencies", {}))


def requirements_for(target: Target, extras: tuple[str, ...] = (),
                     path: Path = PYPROJECT) -> list[Requirement]:
    """The project's requirements (runtime plus ``extras``) whose markers hold on
    ``target``, markers removed."""
    project = _load_pyproject(path)
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise ValueError(f"no extra {unknown[0]!r} in {path}: it has {', '.join(sorted(optional))}")
    lines = [(line, "") for line in project.get("dependencies", [])]
    lines += [(line, extra) for extra in extras for line in optional[extra]]
    env = target.marker_environment()
    chosen = []
    for line, extra in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({**env, "extra": extra}):
            req.marker = None
            chosen.append(req)
    return chosen


class RegistryUnreachable(RuntimeError):
    """pip could not reach the package index (offline machine): nothing was checked."""


@dataclasses.dataclass
class Resolution:
    target: str
    extras: tuple[str, ...]
    requirements: list[str]
    ok: bool
    packages: dict[str, str]        # name -> version pip picked
    missing: str | None = None      # the requirement that has no wheel for the target
    error: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        what = f"edgepose[{','.join(self.extras)}]" if self.extras else "edgepose"
        if self.ok:
            return f"{what} on {self.target}: " + ", ".join(
                f"{n}=={v}" for n, v in sorted(self.packages.items()))
        if self.missing:
            return f"{what} on {self.target}: no wheel of {self.missing} fits\n{self.error}"
        return f"{what} on {self.target}: does not resolve\n{self.error}"


# `pip install --dry-run --report` came with pip 22.2.
MIN_PIP = Version("22.2")
_PIP_LOCK = threading.Lock()
_pip_folder: list[str] = []  # the current pip installed for an older one, once per process


def _own_pip() -> Version | None:
    try:
        return Version(metadata.version("pip"))
    except metadata.PackageNotFoundError:
        return None


def _pip_env() -> dict[str, str] | None:
    """Environment for the pip subprocesses: None when this interpreter's own pip has
    ``--dry-run --report``; else PYTHONPATH leads to a current pip, installed once per
    process into a temporary folder by the old pip (``--target`` works on every pip)."""
    own = _own_pip()
    if own is not None and own >= MIN_PIP:
        return None
    if own is None:
        raise RuntimeError(f"{sys.executable} has no pip: python -m ensurepip")
    with _PIP_LOCK:
        if not _pip_folder:
            folder = tempfile.mkdtemp(prefix="edgepose-pip-")
            atexit.register(shutil.rmtree, folder, True)
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--only-binary=:all:", "--target", folder, f"pip>={MIN_PIP}",
                 "--timeout", "20", "--retries", "1"],
                capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                shutil.rmtree(folder, True)
                out = proc.stdout + proc.stderr
                if any(e in out for e in _NETWORK_ERRORS) or _pip_failure(out):
                    raise RegistryUnreachable(f"{_indexes()}: installing pip>={MIN_PIP} (this pip "
                                              f"is {own}): {_last_lines(out)}")
                raise RuntimeError(f"pip {own} could not install pip>={MIN_PIP}: {_last_lines(out)}")
            _pip_folder.append(folder)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [_pip_folder[0], os.environ.get("PYTHONPATH")])))


def pip_version() -> str:
    """The version of the pip that resolves (this interpreter's, or the one installed
    for it when it is older than MIN_PIP)."""
    env = _pip_env()
    if env is None:
        return str(_own_pip())
    proc = subprocess.run([sys.executable, "-c", "import pip; print(pip.__version__)"],
                          capture_output=True, text=True, env=env, check=True)
    return f"{proc.stdout.strip()} (installed for pip {_own_pip()})"


def _run_pip(target: Target, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", _PIP_FOR_TARGET, json.dumps(target.marker_environment()),
           *args, "--disable-pip-version-check", "--timeout", "20", "--retries", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_pip_env())


def _indexes() -> str:
    """The package indexes pip was told to use (older pips name only the path of a URL they
    could not fetch)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                          text=True)
    config = [line.partition("=")[::2] for line in proc.stdout.splitlines()]
    urls = [] if any(key.endswith(".index-url") for key, _ in config) else ["https://pypi.org/simple"]
    for key, value in config:
        if key.endswith("index-url"):
            urls += value.strip("'\"").split()
    return "pip could not reach the package index (" + ", ".join(dict.fromkeys(urls)) + ")"


def _pip_failure(out: str) -> str | None:
    found = _NO_DISTRIBUTION.findall(out) or _NO_VERSION.findall(out)
    return found[-1] if found else None


def _unmet(report: dict, target: Target, top: list[Requirement]) -> list[str]:
    """Dependencies that the target's markers require and the resolved set lacks."""
    env = target.marker_environment()
    picked = {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}
    extras = {canonicalize_name(r.name): set(r.extras) for r in top}
    problems, seen = [], set()
    changed = True
    while changed:  # extras asked of a dependency bring in more of its requirements
        changed = False
        for name, item in picked.items():
            for line in item["metadata"].get("requires_dist") or []:
                req = Requirement(line)
                if req.marker is not None and not any(
                        req.marker.evaluate({**env, "extra": e})
                        for e in {"", *extras.get(name, ())}):
                    continue
                dep = canonicalize_name(req.name)
                if dep not in picked:
                    problems.append(f"{req} (needed by {name})")
                    continue
                version = Version(picked[dep]["metadata"]["version"])
                if not req.specifier.contains(version, prereleases=True):
                    problems.append(f"{req} (needed by {name}, resolved {version})")
                new = set(req.extras) - extras.setdefault(dep, set())
                if new:
                    extras[dep] |= new
                    changed = True
    return [p for p in problems if not (p in seen or seen.add(p))]


def resolve(target: Target, extras: tuple[str, ...] = (), timeout: float = 300) -> Resolution:
    """Resolve edgepose's requirements (plus ``extras``) for ``target`` from the registry,
    binary wheels only, metadata only. Raises RegistryUnreachable when pip cannot reach it."""
    reqs = requirements_for(target, extras)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "report.json")
        # --target: pip < 23.3 refuses --platform/--abi without it, even with --dry-run
        # ("Can not use any platform or abi specific options unless installing via
        # '--target'"); with --dry-run nothing is written there, on any pip.
        args = ["install", "--dry-run", "--ignore-installed", "--no-warn-conflicts", "--quiet",
                "--target", os.path.join(tmp, "target"), "--report", report_path,
                *target.pip_args(), *map(str, reqs)]
        proc = _run_pip(target, args, timeout)
        out = proc.stdout + proc.stderr
        seconds = round(time.perf_counter() - started, 2)
        result = Resolution(target.name, tuple(extras), [str(r) for r in reqs], False, {},
                            seconds=seconds)
        if proc.returncode != 0:
            if any(e in out for e in _NETWORK_ERRORS):
                raise RegistryUnreachable(f"{_indexes()}: {_last_lines(out)}")
            result.missing = _pip_failure(out)
            result.error = _last_lines(out)
            return result
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
    used = report.get("environment", {}).get("platform_machine")
    if used != target.machine:
        result.error = (f"pip evaluated markers for {used}, not {target.machine}: this pip's "
                        "internals changed, see _PIP_FOR_TARGET")
        return result
    result.packages = {i["metadata"]["name"]: i["metadata"]["version"] for i in report["install"]}
    unmet = _unmet(report, target, reqs)
    if unmet:
        result.error = "resolved set lacks what the target's markers require: " + "; ".join(unmet)
        return result
    result.ok = True
    return result


def _last_lines(text: str, n: int = 12, width: int = 300) -> str:
    lines = [ln if len(ln) <= width else ln[:width] + " ..." for ln in text.strip().splitlines()
             if "is ignored: it is neither" not in ln]
    return "\n".join(lines[-n:])


def pinned(resolution: Resolution) -> list[str]:
    """``name==version`` for every package of a successful resolution."""
    if not resolution.ok:
        raise ValueError(resolution.describe())
    return [f"{n}=={v}" for n, v in sorted(resolution.packages.items())]


def main() -> None:
    from concurrent.futures import ThreadPoolExecutor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", default=None,
                        help="comma-separated extras to check (default: none, then each one)")
    parser.add_argument("--target", action="append", choices=list(TARGETS_BY_NAME),
                        help="only this target (repeatable)")
    parser.add_argument("--jobs", type=int, default=4, help="pip processes at once")
    args = parser.parse_args()
    targets = [TARGETS_BY_NAME[n] for n in args.target] if args.target else list(TARGETS)
    if args.extras is None:
        extra_sets = [()] + [(e,) for e in extras_in_pyproject()]
    else:
        extra_sets = [tuple(e for e in args.extras.split(",") if e)]
    jobs = [(t, e) for t in targets for e in extra_sets]
    started = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: resolve(*job), jobs))
    for r in results:
        print(("ok   " if r.ok else "FAIL ") + r.describe().replace("\n", "\n     "))
    out = {
        "benchmark": "install_targets",
        "command": "python benchmarks/install_targets.py " + " ".join(sys.argv[1:]),
        "pip": pip_version(),
        "seconds": round(time.perf_counter() - started, 1),
        "targets": {t.name: {"machine": t.machine, "python": t.python,
                             "glibc": ".".join(map(str, t.glibc)), "where": t.where}
                    for t in targets},
        "results": [dataclasses.asdict(r) for r in results],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "install_targets.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} in {out['seconds']} s")
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
