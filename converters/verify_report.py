"""A verification report (:mod:`converters.verify`) written next to the model it proves:
``NAME.verify.json`` (the report as it is) and ``NAME.verify.md`` (the verdict, the
source-against-result table, landmark and people figures, and every output's error)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from converters import verify_pose

log = logging.getLogger(__name__)

def write_report(result: str | os.PathLike, report: dict) -> tuple[Path, Path]:
    base = Path(str(result))
    json_path = base.with_name(base.name + ".verify.json")
    md_path = base.with_name(base.name + ".verify.md")
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    log.info("wrote %s and %s", json_path, md_path)
    return json_path, md_path


def markdown(report: dict) -> str:
    g = report["gate"]
    res, src = report["result"], report["source"]
    lines = [f"# Verification of {Path(res['path']).name}", "",
             f"**{'PASSED' if g['passed'] else 'FAILED'}** ({g['checked']}; max AP drop {g['max_ap_drop']})",
             ""]
    lines += [f"- {r}" for r in g["reasons"]]
    if not g["passed"] and g["fallback"]:
        lines.append(f"- fallback: `--variant {g['fallback']}`")
    lines += ["", "| | source | result |", "| --- | --- | --- |",
              f"| file | {Path(src['path']).name} | {Path(res['path']).name} |",
              f"| variant | | {res['variant'] or '-'} |",
              f"| size | {src['bytes'] / 1e6:.2f} MB | {res['bytes'] / 1e6:.2f} MB |"]
    if "latency_ms" in report:
        lat = report["latency_ms"]
        if "source" in lat:
            lines.append(f"| latency ({lat['threads']} threads, median) | {lat['source']['p50']:.2f} ms "
                         f"| {lat['result']['p50']:.2f} ms ({report['speedup']:.2f}x) |")
        else:  # a source that is not a runtime model (a TF.js graph): the result alone
            lines.append(f"| latency ({lat['threads']} threads, median) | | {lat['result']['p50']:.2f} ms |")
    acc = report.get("accuracy")
    if acc:
        for key in ("AP", "AR", "PCK@0.2"):
            a, b = acc["source"]["mean"][key], acc["result"]["mean"][key]
            lines.append(f"| {key} (mean of {len(acc['source']['sets'])} sets) | {_f(a)} | {_f(b)} |")
    lm = report.get("landmarks")
    if lm:
        lines += ["", f"Landmarks on {report['samples']} person crops (256 px): mean error "
                      f"{lm['px_mean']:.2f} px, p95 {lm['px_p95']:.2f} px, max {lm['px_max']:.2f} px; "
                      f"presence agreement {_f(lm.get('presence_agreement'))}, visibility agreement "
                      f"{lm['visibility_agreement']:.3f}; worst: "
                      + ", ".join(f"{k} {v:.2f} px" for k, v in lm["worst_landmarks"].items())]
    lines += verify_pose.markdown_lines(report) + [
        "", "| output | shape | role | max abs | mean abs | mean / RMS |", "| --- | --- | --- | --- | --- | --- |"]
    for name, o in report["outputs"].items():
        lines.append(f"| {name} | {o['shape']} | {o['role'] or ''} | {o['max_abs']:.4g} | "
                     f"{o['mean_abs']:.4g} | {_f(o['relative'])} |")
    return "\n".join(lines) + "\n"


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"
