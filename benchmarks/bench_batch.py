"""Throughput of ``edgepose batch`` (video frames per second, end to end: workers start,
load their models, decode, find poses, write JSON Lines) over copies of the street clip:
the local engine with 1 and 2 workers, and Ray with 1 and 2 worker nodes started here on
127.0.0.1 (a head with no CPU for work, then nodes of one CPU each). Scaling efficiency,
and from the measured per-core rate what a video archive costs in core-hours and how long
a cluster takes over it. Writes benchmarks/results/batch.json.

    python benchmarks/bench_batch.py                      # 8 copies of the whole clip
    python benchmarks/bench_batch.py --frames 50 --no-ray # shorter copies, local only
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, STREET, command, machine, require_shared, use_shared_models, write_json

ARCHIVE_HOURS = 10_000
NODE_SIZES = (1, 10, 50, 100)


def make_copies(folder: Path, copies: int, frames: int | None) -> int:
    """``copies`` of the street clip in ``folder`` (whole, or its first ``frames`` frames
    re-encoded as MJPG at full size); the frames in each."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "street_0.avi"
    if frames is None:
        first.write_bytes(STREET.read_bytes())
    else:
        cap = cv2.VideoCapture(str(STREET))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        writer = cv2.VideoWriter(str(first), cv2.VideoWriter_fourcc(*"MJPG"), cap.get(cv2.CAP_PROP_FPS), size)
        for _ in range(frames):
            ok, image = cap.read()
            if not ok:
                break
            writer.write(image)
        writer.release()
        cap.release()
    for i in range(1, copies):
        (folder / f"street_{i}.avi").write_bytes(first.read_bytes())
    cap = cv2.VideoCapture(str(first))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return count


def measure(label: str, videos: Path, out: Path, **kwargs) -> dict:
    from edgepose import Options
    from edgepose.batch.runner import run_batch

    load = os.getloadavg()[0]
    started = time.perf_counter()
    summary = run_batch([str(videos)], out, Options(threads=1), **kwargs)
    wall = time.perf_counter() - started
    if summary.failed:
        sys.exit(f"bench_batch.py: {label}: {summary.failed[0][0]}: {summary.failed[0][1]}")
    busy = [w["frames"] / w["seconds"] for w in summary.per_worker.values() if w["seconds"]]
    row = {"run": label, "engine": kwargs.get("engine", "local"), "workers": summary.workers,
           "threads": summary.threads, "videos": summary.done, "frames": summary.frames,
           "wall_s": round(wall, 2), "fps": round(summary.frames / wall, 2),
           "busy_fps_per_worker": [round(b, 2) for b in busy], "load_1min_at_start": round(load, 2)}
    print(f"{label:<22} {row['frames']:>6} frames in {wall:6.1f} s: {row['fps']:6.1f} frames/s "
          f"(per worker while busy: {', '.join(f'{b:.1f}' for b in busy)}; load {load:.1f})", flush=True)
    return row


@contextlib.contextmanager
def ray_cluster(nodes: int, temp_root: Path):
    """A Ray head (no CPU for work) and ``nodes`` worker nodes of one CPU each on 127.0.0.1;
    stopped, by process group, at the end."""
    ray = str(Path(sys.executable).with_name("ray"))
    env = dict(os.environ)  # with the token main() set: ray start, ray status and our driver share it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    temp = tempfile.mkdtemp(prefix="ray", dir=temp_root)
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block",
              "--object-store-memory", str(200 * 1024 * 1024)]
    started = []

    def count() -> int:
        done = subprocess.run([ray, "status", "--address", address], capture_output=True, text=True, env=env)
        return done.stdout.count(" node_") if done.returncode == 0 else 0

    try:
        steps = [["--head", "--port", address.split(":")[1], "--num-cpus", "0", "--include-dashboard",
                  "false", "--temp-dir", temp]] + [["--address", address, "--num-cpus", "1"]] * nodes
        for i, extra in enumerate(steps, 1):
            started.append(subprocess.Popen([ray, "start", *extra, *common], env=env, start_new_session=True,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 120
            while count() < i:
                if started[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ray start {' '.join(extra)} did not come up")
                time.sleep(0.5)
        yield address
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in reversed(started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def archive_cost(per_core_fps: float, efficiency: float, fps: float, cores_per_node: int) -> dict:
    """Core-hours for ARCHIVE_HOURS of video at ``fps``, and the wall hours on clusters of
    NODE_SIZES nodes of ``cores_per_node`` cores: ideal (videos are independent: every core
    busy) and at the scaling ``efficiency`` measured here."""
    frames = ARCHIVE_HOURS * 3600 * fps
    core_hours = frames / per_core_fps / 3600
    return {"archive_hours": ARCHIVE_HOURS, "video_fps": fps, "frames": frames,
            "per_core_fps": round(per_core_fps, 2), "core_hours": round(core_hours),
            "cores_per_node": cores_per_node, "efficiency_measured": round(efficiency, 3),
            "cluster_hours_ideal": {n: round(core_hours / (n * cores_per_node), 1) for n in NODE_SIZES},
            "cluster_hours_at_measured_efficiency": {
                n: round(core_hours / (n * cores_per_node * efficiency), 1) for n in NODE_SIZES}}


def best(rows: list[dict], label: str) -> dict:
    """The fastest of the repeats of one configuration (a shared machine only slows runs down)."""
    return max((r for r in rows if r["run"] == label), key=lambda r: r["fps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--frames", type=int, help="frames per copy (default: the whole clip, 205)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over every configuration, in turn; the fastest of each counts")
    parser.add_argument("--no-ray", action="store_true", help="local engine only")
    parser.add_argument("--video-fps", type=float, default=30.0, help="frame rate of the archive costed")
    parser.add_argument("--cores-per-node", type=int, default=16, help="cores of a node costed")
    args = parser.parse_args()
    require_shared("bench_batch.py", STREET)
    use_shared_models()
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    # token authentication with a token made here (nothing written to ~/.ray), one for
    # every cluster of this run: Ray caches the token it read
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                      RAY_USAGE_STATS_ENABLED="0")
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_batch") as tmp:
        tmp = Path(tmp)
        per_copy = make_copies(tmp / "videos", args.copies, args.frames)
        print(f"{args.copies} copies of {STREET.name}, {per_copy} frames each (1280x720), model full, "
              "1 thread per worker", flush=True)
        for round_ in range(args.repeats):
            for n in (1, 2):
                rows.append(measure(f"local, {n} worker(s)", tmp / "videos", tmp / f"local{n}-{round_}", workers=n))
            if not args.no_ray:
                for n in (1, 2):
                    with ray_cluster(n, tmp) as address:
                        rows.append(measure(f"ray, {n} node(s)", tmp / "videos", tmp / f"ray{n}-{round_}",
                                            engine="ray", address=address, workers=n))
    load_after = os.getloadavg()
    one, two = best(rows, "local, 1 worker(s)"), best(rows, "local, 2 worker(s)")
    efficiency = {"local": round(two["fps"] / (2 * one["fps"]), 3)}
    if not args.no_ray:
        efficiency["ray"] = round(best(rows, "ray, 2 node(s)")["fps"] / (2 * best(rows, "ray, 1 node(s)")["fps"]), 3)
    per_core = one["busy_fps_per_worker"][0]
    cost = archive_cost(per_core, efficiency["local"], args.video_fps, args.cores_per_node)
    print("scaling efficiency, 1 -> 2 workers (fastest runs): " + ", ".join(f"{k} {v:.2f}" for k, v in efficiency.items()))
    print(f"{ARCHIVE_HOURS:,} h of {args.video_fps:g} fps video = {cost['frames']:,.0f} frames; at "
          f"{per_core:.1f} frames/s per core: {cost['core_hours']:,} core-hours; on nodes of "
          f"{args.cores_per_node} cores, ideal / at efficiency {efficiency['local']:.2f}: " + ", ".join(
              f"{n} node(s) {cost['cluster_hours_ideal'][n]:,} / {h:,} h"
              for n, h in cost["cluster_hours_at_measured_efficiency"].items()))
    path = write_json(RESULTS / "batch.json", {
        "command": command(), "machine": machine(),
        "setup": {"copies": args.copies, "frames_per_copy": per_copy, "clip": STREET.name,
                  "size": [1280, 720], "options": {"model": "full", "threads": 1, "max_people": 1},
                  "measured": "end to end, from run_batch's start (workers start, load models) to "
                              "its end; busy: frames / seconds of the videos a worker ran; the "
                              "fastest of --repeats rounds counts",
                  "ray": "head with --num-cpus 0 and 1 or 2 worker nodes of --num-cpus 1, all on "
                         "this machine (127.0.0.1)"},
        "load_average_1_5_15min": {"before": [round(x, 2) for x in load_before],
                                   "after": [round(x, 2) for x in load_after]},
        "runs": rows, "scaling_efficiency": efficiency, "archive": cost})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
