"""Start-up to the first pose, whole process: a fresh Python builds a Pipeline and finds
the person in one photo, as a user's script or `edgepose run photo.jpg` does. Measured per
configuration, alternating with another checkout (``--against``) in the same run, so the
ratio is fair on a shared, noisy machine. Writes benchmarks/results/startup.json.

    git worktree add ../before d71032f    # the checkout to compare with
    python benchmarks/bench_startup.py --against ../before --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import IMAGES, RESULTS, ROOT, command, machine, require_shared, use_shared_models, write_json

PHOTO = IMAGES / "mpii" / "004645041.jpg"
# configuration name -> Pipeline keyword arguments (a Python literal)
CONFIGS = {
    "blazepose full": "dict(model='full', threads=2)",
    "blazepose+centernet full": "dict(model='full', detector='blazepose+centernet', threads=2, max_people=4)",
    "movenet-thunder": "dict(model='movenet-thunder', threads=2)",
}
SCRIPT = """
import cv2
from edgepose import Pipeline
with Pipeline(static_image_mode=True, **{options}) as pipe:
    assert pipe.process(cv2.imread({photo!r})).poses
"""


def one_run(checkout: Path, options: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(options=options, photo=str(PHOTO))],
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: {done.stderr.strip().splitlines()[-1]}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to measure alternately")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    require_shared("bench_startup.py", PHOTO)
    use_shared_models()
    checkouts = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    rows = []
    for name in args.configs.split(","):
        times: dict[str, list[float]] = {label: [] for label in checkouts}
        for _ in range(args.runs):
            for label, path in checkouts.items():
                try:
                    times[label].append(one_run(path, CONFIGS[name]))
                except RuntimeError as exc:
                    print(f"{name}: {label} cannot run it ({exc})")
                    times.pop(label)
                    checkouts = {k: v for k, v in checkouts.items() if k != label}
        checkouts = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
        if not any(times.values()):
            continue
        times = {k: v for k, v in times.items() if v}
        row = {"config": name, **{f"{label}_ms_median": round(statistics.median(v), 1) for label, v in times.items()},
               "runs": times}
        if "against" in times:
            row["ratio_this_vs_against"] = round(statistics.median(times["this"]) / statistics.median(times["against"]), 3)
        rows.append(row)
        print(f"{name:26s} " + "  ".join(f"{k} {v}" for k, v in row.items() if k.endswith(("median", "against"))))
    out = write_json(RESULTS / "startup.json", {
        "benchmark": "start-up to the first pose on one photo, whole process (python -c, median)",
        "command": command(), "against": str(args.against) if args.against else None,
        "machine": machine(), "results": rows})
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
