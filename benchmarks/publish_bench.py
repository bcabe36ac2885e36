"""The published speed figures: the README table between its `bench:start` / `bench:end`
markers and benchmarks/results/bench_street.md, regenerated from
benchmarks/results/bench_street.json (a second, no measuring);
with --measure, first `edgepose bench` on the street video for every model, backend and
thread count (about 2.5 minutes on 2 cores), into benchmarks/results/bench_street.{json,md,png}.

    python benchmarks/publish_bench.py                  # the table from the saved results
    python benchmarks/publish_bench.py --measure [--backends tflite,mediapipe,mediapipe-tasks]
                                       [--runs 100]

Run it with --measure on your own device and compare your bench_street.md with ours.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import RESULTS, ROOT, STREET, command, use_shared_models

README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def publish(report: dict) -> None:
    """bench_street.md and the README table, both from ``report`` (so neither lags the JSON)."""
    from edgepose.bench import markdown_table

    table = markdown_table(report)
    (RESULTS / "bench_street.md").write_text(table)
    text = README.read_text()
    if START not in text or END not in text:
        sys.exit(f"README.md has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table}\n(`python benchmarks/publish_bench.py`, "
                      f"from benchmarks/results/bench_street.json)\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tflite,mediapipe,mediapipe-tasks")
    parser.add_argument("--models", default="lite,full,heavy")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--measure", action="store_true",
                        help="run the benchmark first (about 2.5 minutes) instead of only "
                             "regenerating the README table from the saved results")
    args = parser.parse_args()

    if args.measure:
        from edgepose.bench import bench, write_report

        use_shared_models()
        report, samples = bench(str(STREET), args.models.split(","), args.backends.split(","),
                                [int(t) for t in args.threads.split(",")], warmup=args.warmup,
                                runs=args.runs, max_frames=300, command=command())
        write_report(report, samples, RESULTS, name="bench_street")
    report = json.loads((RESULTS / "bench_street.json").read_text())
    publish(report)
    print((RESULTS / "bench_street.md").read_text())


if __name__ == "__main__":
    main()
