"""`pip install edgepose[...]` resolves where users deploy: Linux aarch64 and x86_64,
CPython 3.10-3.12 (benchmarks/install_targets.py). Requirements come from pyproject.toml
with markers evaluated for each target; pip resolves them from the package registry with
binary wheels only, reading metadata (nothing is installed), with whatever pip this
Python has (older ones too). The registry tests (marker ``registry``, about a minute:
``-m "not registry"`` leaves them out) skip when it cannot be reached; the marker tests
need no network."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


it = _load("install_targets")

# Extras for an x86_64 workstation only, each resolved on its own: the converters' tool
# environments (they cannot share one venv, docs/converters.md), and the CUDA build of ONNX
# Runtime, whose aarch64 wheels on PyPI are built for Arm servers (SBSA), not for Jetson,
# which takes NVIDIA's own builds (docs/devices.md). Every other extra is for devices too:
# all of them must resolve together on every target.
WORKSTATION_ONLY = {"onnxruntime-gpu", "convert-quant", "convert-tf"}
# Extras that exclude another one (two MediaPipe lines: numpy<2 and mediapipe<=0.10.21
# against mediapipe>=0.10.30): resolved alone, on one target of each machine.
EXCLUSIVE = {"mediapipe-legacy"}
# (extra, Python) pairs known not to install, each with its reason; strict: a gap that
# closes fails the test, so the entry goes.
KNOWN_GAPS = {
    ("convert-tf", "3.12"): "convert-tf pins onnxsim<0.5, which has no Python 3.12 wheels",
}
RUNTIMES = {"ai-edge-litert", "tflite-runtime"}
TARGET_IDS = [t.name for t in it.TARGETS]
X86_TARGET_IDS = [t.name for t in it.TARGETS if t.machine == "x86_64"]


def device_extras() -> tuple[str, ...]:
    return tuple(e for e in it.extras_in_pyproject() if e not in WORKSTATION_ONLY | EXCLUSIVE)


def workstation_extras() -> list[str]:
    return [e for e in it.extras_in_pyproject() if e in WORKSTATION_ONLY]


# mediapipe-legacy alone, on one target of each machine (the regression test below)
MEDIAPIPE_TARGETS = {"pi-bookworm-aarch64-cp311": "0.10.18", "debian12-x86_64-cp311": "0.10.21"}


def jobs_for(target) -> list[tuple[str, ...]]:
    jobs = [(), device_extras()]
    if target.name in MEDIAPIPE_TARGETS:
        jobs += [("mediapipe-legacy",), ("mediapipe",)]
    if target.machine == "x86_64":
        jobs += [(e,) for e in workstation_extras()]
    return jobs


# -- markers, no network ---------------------------------------------------------------

@pytest.mark.parametrize("name", TARGET_IDS)
def test_every_target_gets_a_tflite_runtime(name):
    target = it.TARGETS_BY_NAME[name]
    names = {r.name for r in it.requirements_for(target)}
    assert names & RUNTIMES, f"plain `pip install edgepose` brings no TFLite runtime on {name}"


def test_tflite_runtime_extra_only_where_it_has_wheels():
    """tflite-runtime 2.14 has no Python 3.12 wheels and needs NumPy 1.x."""
    for target in it.TARGETS:
        reqs = it.requirements_for(target, ("tflite-runtime",))
        if target.python_version == "3.12":
            assert "tflite-runtime" not in {r.name for r in reqs}
        else:
            assert "tflite-runtime" in {r.name for r in reqs}
            assert any(r.name == "numpy" and not r.specifier.contains("2.0") for r in reqs)


def test_mediapipe_legacy_extra_keeps_numpy_1():
    """The legacy mediapipe wheels are built against NumPy 1.x; 0.10.14 does not declare it."""
    for target in it.TARGETS:
        numpy = [r for r in it.requirements_for(target, ("mediapipe-legacy",)) if r.name == "numpy"]
        assert any(not r.specifier.contains("2.0") for r in numpy), target.name


def test_mediapipe_extras_keep_one_opencv_4():
    """MediaPipe brings opencv-contrib-python into our cv2 folder: each extra holds it to the
    range of opencv-python-headless, below OpenCV 5 (unpinned it resolved to 5.1)."""
    for extra in ("mediapipe", "mediapipe-legacy"):
        for target in it.TARGETS:
            reqs = it.requirements_for(target, (extra,))
            contrib = [r for r in reqs if r.name == "opencv-contrib-python"]
            headless = [r for r in reqs if r.name == "opencv-python-headless"]
            assert contrib and not any(r.specifier.contains("5.0.0.93") for r in contrib), extra
            for version in ("4.11.0.86", "4.13.0.92"):
                assert all(r.specifier.contains(version) for r in contrib) == \
                    all(r.specifier.contains(version) for r in headless), (extra, version)


def test_opencv_stays_below_5():
    """OpenCV 5.0 resamples crops differently: keypoints moved by up to 15 px."""
    for target in it.TARGETS:
        opencv = [r for r in it.requirements_for(target) if r.name == "opencv-python-headless"]
        assert opencv and not any(r.specifier.contains("5.0.0.93") for r in opencv)


def test_unknown_extra_is_named():
    with pytest.raises(ValueError, match="no extra 'nope'"):
        it.requirements_for(it.TARGETS[0], ("nope",))


def _report(requires_dist: list[str], extra_installed: dict[str, str] | None = None) -> dict:
    install = [{"metadata": {"name": "pkg", "version": "1.0", "requires_dist": requires_dist}}]
    for name, version in (extra_installed or {}).items():
        install.append({"metadata": {"name": name, "version": version}})
    return {"install": install}


def test_unmet_uses_the_targets_markers():
    """pip evaluates dependency markers for the interpreter running it; the check after
    it evaluates them for the target (the bug: exceptiongroup missing for 3.10)."""
    cp310 = it.TARGETS_BY_NAME["jetson-jp6-aarch64-cp310"]
    cp311 = it.TARGETS_BY_NAME["pi-bookworm-aarch64-cp311"]
    report = _report(["exceptiongroup>=1; python_version < '3.11'",
                      "ruy; platform_machine == 'x86_64'"])
    assert it._unmet(report, cp311, []) == []
    problems = it._unmet(report, cp310, [])
    assert len(problems) == 1 and problems[0].startswith("exceptiongroup>=1"), problems


def test_unmet_checks_versions_and_requested_extras():
    from packaging.requirements import Requirement

    target = it.TARGETS_BY_NAME["debian12-x86_64-cp311"]
    report = _report(["numpy<2", "jinja2; extra == 'docs'"], {"numpy": "2.1.0"})
    assert it._unmet(report, target, []) == ["numpy<2 (needed by pkg, resolved 2.1.0)"]
    problems = it._unmet(report, target, [Requirement("pkg[docs]")])
    assert any(p.startswith("jinja2") for p in problems), problems


def test_an_unreachable_registry_is_told_apart_from_a_missing_wheel(monkeypatch, tmp_path):
    """The registry tests skip, rather than fail, on a machine without the network."""
    import os

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(it.RegistryUnreachable, match="127.0.0.1"):
        it.resolve(it.TARGETS[0])


# -- the registry ------------------------------------------------------------------------
registry = pytest.mark.registry


@pytest.fixture(scope="module")
def resolutions():
    """Futures of every resolution the tests below need, started together: pip spends
    most of its time waiting on the registry."""
    probe = it.TARGETS[0]
    try:
        first = it.resolve(probe)
    except it.RegistryUnreachable as exc:
        pytest.skip(f"the package registry cannot be reached, nothing checked: {exc}")
    jobs: dict[tuple[str, tuple[str, ...]], Future] = {}
    with ThreadPoolExecutor(4) as pool:
        for target in it.TARGETS:
            for extras in jobs_for(target):
                if (target.name, extras) == (probe.name, ()):
                    done: Future = Future()
                    done.set_result(first)
                    jobs[(target.name, extras)] = done
                else:
                    jobs[(target.name, extras)] = pool.submit(it.resolve, target, extras)
        yield jobs, pool


def _result(future: Future):
    try:
        return future.result()
    except it.RegistryUnreachable as exc:
        pytest.skip(f"the package registry cannot be reached, nothing checked: {exc}")


@registry
@pytest.mark.parametrize("name", TARGET_IDS)
def test_runtime_resolves(resolutions, name):
    jobs, _ = resolutions
    result = _result(jobs[(name, ())])
    assert result.ok, result.describe()
    assert set(result.packages) & RUNTIMES, f"no TFLite runtime resolved: {result.describe()}"


@registry
@pytest.mark.parametrize("name", TARGET_IDS)
def test_device_extras_resolve(resolutions, name):
    """The extras a device may use, together; when that fails, each alone names the one
    that has no wheel there."""
    jobs, pool = resolutions
    target = it.TARGETS_BY_NAME[name]
    extras = device_extras()
    if _result(jobs[(name, extras)]).ok:
        return
    alone = list(pool.map(lambda e: it.resolve(target, (e,)), extras))
    failed = [r.describe() for r in alone if not r.ok]
    assert failed, "each extra resolves alone but not together: " + ", ".join(extras)
    pytest.fail("\n\n".join(failed))


@registry
@pytest.mark.parametrize("name", sorted(MEDIAPIPE_TARGETS))
def test_mediapipe_legacy_extra_resolves_to_the_newest_build_with_models(resolutions, name):
    """Bug: with OpenCV >= 4.12 (NumPy 2 only) pip backtracked mediapipe to 0.10.14, which
    does not declare numpy<2, and paired it with NumPy 2."""
    jobs, _ = resolutions
    result = _result(jobs[(name, ("mediapipe-legacy",))])
    assert result.ok, result.describe()
    packages = {k.lower(): v for k, v in result.packages.items()}
    assert packages["mediapipe"] == MEDIAPIPE_TARGETS[name], result.describe()
    assert packages["numpy"].startswith("1."), result.describe()


@registry
@pytest.mark.parametrize("name", sorted(MEDIAPIPE_TARGETS))
def test_mediapipe_extra_resolves_to_a_tasks_release_with_numpy_2(resolutions, name):
    """The Tasks engine's extra: a current release (>= 0.10.30, no legacy API), NumPy 2,
    and one OpenCV 4.x release for both cv2 builds."""
    from packaging.version import Version

    jobs, _ = resolutions
    result = _result(jobs[(name, ("mediapipe",))])
    assert result.ok, result.describe()
    packages = {k.lower(): v for k, v in result.packages.items()}
    assert Version(packages["mediapipe"]) >= Version("0.10.30"), result.describe()
    assert packages["numpy"].startswith("2."), result.describe()
    assert packages["opencv-contrib-python"] == packages["opencv-python-headless"], result.describe()
    assert packages["opencv-python-headless"].startswith("4."), result.describe()


@registry
@pytest.mark.parametrize("extra", workstation_extras())
@pytest.mark.parametrize("name", X86_TARGET_IDS)
def test_workstation_extra_resolves(resolutions, request, name, extra):
    jobs, _ = resolutions
    gap = KNOWN_GAPS.get((extra, it.TARGETS_BY_NAME[name].python_version))
    if gap:
        request.applymarker(pytest.mark.xfail(reason=gap, strict=True))
    result = _result(jobs[(name, (extra,))])
    assert result.ok, result.describe()


# pip 23.2 (what `python3.11 -m venv` brings) takes --platform only with --target; pip 22.0
# (Ubuntu 22.04's python3-pip) has no --dry-run --report at all.
OLD_PIPS = ["23.2.1", "22.0.2"]


@registry
@pytest.mark.parametrize("pip", OLD_PIPS)
def test_an_older_pip_resolves_the_same_packages(resolutions, tmp_path, pip):
    """The resolution runs with whatever pip the interpreter has: that pip, put first on
    PYTHONPATH of a child process, resolves the same packages as the current one."""
    if pip == "22.0.2" and sys.version_info >= (3, 12):
        pytest.skip("pip 22.0 does not run on Python 3.12")
    jobs, _ = resolutions
    current = _result(jobs[(it.TARGETS[0].name, ())])
    folder = tmp_path / "pip"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--only-binary=:all:", "--target", str(folder), f"pip=={pip}"],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and any(e in out for e in it._NETWORK_ERRORS):
        pytest.skip(f"the package registry cannot be reached, nothing checked: {it._last_lines(out)}")
    assert proc.returncode == 0, out
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import install_targets as it; "
            "r = it.resolve(it.TARGETS[0]); "
            "print(json.dumps([str(it._own_pip()), it.pip_version(), r.ok, r.packages, r.describe()]))")
    env = {**os.environ, "PYTHONPATH": str(folder)}  # that pip in place of this environment's
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    own, used, ok, packages, described = json.loads(proc.stdout.strip().splitlines()[-1])
    assert own == pip, f"the child ran pip {own}, not {pip}"
    # pip < 22.2 (no --dry-run --report) gets a current pip installed for it
    assert ("installed for pip" in used) == (it.Version(pip) < it.MIN_PIP), used
    assert ok, described
    # a dependency's version may differ between pip releases; the packages may not
    assert sorted(packages) == sorted(current.packages), (described, current.describe())
