"""Every quantized variant of the BlazePose landmark models (lite / full / heavy): size,
latency, landmark error, AP on the shared annotated images, the accuracy gate, and the
speed-vs-accuracy Pareto front as a PNG.

Calibration and test crops come from ../shared/data/images (detector -> ROI -> warp,
alternate crops for calibration and test). Latency: LiteRT, 2 threads, the variant and
its float source invoked alternately, median after warm-up. AP: mean OKS AP over the six
shared sets, edgepose Pipeline, static image mode, max_people 10. Converted files go to
$EDGEPOSE_CACHE/converted/bench (never into the repo).

Needs ai-edge-quantizer: run it with the convert-quant environment's Python (it re-runs
itself there when started from another one)::

    python benchmarks/bench_converters.py [--models lite full heavy] [--variants ...]
    python benchmarks/bench_converters.py --plot-only   # redraw the PNG from the JSON

Writes benchmarks/results/converters.json and converters_pareto.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
IMAGES = SHARED / "images"
MODELS = SHARED / "models"
RESULTS = ROOT / "benchmarks" / "results"
SETS = ("mpii", "aic", "crowdpose", "mhp", "jhmdb", "exlpose")
VARIANTS = ("float32", "float16", "int8-weight", "int8-dynamic", "int8-mixed", "int8-static")


def run(args) -> dict:
    from converters import calibration, quantize, tools, verify
    from converters.tools import converted_dir
    from edgepose.profiler import device_facts

    out_dir = converted_dir() / "bench"
    rows = []
    for name in args.models:
        source = str(MODELS / f"pose_landmark_{name}.tflite")
        crops = calibration.person_crops(IMAGES, landmark=source, limit=None)
        calib, test = crops[0::2][:128], crops[1::2][:256]
        for variant in args.variants:
            t0 = time.perf_counter()
            out = out_dir / f"pose_landmark_{name}_{variant}.tflite"
            quantize.quantize_file(source, variant, out, calib, args.float_tail)
            convert_s = time.perf_counter() - t0
            r = verify.verify(source, out, test, [IMAGES / s for s in SETS], variant=variant).report
            acc = r["accuracy"]
            rows.append({
                "model": name, "variant": variant, "file": out.name, "bytes": r["result"]["bytes"],
                "source_bytes": r["source"]["bytes"], "convert_s": round(convert_s, 2),
                "latency_ms": r["latency_ms"]["result"]["p50"],
                "source_latency_ms": r["latency_ms"]["source"]["p50"], "speedup": r["speedup"],
                "landmark_px_mean": r["landmarks"]["px_mean"], "landmark_px_p95": r["landmarks"]["px_p95"],
                "presence_agreement": r["landmarks"].get("presence_agreement"),
                "visibility_agreement": r["landmarks"]["visibility_agreement"],
                "AP": acc["result"]["mean"]["AP"], "source_AP": acc["source"]["mean"]["AP"],
                "AP_per_set": {k: v["AP"] for k, v in acc["result"]["sets"].items()},
                "gate_passed": r["gate"]["passed"], "gate_reasons": r["gate"]["reasons"],
            })
            print(f"{name:5} {variant:12} {rows[-1]['bytes'] / 1e6:6.2f} MB "
                  f"{rows[-1]['latency_ms']:6.2f} ms (float {rows[-1]['source_latency_ms']:6.2f}, "
                  f"{rows[-1]['speedup']:.2f}x) {rows[-1]['landmark_px_mean']:6.2f} px  AP "
                  f"{rows[-1]['AP']:.3f} (float {rows[-1]['source_AP']:.3f}) "
                  f"{'pass' if rows[-1]['gate_passed'] else 'FAIL'}", flush=True)
    return {
        "benchmark": "quantized variants of the BlazePose landmark models",
        "command": "python benchmarks/bench_converters.py " + " ".join(sys.argv[1:]),
        "device": device_facts(), "environment": tools.environment_facts(),
        "definitions": {
            "latency_ms": "LiteRT, 2 threads, median ms per invoke after warm-up; variant and float "
                          "source invoked alternately (shared machine: compare speedup, not ms)",
            "landmark_px_mean": "mean distance of the 33 body landmarks (raw x, y) from the float "
                                "source's, in 256-crop pixels, on held-out person crops",
            "AP": "mean OKS AP over the shared sets " + ", ".join(SETS)
                  + " (edgepose Pipeline, static image mode, max_people 10)",
            "gate": f"AP drop <= {verify.MAX_AP_DROP} and no collapse",
            "float_tail": args.float_tail,
        },
        "calibration": {"images": str(IMAGES.relative_to(ROOT.parent)), "crops": "alternate "
                        "person crops (detector -> ROI -> warp, + tracking ROI, + mirrored)"},
        "results": rows,
        "pareto": pareto(rows),
    }


def pareto(rows: list[dict]) -> list[str]:
    """model/variant keys on the speed-vs-AP front (no other row is both faster and better)."""
    front = []
    for r in rows:
        dominated = any(o is not r and o["latency_ms"] <= r["latency_ms"] and o["AP"] >= r["AP"]
                        and (o["latency_ms"] < r["latency_ms"] or o["AP"] > r["AP"]) for o in rows)
        if not dominated:
            front.append(f"{r['model']}/{r['variant']}")
    return front


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = {"lite": "o", "full": "s", "heavy": "D"}
    for r in rows:
        x = r["latency_ms"]
        ax.scatter(x, r["AP"], marker=markers.get(r["model"], "x"),
                   color="tab:green" if r["gate_passed"] else "tab:red", s=50)
        ax.annotate(f"{r['model']} {r['variant']}", (x, r["AP"]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    front = sorted((r for r in rows if f"{r['model']}/{r['variant']}" in report["pareto"]),
                   key=lambda r: r["latency_ms"])
    ax.plot([r["latency_ms"] for r in front], [r["AP"] for r in front], "--", color="gray",
            label="Pareto front")
    ax.set_xlabel("ms per invoke (LiteRT, 2 threads, median)")
    ax.set_ylabel("mean OKS AP, shared annotated sets")
    ax.set_title("BlazePose landmark variants: green passed the gate, red failed")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lite", "full", "heavy"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--float-tail", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "converters.json")
    parser.add_argument("--plot-only", action="store_true", help="redraw the PNG from --out")
    args = parser.parse_args()
    png = args.out.with_name(args.out.stem + "_pareto.png")
    if args.plot_only:
        plot(json.loads(args.out.read_text()), png)
        print(f"wrote {png}")
        return
    if not IMAGES.is_dir() or not MODELS.is_dir():
        sys.exit(f"bench_converters: {SHARED} is absent: this benchmark needs the shared data")
    os.environ.setdefault("EDGEPOSE_MODEL_PATH", str(MODELS))
    os.environ.setdefault("EDGEPOSE_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from converters import tools

    if not tools.available("ai-edge-quantizer"):
        python = tools.environment_python("convert-quant")
        if python is None:
            sys.exit("bench_converters: " + tools.install_hint("ai-edge-quantizer"))
        sys.exit(subprocess.call([str(python), __file__, *sys.argv[1:]]))
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    try:
        plot(report, png)
        print(f"wrote {png}")
    except ImportError:
        print(f"matplotlib is not here: draw the PNG with `python {Path(__file__).name} --plot-only` "
              "from an environment that has it")


if __name__ == "__main__":
    main()
