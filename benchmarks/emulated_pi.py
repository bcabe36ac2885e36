"""The edgepose pipeline on an emulated Raspberry Pi, compared with the x86 run.

Builds (once, cached under ~/.cache/edgepose/emulated-pi, or $EDGEPOSE_EMULATED_PI_CACHE):
- an aarch64 sysroot: Raspberry Pi OS Bookworm's Python 3.11 and its libraries, taken
  from Debian bookworm arm64 packages (what Pi OS is built from) with a private apt
  configuration (the host's apt setup is not touched) and unpacked with `dpkg -x`;
- wheel folders for that target: exactly what `pip install edgepose`, `edgepose[picamera2]`
  and `edgepose[tflite-runtime]` resolve to there (benchmarks/install_targets.py, from
  pyproject.toml), installed with `pip install --target --platform ... --no-deps`, and the
  same versions built for this machine, for the reference runs.

Then runs the pipeline (full landmark model, image mode) on shared images under
`qemu-aarch64` user-mode emulation as a Cortex-A72 (Pi 4) and a Cortex-A76 (Pi 5), with
LiteRT and with tflite-runtime, and compares every keypoint, and every output of each
model on identical inputs, with the run of the same wheel versions on this machine.
Timings under emulation mean nothing; correctness does.

    python benchmarks/emulated_pi.py [--images 5] [--litert-versions 2.1.0,2.2.0] [--out PATH]

Needs qemu-user-static (apt-get install qemu-user-static), apt-get and dpkg (Debian or
Ubuntu host), the package registries, and ../shared/data. Writes
benchmarks/results/emulated_pi.json; exits 1 when a run that should match does not, and 2
when something it needs is missing (nothing was checked).

Why the fake /proc/cpuinfo: qemu-user (7.2, Debian 12) passes the host's x86
/proc/cpuinfo through to the emulated program. pytorch/cpuinfo, which XNNPACK and Ruy
use inside ai-edge-litert >= 2.2, finds no ARM processor there and writes out of bounds
in cpuinfo_arm_linux_init (SIGSEGV during allocate_tensors; backtrace taken with
qemu's gdb stub). A real Pi's /proc/cpuinfo lists its ARM cores, so each emulated
"board" gets one through qemu's -L path lookup: <root>/proc/cpuinfo shadows /proc/cpuinfo.
One run keeps the host's file to show the artefact.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import IMAGES, MODELS, RESULTS, ROOT, SHARED, command, write_json
from pi_sysroot import (
    BOARDS,
    TARGET_NAME,
    Unavailable,
    board_root,
    build_sysroot,
    find_qemu,
    prune_wheel_folders,
    wheel_folder,
)

CACHE = Path(os.environ.get("EDGEPOSE_EMULATED_PI_CACHE")
             or Path.home() / ".cache" / "edgepose" / "emulated-pi")

# Tolerances, emulated aarch64 against this machine with the same library versions.
# Each model on identical inputs: landmark x, y in pixels of its 256x256 crop (seen: 0.0003).
TOLERANCE_MODEL_PX = 0.01
# The whole pipeline, keypoint x, y in image pixels (seen: 0.17, median 0.01). Looser than
# the model alone: the crop is resampled from uint8 pixels at positions that OpenCV rounds
# to 1/32 pixel, so a 1e-4 change in the detector's box can shift a crop by 1/32 px, and
# the landmark model turns that into up to a few tenths of a pixel.
TOLERANCE_PX = 0.5
TOLERANCE_Z_PX = 2.0            # z, image pixels (seen: 0.56, 0.92 with LiteRT 1.4)
TOLERANCE_SCORE = 1e-2          # visibility and presence (seen: 0.0015)


# -- worker: runs inside the emulated (or the host) interpreter ------------------------

def worker(runtime: str, threads: int, npz: str, images: list[str]) -> None:
    """Run the pipeline on ``images`` and, on inputs made without OpenCV, each model alone;
    save the keypoints and the model outputs to ``npz``; print one JSON line of facts."""
    import platform
    from importlib import metadata

    import cv2
    import numpy as np

    from edgepose import Pipeline, models
    from edgepose.backends import open_model

    arrays = {}
    facts = {"machine": platform.machine(), "python": platform.python_version()}
    with Pipeline(model="full", detector="detector", runtime=runtime, threads=threads,
                  static_image_mode=True) as pipe:
        facts["runtime"] = pipe.describe()["runtime"]
        for i, path in enumerate(images):
            poses = pipe.process(cv2.imread(path)).poses
            arrays[f"{i}/keypoints"] = np.array([p.keypoints for p in poses],
                                                dtype=np.float32).reshape(-1, 33, 5)
    for role, name, size, scale in (("landmark", "full", 256, (0.0, 1 / 255)),
                                    ("detector", "detector", 224, (-1.0, 1 / 127.5))):
        model = open_model(models.resolve(name, role), runtime=runtime, threads=threads)
        for i, path in enumerate(images):
            x = _nearest_rgb(cv2.imread(path), size).astype(np.float32) * scale[1] + scale[0]
            for j, out in enumerate(model.run(x[None])):
                arrays[f"{i}/{role}/{j}"] = out
        model.close()
    np.savez(npz, **arrays)
    facts["libraries"] = {}
    for dist in ("numpy", "opencv-python-headless", "ai-edge-litert", "tflite-runtime"):
        try:
            facts["libraries"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    print("RESULT " + json.dumps(facts))


def _nearest_rgb(image, size: int):
    """(size, size, 3) RGB by nearest-neighbour indexing: the same bytes on every CPU,
    unlike a resize whose rounding depends on the SIMD code path."""
    h, w = image.shape[:2]
    rows = [r * h // size for r in range(size)]
    cols = [c * w // size for c in range(size)]
    return image[rows][:, cols][..., ::-1]


# -- running and comparing ---------------------------------------------------------------

def run_worker(launcher: list[str], pythonpath: list[str], runtime: str, threads: int,
               images: list[str], timeout: float, extra_env: dict | None = None) -> dict:
    """Run the worker through ``launcher`` (an interpreter, or qemu and one); return its
    facts and arrays, or how it failed."""
    import numpy as np

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_"))}
    env.update(PYTHONPATH=os.pathsep.join(pythonpath), EDGEPOSE_OFFLINE="1",
               EDGEPOSE_MODEL_PATH=str(MODELS), PYTHONNOUSERSITE="1",
               **(extra_env or {}))
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "out.npz")
        cmd = [*launcher, "-s", str(Path(__file__).resolve()), "--worker", runtime,
               str(threads), npz, *images]
        started = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "seconds": timeout}
        seconds = round(time.perf_counter() - started, 1)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                with np.load(npz) as data:
                    arrays = {k: data[k] for k in data.files}
                return {"status": "ok", "seconds": seconds, "arrays": arrays,
                        **json.loads(line[len("RESULT "):])}
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
    if proc.returncode < 0 or "uncaught target signal" in proc.stderr:
        signal = "SIGSEGV" if ("signal 11" in proc.stderr or proc.returncode == -11) else \
            f"signal {-proc.returncode}"
        return {"status": "crashed", "signal": signal, "seconds": seconds, "output": tail}
    return {"status": "error", "returncode": proc.returncode, "seconds": seconds, "output": tail}


def compare(reference: dict, run: dict, images: list[str]) -> dict:
    """Largest differences from the reference: pipeline keypoints per field, and every
    output of each model on identical inputs."""
    import numpy as np

    ref, got = reference["arrays"], run["arrays"]
    problems = []
    keypoints = {"xy_px": 0.0, "z_px": 0.0, "visibility_presence": 0.0}
    for i, image in enumerate(images):
        a, b = ref[f"{i}/keypoints"], got[f"{i}/keypoints"]
        if a.shape != b.shape:
            problems.append(f"{Path(image).name}: {len(a)} poses here, {len(b)} emulated")
            continue
        if a.size:
            d = np.abs(a.astype(np.float64) - b)
            keypoints["xy_px"] = max(keypoints["xy_px"], float(d[..., :2].max()))
            keypoints["z_px"] = max(keypoints["z_px"], float(d[..., 2].max()))
            keypoints["visibility_presence"] = max(keypoints["visibility_presence"],
                                                   float(d[..., 3:].max()))
    models_diff: dict[str, float] = {}
    for key, a in ref.items():
        if key.endswith("/keypoints"):
            continue
        name = key.split("/", 1)[1]  # role/output index, over all images
        d = float(np.abs(a.astype(np.float64) - got[key]).max())
        models_diff[name] = max(models_diff.get(name, 0.0), d)
    landmark_xy = max(float(np.abs(ref[k].reshape(-1, 5)[:, :2].astype(np.float64)
                                   - got[k].reshape(-1, 5)[:, :2]).max())
                      for k in ref if k.endswith("landmark/0"))
    worst = {"keypoints": keypoints, "landmark_model_xy_crop_px": landmark_xy,
             "model_outputs": models_diff}
    matches = (not problems and keypoints["xy_px"] <= TOLERANCE_PX
               and keypoints["z_px"] <= TOLERANCE_Z_PX
               and keypoints["visibility_presence"] <= TOLERANCE_SCORE
               and landmark_xy <= TOLERANCE_MODEL_PX)
    return {"max_abs_diff": _round(worst), "matches": matches, "problems": problems}


def _round(value):
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return float(f"{value:.3g}")


def shared_images(count: int) -> list[str]:
    folder = IMAGES / "mpii"
    images = sorted(str(p) for p in folder.glob("*.jpg"))[:count]
    if not images or not (MODELS / "pose_landmark_full.tflite").is_file():
        raise Unavailable(f"{SHARED} is absent: this check needs the workspace's shared images "
                         "and models")
    return images


def plan(litert_versions: list[str]) -> list[dict]:
    """The emulated runs: board (None = host /proc/cpuinfo), runtime, wheel set, and
    whether it must match x86_64."""
    runs = [
        {"name": "pi4-litert", "board": "pi4", "runtime": "litert", "extras": ()},
        {"name": "pi4-tflite-runtime", "board": "pi4", "runtime": "tflite-runtime",
         "extras": ("tflite-runtime",)},
        {"name": "pi5-litert", "board": "pi5", "runtime": "litert", "extras": ()},
        # NumPy 1.26 and OpenCV 4.11, as edgepose[picamera2] installs for the Pi camera:
        # the tflite-runtime wheel set is that one plus tflite-runtime
        {"name": "pi4-litert-numpy1", "board": "pi4", "runtime": "litert",
         "extras": ("tflite-runtime",)},
        # ai-edge-litert >= 2.2 crashes here: the artefact in this script's docstring
        {"name": "pi4-litert-host-cpuinfo", "board": None, "qemu_cpu": "cortex-a72",
         "runtime": "litert", "extras": (), "expect": "informational"},
        {"name": "pi4-tflite-runtime-host-cpuinfo", "board": None, "qemu_cpu": "cortex-a72",
         "runtime": "tflite-runtime", "extras": ("tflite-runtime",)},
    ]
    for version in litert_versions:
        runs += [{"name": f"pi4-litert-{version}", "board": "pi4", "runtime": "litert",
                  "extras": (), "litert": version},
                 {"name": f"pi4-litert-{version}-host-cpuinfo", "board": None,
                  "qemu_cpu": "cortex-a72", "runtime": "litert", "extras": (),
                  "litert": version, "expect": "informational"}]
    return runs


def emulated_run(spec: dict, qemu: str, sysroot: Path, folder: Path, pins: list[str],
                 images: list[str], args, reference: dict) -> dict:
    """One run under qemu with the wheels in ``folder``, compared with ``reference``
    (the same versions on this machine)."""
    board = spec["board"]
    root = board_root(CACHE, sysroot, board)
    qemu_cpu = BOARDS[board]["qemu_cpu"] if board else spec["qemu_cpu"]
    print(f"{spec['name']}: QEMU_CPU={qemu_cpu}, /proc/cpuinfo of "
          f"{board or 'the x86_64 host'}, runtime {spec['runtime']}")
    result = run_worker([qemu, "-L", str(root), f"{root}/usr/bin/python3.11"],
                        [str(folder), str(ROOT)], spec["runtime"], args.threads, images,
                        args.timeout, {"QEMU_CPU": qemu_cpu})
    entry = {"name": spec["name"], "qemu_cpu": qemu_cpu,
             "proc_cpuinfo": BOARDS[board]["model"] if board else "host (x86_64)",
             "runtime": spec["runtime"], "wheels": pins,
             "expect": spec.get("expect", "match x86_64"), "status": result["status"],
             "emulated_seconds": result["seconds"]}
    if result["status"] == "ok" and reference["status"] == "ok":
        entry["libraries"] = result["libraries"]
        entry.update(compare(reference, result, images))
    elif result["status"] == "ok":
        entry["problems"] = [f"the reference run on this machine failed: {reference}"]
    else:
        entry.update({k: result[k] for k in ("signal", "returncode", "output") if k in result})
    entry["as_expected"] = entry["expect"] != "match x86_64" or entry.get("matches", False)
    if "max_abs_diff" in entry:
        print(f"  ok, keypoints within {entry['max_abs_diff']['keypoints']['xy_px']} px, "
              f"landmark model within "
              f"{entry['max_abs_diff']['landmark_model_xy_crop_px']} crop px")
    else:
        print(f"  {entry['status']} {entry.get('signal', '')}")
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=5, help="how many shared MPII images")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads")
    parser.add_argument("--litert-versions", default="",
                        help="comma-separated older ai-edge-litert versions to try as well")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per emulated run")
    parser.add_argument("--out", type=Path, default=RESULTS / "emulated_pi.json")
    args = parser.parse_args()
    if args.worker:
        runtime, threads, npz, *images = args.worker
        worker(runtime, int(threads), npz, images)
        return
    try:
        ok = check(args)
    except Unavailable as exc:
        print(f"emulated_pi: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if ok else 1)


def check(args: argparse.Namespace) -> bool:
    """Every run of plan(); writes args.out; True when each went as expected."""
    qemu = find_qemu()
    if qemu is None:
        raise Unavailable("qemu-aarch64 is not installed: apt-get install qemu-user-static")
    images = shared_images(args.images)
    started = time.perf_counter()
    sysroot = build_sysroot(CACHE)

    references: dict[tuple, dict] = {}
    runs, used = [], set()
    for spec in plan([v for v in args.litert_versions.split(",") if v]):
        host_folder, _ = wheel_folder(CACHE, spec["extras"], spec.get("litert"), host=True)
        folder, pins = wheel_folder(CACHE, spec["extras"], spec.get("litert"))
        key = (host_folder, spec["runtime"])
        if key not in references:
            print(f"reference: {sys.implementation.cache_tag} on this machine, runtime "
                  f"{spec['runtime']}, same versions")
            references[key] = run_worker([sys.executable], [str(host_folder), str(ROOT)],
                                         spec["runtime"], args.threads, images, args.timeout)
        runs.append(emulated_run(spec, qemu, sysroot, folder, pins, images, args,
                                 references[key]))
        used |= {host_folder, folder}
    prune_wheel_folders(CACHE, used)
    first = next((r["arrays"] for r in references.values() if r["status"] == "ok"), None)
    out = {
        "benchmark": "emulated_pi",
        "command": command(),
        "target": TARGET_NAME,
        "qemu": subprocess.run([qemu, "--version"], capture_output=True,
                               text=True).stdout.splitlines()[0],
        "sysroot_packages": (sysroot / ".edgepose-packages").read_text().split(),
        "images": [str(Path(p).relative_to(SHARED)) for p in images],
        "model": "pose_landmark_full + pose_detection, image mode, "
                 f"{args.threads} threads",
        "tolerance": {"keypoints": {"xy_px": TOLERANCE_PX, "z_px": TOLERANCE_Z_PX,
                                    "visibility_presence": TOLERANCE_SCORE},
                      "landmark_model_xy_crop_px": TOLERANCE_MODEL_PX},
        "references": [{k: r.get(k) for k in ("status", "machine", "python", "runtime",
                                              "libraries")} for r in references.values()],
        "poses_per_image": {Path(p).name: len(first[f"{i}/keypoints"])
                            for i, p in enumerate(images)} if first else None,
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
        "note": "Timings under emulation mean nothing. Runs with the host's /proc/cpuinfo "
                "show what plain qemu-user does: ai-edge-litert >= 2.2 crashes in "
                "cpuinfo_arm_linux_init (XNNPACK's CPU detection) because it reads an x86 "
                "/proc/cpuinfo; a real Pi shows its ARM cores there.",
    }
    write_json(args.out, out, indent=1)
    print(f"wrote {args.out} in {out['seconds']} s")
    return all(r["as_expected"] for r in runs)


if __name__ == "__main__":
    main()
