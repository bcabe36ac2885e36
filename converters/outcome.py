"""What a conversion run tells the user at the end: one line per verified file, and for
``convert tfjs`` a table of every file written, passed or failed and why, and what to use.

Exit codes of ``edgepose convert`` (the same for every step):

- 0: every file you rely on passed its gate;
- 1: an error (bad input, a missing tool): one line on stderr;
- 2: a file you rely on failed its gate. For ``convert tfjs`` those are each model's
  float32 ``.tflite`` (what ``--model NAME`` / ``--detector NAME`` runs) and every variant
  named with ``--variant``; a float16 or ONNX file made only because the default makes all
  three is reported as FAILED in the table, kept for inspection, and leaves the exit code 0.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

EXIT_FAILED_GATE = 2
DEFAULT_FILE = "float32"  # the variant the runtime finds by name (converted/NAME.tflite)


@dataclasses.dataclass
class FileResult:
    """One converted file and its verification."""

    model: str
    variant: str
    path: Path
    report: dict | None     # the verification report; None when not verified
    relied_on: bool         # its failure fails the run (exit 2)
    runs_as: str | None = None  # the flag that runs it by name ("--detector centernet")

    @property
    def passed(self) -> bool | None:
        return None if self.report is None else bool(self.report["gate"]["passed"])

    @property
    def reasons(self) -> str:
        return "; ".join(self.report["gate"]["reasons"]) if self.report else ""


def tfjs_results(model: str, files: dict[str, Path], reports: dict[str, dict],
                 asked: list[str] | None, runs_as: str | None = None) -> list[FileResult]:
    """The files one TF.js model became; which of them the run relies on (see module doc).
    ``runs_as``: the flag that runs its float32 file by name, when it went where the
    runtime looks (e.g. "--detector centernet")."""
    return [FileResult(model, variant, Path(path), reports.get(variant),
                       relied_on=variant == DEFAULT_FILE or variant in (asked or ()), runs_as=runs_as)
            for variant, path in files.items()]


def tfjs_table(results: list[FileResult]) -> str:
    """A Markdown table: model, variant, file, size, error against TensorFlow, latency, gate."""
    rows = ["| model | variant | file | MB | max abs error vs TensorFlow | ms (p50) | gate |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        error = latency = "-"
        if r.report:
            worst = max(r.report["outputs"].values(), key=lambda o: o["relative"] or 0.0)
            error = f"{worst['max_abs']:.2g}"
            latency = f"{r.report['latency_ms']['result']['p50']:.1f}"
        gate = {True: "PASSED", False: "FAILED", None: "not verified"}[r.passed]
        rows.append(f"| {r.model} | {r.variant} | {r.path.name} | {os.path.getsize(r.path) / 1e6:.1f} "
                    f"| {error} | {latency} | {gate} |")
    return "\n".join(rows)


def tfjs_verdict(results: list[FileResult]) -> tuple[list[str], int]:
    """Plain sentences after the table, and the exit code: which files failed, why, whether
    that fails the run, and the file to use instead."""
    failed = [r for r in results if r.passed is False]
    checked = [r for r in results if r.passed is not None]
    if not failed:
        return ([f"All {len(checked)} verified file(s) match TensorFlow within their tolerance."]
                if checked else []), 0
    lines = [f"{len(checked) - len(failed)} of {len(checked)} verified files passed; "
             f"{len(failed)} failed its gate:"]
    for r in failed:
        line = f"  {r.model} {r.variant} ({r.path}): {r.reasons}."
        if r.relied_on:
            line += " This file is one you rely on: the run fails (exit 2)."
        else:
            use = _passing_default(results, r.model)
            line += f" Not used by name, kept for inspection (report: {r.path.name}.verify.md)"
            if use:
                line += f"; use {use.path.name} ({use.variant}, passed)"
                line += f", which `{use.runs_as}` runs." if use.runs_as else "."
            else:
                line += "."
        lines.append(line)
    return lines, EXIT_FAILED_GATE if any(r.relied_on for r in failed) else 0


def print_outcome(results: list[FileResult]) -> int:
    """Print the table of every file, then the verdict; the run's exit code."""
    print()
    print(tfjs_table(results))
    lines, code = tfjs_verdict(results)
    for line in lines:
        print(line)
    return code


def _passing_default(results: list[FileResult], model: str) -> FileResult | None:
    return next((r for r in results if r.model == model and r.variant == DEFAULT_FILE
                 and r.passed), None)


# -- one line per verified file (quantize, verify, to-onnx, from-onnx) ------------------------
def summary(r: dict) -> str:
    """One line of a verification report: errors, latency, AP, PASSED or FAILED."""
    parts = []
    if "landmarks" in r:
        parts.append(f"landmarks {r['landmarks']['px_mean']:.2f} px mean on {r['samples']} crops")
    else:
        worst = max(r["outputs"].values(), key=lambda o: o["max_abs"])
        parts.append(f"max abs error {worst['max_abs']:.3g}")
    if r.get("people", {}).get("keypoint_px_max") is not None:
        parts.append(f"keypoints {r['people']['keypoint_px_max']:.3g} px max on "
                     f"{r['people']['person_anchors']} person anchors")
    if "latency_ms" in r:
        parts.append(f"{r['latency_ms']['result']['p50']:.1f} ms vs {r['latency_ms']['source']['p50']:.1f} ms")
    if "accuracy" in r:
        parts.append(f"AP {r['accuracy']['result']['mean']['AP']:.3f} vs {r['accuracy']['source']['mean']['AP']:.3f}")
    parts.append("PASSED" if r["gate"]["passed"] else "FAILED")
    return ", ".join(parts) + f" (report: {r['result']['path']}.verify.md)"


def failure(v) -> str:
    """The paragraph :func:`converters.verify.raise_on_failure` gives, or ''."""
    from converters import verify

    try:
        verify.raise_on_failure(v)
    except verify.GateError as exc:
        return str(exc)
    return ""
