"""Prove a conversion: run the source and the result on the same inputs and report.

For every output: max and mean absolute error, and the mean error relative to the
source's RMS (so outputs of different scale can be ranked and the worst named). For a
BlazePose landmark model also: landmark error in pixels on the 256 crop (33 body
landmarks, x and y of the raw output), presence agreement (both above or both below
0.5) and visibility agreement (per landmark, sigmoid >= 0.5); for a YOLO-pose model the
people figures of ``converters.verify_pose``. Then file size, latency per invoke (the
runtime's own engine: LiteRT for .tflite, ONNX Runtime for .onnx; 2 threads, p50 after
warm-up) and, when annotated image sets are given, OKS AP through ``edgepose.evaluation``
with the result in a real Pipeline.

The gate: a result fails when its AP drops by more than ``max_ap_drop`` (default 0.02)
from the source's on any given set's mean, or when its outputs have collapsed (the
full-integer failure users report: presence near zero, landmarks constant) -- a collapse
fails even without annotations. The failure names the worst outputs and offers the
next safer variant. The report is written as JSON and Markdown next to the model
(``model.tflite.verify.json`` / ``.verify.md``, :mod:`converters.verify_report`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from converters import verify_pose
from converters.verify_report import write_report
from edgepose.backends import Model, open_model
from edgepose.errors import EdgeposeError, InputError, ModelError
from edgepose.profiler import latency_stats

log = logging.getLogger(__name__)

MAX_AP_DROP = 0.02
LATENCY_THREADS = 2
LATENCY_WARMUP = 5
LATENCY_RUNS = 30
LATENCY_BUDGET_S = 10.0
# Collapse: the result's outputs carry no signal where the source's do.
COLLAPSE_PRESENCE = 0.1      # mean presence of the result below this ...
SOURCE_PRESENCE = 0.5        # ... while the source's is above this
COLLAPSE_SPREAD = 0.05       # or an output's spread below 5 % of the source's


class GateError(EdgeposeError):
    """A conversion that did not keep the accuracy the gate asks for."""


# -- running models -----------------------------------------------------------------------------
# Both sides run on edgepose's own engines (edgepose.backends.open_model: TFLite or ONNX
# Runtime by the file's suffix). A reference that is not a model file (the TensorFlow graph
# of a TF.js model, converters.tfjs_export.GraphRunner) offers the same path / inputs / outputs /
# run(x) interface.
def open_compared(path: str | os.PathLike, threads: int = LATENCY_THREADS) -> Model:
    """``path`` opened the way the runtime opens it (``threads`` intra-op threads)."""
    return open_model(path, threads=threads)


def feed(model, x: np.ndarray) -> np.ndarray:
    """``x`` as ``model``'s input: in the dtype of the model's own input spec (float16,
    uint8, int8, int32 inputs are fed in their own dtype), C-contiguous; NCHW -> NHWC
    for an NHWC model (onnx2tf's TFLite of an NCHW ONNX model)."""
    want = model.inputs[0].shape
    if x.ndim == 4 and not same_shape(x.shape, want) and same_shape(np.moveaxis(x, 1, 3).shape, want):
        x = np.moveaxis(x, 1, 3)
    return np.ascontiguousarray(x, dtype=model.inputs[0].dtype)


def latency(models: Sequence, x: np.ndarray, warmup: int = LATENCY_WARMUP, runs: int = LATENCY_RUNS,
            budget_s: float | None = None) -> list[dict]:
    """Milliseconds per invoke of each model (``edgepose.profiler.latency_stats``: p50, p90,
    ...) after ``warmup`` invokes, at most ``runs`` timed invokes each or ``budget_s`` seconds
    (default LATENCY_BUDGET_S per model). Several models are invoked alternately, so that
    load from other processes on a shared machine falls on all alike."""
    budget_s = LATENCY_BUDGET_S * len(models) if budget_s is None else budget_s
    feeds = [feed(m, x) for m in models]
    for _ in range(warmup):
        for model, arr in zip(models, feeds):
            model.run(arr)
    times: list[list[float]] = [[] for _ in models]
    deadline = time.perf_counter() + budget_s
    while len(times[0]) < runs and (len(times[0]) < 5 or time.perf_counter() < deadline):
        for model, arr, out in zip(models, feeds, times):
            t = time.perf_counter_ns()
            model.run(arr)
            out.append((time.perf_counter_ns() - t) / 1e6)
    return [latency_stats(t) for t in times]


def match_outputs(source, result) -> list[int]:
    """For each source output, the index of the result output that is the same tensor:
    by name (TFLite keeps the graph's "a/b:0" where the signature says "a_b"), else by shape
    when it is unique, else by position."""
    from converters.tfjs import clean_name

    names = [clean_name(o.name) for o in result.outputs]
    pairs = []
    for i, out in enumerate(source.outputs):
        if clean_name(out.name) in names:
            pairs.append(names.index(clean_name(out.name)))
            continue
        same = [j for j, o in enumerate(result.outputs) if same_shape(o.shape, out.shape)]
        if len(same) == 1:
            pairs.append(same[0])
        elif i < len(result.outputs):
            pairs.append(i)
        else:
            raise ModelError(f"{result.path} has no output like {source.path}'s {out}")
    return pairs


def same_shape(a, b) -> bool:
    return len(a) == len(b) and all(x == y or x == -1 or y == -1 for x, y in zip(a, b))


# -- comparing outputs ----------------------------------------------------------------------------
def compare(source, result, inputs: np.ndarray) -> dict:
    """Per-output errors and, for BlazePose landmark models, landmark figures.

    inputs: (N, *input_shape), fed to each model in its own input dtype. Returns a
    JSON-ready dict."""
    order = match_outputs(source, result)
    src_all: list[list[np.ndarray]] = []
    res_all: list[list[np.ndarray]] = []
    for x in inputs:
        src_all.append(source.run(feed(source, x)))
        out = result.run(feed(result, x))
        res_all.append([np.asarray(out[j]).reshape(src_all[-1][k].shape) for k, j in enumerate(order)])
    outputs = {}
    shapes = [tuple(o.shape) for o in source.outputs]
    for k, spec in enumerate(source.outputs):
        s = np.stack([o[k] for o in src_all]).astype(np.float64)
        r = np.stack([o[k] for o in res_all]).astype(np.float64)
        diff = np.abs(s - r)
        spread = float(s.std())
        rms = float(np.sqrt(np.mean(s * s)))
        outputs[spec.name] = {
            "shape": list(shapes[k]), "role": _role(shapes[k]),
            "max_abs": _r(diff.max()), "mean_abs": _r(diff.mean()),
            "relative": _r(diff.mean() / rms) if rms > 0 else None,
            "source_spread": _r(spread), "result_spread": _r(r.std()),
        }
    report = {"samples": int(len(inputs)), "outputs": outputs}
    roles = {_role(s): k for k, s in enumerate(shapes)}
    if "landmarks" in roles:
        report["landmarks"] = _landmark_figures(src_all, res_all, roles)
    return {**report, **verify_pose.figures(src_all, res_all, shapes)}


def _role(shape) -> str | None:
    from edgepose.blazepose import landmarks as lmk

    for role, want in lmk.SHAPES.items():
        if tuple(shape) == tuple(want):
            return role
    if tuple(shape[-1:]) == (12,) and len(shape) == 3:
        return "detector boxes"
    if tuple(shape[-1:]) == (1,) and len(shape) == 3:
        return "detector scores"
    return None


def _landmark_figures(src_all, res_all, roles: dict) -> dict:
    from edgepose.blazepose import landmarks as lmk
    from edgepose.skeletons import BlazePoseLandmark

    k = roles["landmarks"]
    s = np.stack([o[k].reshape(lmk.NUM_OUTPUT_LANDMARKS, 5) for o in src_all])[:, :lmk.NUM_BODY]
    r = np.stack([o[k].reshape(lmk.NUM_OUTPUT_LANDMARKS, 5) for o in res_all])[:, :lmk.NUM_BODY]
    px = np.linalg.norm(s[..., :2] - r[..., :2], axis=-1)  # (N, 33), 256-crop pixels
    per_joint = px.mean(axis=0)
    worst = np.argsort(per_joint)[::-1][:3]
    vis_s, vis_r = lmk.sigmoid(s[..., 3]) >= 0.5, lmk.sigmoid(r[..., 3]) >= 0.5
    figures = {
        "px_mean": _r(px.mean()), "px_p95": _r(np.percentile(px, 95)), "px_max": _r(px.max()),
        "worst_landmarks": {BlazePoseLandmark(int(i)).name.lower(): _r(per_joint[i]) for i in worst},
        "visibility_agreement": _r((vis_s == vis_r).mean()),
    }
    if "presence" in roles:
        p = roles["presence"]
        ps = np.array([float(o[p].reshape(-1)[0]) for o in src_all])
        pr = np.array([float(o[p].reshape(-1)[0]) for o in res_all])
        figures.update({"presence_agreement": _r(((ps >= 0.5) == (pr >= 0.5)).mean()),
                        "presence_mean_source": _r(ps.mean()), "presence_mean_result": _r(pr.mean())})
    return figures


def _r(v) -> float:
    return round(float(v), 6)


# -- accuracy ---------------------------------------------------------------------------------------
def annotated_sets(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(annotation json, image folder) pairs from paths that are a json file (images next
    to it) or a folder holding one ``*.json`` annotation file (the shared sets' layout)."""
    out = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix == ".json":
            out.append((p, p.parent))
        elif p.is_dir():
            found = sorted(p.glob("test_*.json")) or sorted(p.glob("*.json"))
            if not found:
                raise InputError(f"{p} holds no annotation .json file")
            out.append((found[0], p))
        else:
            raise InputError(f"annotated set {p} is neither a .json file nor a folder")
    return out


def accuracy(model: str, role: str, sets: list[tuple[Path, Path]], max_people: int = 10,
             threads: int = LATENCY_THREADS) -> dict:
    """OKS AP / AR / PCK of a Pipeline that uses ``model`` as its ``role`` ("landmark" or
    "detector"), static image mode, per set and the mean over sets."""
    from edgepose import Pipeline
    from edgepose.evaluation import load_dataset, predict, score

    kw = {"model": model} if role == "landmark" else {"detector": model}
    per_set = {}
    with Pipeline(static_image_mode=True, max_people=max_people, threads=threads, **kw) as pipe:
        for annotation_file, images in sets:
            dataset = load_dataset(annotation_file)
            result = score(dataset, predict(pipe, dataset, images), annotation_file)
            per_set[images.name] = {k: result[k] for k in ("AP", "AR", "PCK@0.2", "people", "matched")}
    mean = {}
    for key in ("AP", "AR", "PCK@0.2"):
        values = [r[key] for r in per_set.values() if r[key] is not None]
        mean[key] = _r(np.mean(values)) if values else None
    return {"sets": per_set, "mean": mean, "max_people": max_people}


_SOURCE_ACCURACY: dict[tuple, dict] = {}


# -- the whole verification -------------------------------------------------------------------------
@dataclasses.dataclass
class Verification:
    source: str
    result: str
    report: dict

    @property
    def passed(self) -> bool:
        return self.report["gate"]["passed"]


def verify(source: str | os.PathLike, result: str | os.PathLike, inputs: np.ndarray,
           annotated: Sequence[str | os.PathLike] = (), max_ap_drop: float = MAX_AP_DROP,
           variant: str | None = None, write: bool = True, timing: bool = True) -> Verification:
    """Compare ``result`` with ``source`` on ``inputs`` ((N, *input_shape)), time
    both, score both on the ``annotated`` sets, apply the gate, write the report next to
    ``result`` (unless ``write`` is False). Returns the Verification; it does not raise
    when the gate fails (see ``Verification.passed`` and ``raise_on_failure``)."""
    from converters import tools

    if len(inputs) == 0:
        raise InputError("no inputs to compare the models on")
    with open_compared(source) as src, open_compared(result) as res:
        a, b = src.inputs[0].shape, res.inputs[0].shape
        if not (same_shape(a, b) or same_shape((a[0], *a[2:], a[1]), b)):  # NCHW -> NHWC: feed() transposes
            raise ModelError(f"{result} takes input {list(res.inputs[0].shape)} but {source} takes "
                             f"{list(src.inputs[0].shape)}: they cannot be compared")
        variant = variant or (res.metadata or {}).get("variant")
        report = {
            "source": _file_facts(source),
            "result": {**_file_facts(result), "variant": variant, "engine": res.runtime_label},
            "size_ratio": _r(os.path.getsize(result) / os.path.getsize(source)),
            **compare(src, res, inputs),
        }
        if timing:
            src_ms, res_ms = latency([src, res], inputs[0])
            report["latency_ms"] = {"threads": LATENCY_THREADS, "source": src_ms, "result": res_ms,
                                    "method": "source and result invoked alternately, p50 after warm-up"}
            report["speedup"] = _r(src_ms["p50"] / res_ms["p50"])
        result_engine = res.engine
    sets = annotated_sets(annotated) if annotated else []
    role = "landmark" if "landmarks" in report else "detector"
    # The pipeline runs landmark models on either engine, its BlazePose detector on TFLite.
    if sets and (role == "landmark" or result_engine == "tflite"):
        key = (report["source"]["sha256"], role, tuple(map(str, sets)))
        if key not in _SOURCE_ACCURACY:  # one source, many variants: score it once
            _SOURCE_ACCURACY[key] = accuracy(str(source), role, sets)
        report["accuracy"] = {"source": _SOURCE_ACCURACY[key],
                              "result": accuracy(str(result), role, sets)}
    elif sets:
        report["accuracy_skipped"] = ("the pipeline runs the BlazePose detector with TFLite only: "
                                      "AP is measured for .tflite detectors")
    report["gate"] = gate(report, max_ap_drop, variant)
    report["environment"] = tools.environment_facts()
    if write:
        write_report(result, report)
    return Verification(str(source), str(result), report)


def _file_facts(path: str | os.PathLike) -> dict:
    from edgepose.models import sha256_of

    return {"path": str(path), "sha256": sha256_of(path), "bytes": os.path.getsize(path)}


def gate(report: dict, max_ap_drop: float, variant: str | None) -> dict:
    """Pass / fail with the reasons, the worst outputs and the fallback to offer."""
    reasons = []
    lm = report.get("landmarks", {})
    if (lm.get("presence_mean_source", 0) > SOURCE_PRESENCE
            and lm.get("presence_mean_result", 1) < COLLAPSE_PRESENCE):
        reasons.append(f"collapsed: mean presence {lm['presence_mean_result']:.3f} against "
                       f"{lm['presence_mean_source']:.3f} for the source")
    for name, o in report["outputs"].items():
        if int(np.prod(o["shape"])) <= 1:
            continue  # a score over a few crops may be near constant in the source too
        if o["source_spread"] > 0 and o["result_spread"] < COLLAPSE_SPREAD * o["source_spread"]:
            reasons.append(f"collapsed: output {name} is near constant "
                           f"(spread {o['result_spread']:.3g} against {o['source_spread']:.3g})")
    drop = None
    acc = report.get("accuracy")
    if acc and acc["source"]["mean"]["AP"] is not None:
        drop = acc["source"]["mean"]["AP"] - (acc["result"]["mean"]["AP"] or 0.0)
        if drop > max_ap_drop:
            reasons.append(f"AP dropped {drop:.3f} (> {max_ap_drop}): "
                           f"{acc['source']['mean']['AP']:.3f} -> {acc['result']['mean']['AP'] or 0.0:.3f}")
    ranked = sorted(((o["relative"] or 0.0, n) for n, o in report["outputs"].items()), reverse=True)
    worst = [f"{n} ({report['outputs'][n]['role'] or 'output'}: mean error {rel:.3f} x its RMS)"
             for rel, n in ranked[:3]]
    from converters.quantize import FALLBACK

    fallback = FALLBACK.get(variant or "")
    return {"passed": not reasons, "max_ap_drop": max_ap_drop,
            "ap_drop": None if drop is None else _r(drop), "reasons": reasons,
            "worst_outputs": worst, "fallback": fallback,
            "checked": "AP and collapse" if acc else "collapse only (no annotated set given)"}


def raise_on_failure(v: Verification) -> None:
    """GateError with one paragraph: why, worst outputs, what to try instead."""
    g = v.report["gate"]
    if g["passed"]:
        return
    msg = f"{v.result} failed verification: " + "; ".join(g["reasons"])
    msg += ". Worst outputs: " + ", ".join(g["worst_outputs"])
    if g["fallback"]:
        msg += f". Try --variant {g['fallback']}, which keeps more precision"
    raise GateError(msg)
