"""``edgepose convert STEP``: the conversion toolchain on the command line.

Steps: ``quantize`` (float32 / float16 / int8 variants, calibrated on person crops, each
verified), ``verify`` (compare any two models, with the accuracy gate), ``to-onnx``
(TFLite -> ONNX with tf2onnx), ``from-onnx`` (ONNX -> TFLite with onnx2tf) and
``tfjs`` (TF.js graph model -> SavedModel, TFLite, ONNX), ``tf-graph`` (a TF1 frozen graph,
e.g. OpenPose, the same at a fixed input size), ``yolo-heads`` (a YOLO-pose export cut at
its head, any input size) and ``task-bundle`` (MediaPipe .task).

A step whose tool is not installed here re-runs itself in that tool's environment
(``converters.tools``); ``python -m converters.cli STEP ...`` is the same command without
the ``edgepose`` front end, which is what the re-run calls.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from converters.outcome import EXIT_FAILED_GATE, failure as _failure, summary as _summary
from converters.tools import converted_dir
from edgepose import registry
from edgepose.errors import EdgeposeError, InputError

log = logging.getLogger(__name__)

# Python loggers of the tools, quiet (errors only) unless --verbose.
NOISY_LOGGERS = ("tensorflow", "absl", "tf2onnx", "onnx2tf", "h5py", "ai_edge_quantizer", "jax")
VERBOSE_HELP = "log what happens, and let the tools (TensorFlow, onnx2tf...) print"


def add_convert_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``convert`` and its steps on the ``edgepose`` subparsers."""
    convert = subparsers.add_parser(
        "convert", help="convert, quantize, verify and package models",
        description="Convert, quantize, verify and package models. Each step that needs a "
                    "heavy tool runs in that tool's environment (see docs/converters.md).")
    add_steps(convert)
    convert.set_defaults(func=run_from_edgepose)
    return convert


def add_steps(parser: argparse.ArgumentParser) -> None:
    from converters import quantize, tfjs_command, verify

    steps = parser.add_subparsers(dest="converter", required=True, metavar="STEP")

    q = steps.add_parser(
        "quantize", help="float32 / float16 / int8 variants of a TFLite model, each verified",
        description="Write quantized variants of a TFLite model (no TensorFlow needed: int8 "
                    "uses ai-edge-quantizer, the convert-quant extra), then verify each "
                    "against the source. Variants: " + "; ".join(
                        f"{v.name}: {v.help}" for v in quantize.VARIANTS.values()))
    q.add_argument("model", help="source model: lite, full, heavy, detector or a .tflite path")
    q.add_argument("--variant", action="append", choices=list(quantize.VARIANTS),
                   help="variant to write (repeat for several; default: int8-mixed)")
    q.add_argument("--images", type=Path, metavar="DIR",
                   help="photos of people: calibration and test crops are made from them "
                        "(detector -> ROI -> warp); needed by int8-static / int8-mixed")
    q.add_argument("--out", type=Path, metavar="DIR|FILE",
                   help=f"output folder, or file with one variant (default: {converted_dir()})")
    q.add_argument("--float-tail", type=int, default=quantize.FLOAT_TAIL_DEPTH, metavar="N",
                   help="int8-mixed: ops within N ops of an output stay float "
                        f"(default: {quantize.FLOAT_TAIL_DEPTH})")
    q.add_argument("--calibration-limit", type=int, default=128, metavar="N",
                   help="most crops used for calibration (default: 128)")
    _verify_flags(q, verify)
    q.add_argument("--no-verify", action="store_true", help="write the variants, skip verification")
    q.set_defaults(step=cmd_quantize, needs=_quantize_needs)

    v = steps.add_parser(
        "verify", help="compare a converted model with its source; the accuracy gate",
        description="Run SOURCE and RESULT on the same inputs and report per-output errors, "
                    "landmark error in px, presence/visibility agreement, size, latency and "
                    "(with --annotated) AP. Exit code 2 when the gate fails.")
    v.add_argument("source", help="source model (name or path)")
    v.add_argument("result", help="converted model (.tflite or .onnx)")
    v.add_argument("--images", type=Path, metavar="DIR|FILE.npy",
                   help="photos of people (crops are made from them) or a .npy of inputs")
    _verify_flags(v, verify)
    v.set_defaults(step=cmd_verify, needs=_verify_needs)

    o = steps.add_parser("to-onnx", help="TFLite -> ONNX with tf2onnx (convert-tf extra)",
                         description="Convert a TFLite model to ONNX with tf2onnx. DENSIFY and "
                                     "fp16 DEQUANTIZE constants are folded first.")
    o.add_argument("model", help="source model: lite, full, heavy, detector or a .tflite path")
    o.add_argument("--out", type=Path, metavar="FILE.onnx")
    o.add_argument("--opset", type=int, default=13)
    o.add_argument("--images", type=Path, metavar="DIR", help="photos of people to verify on")
    o.add_argument("--no-verify", action="store_true")
    o.set_defaults(step=cmd_to_onnx, needs=["tf2onnx", "onnxruntime"])

    f = steps.add_parser("from-onnx", help="ONNX -> TFLite with onnx2tf (convert-tf extra)",
                         description="Convert an ONNX model to TFLite with onnx2tf, offline, "
                                     "keeping the input layout and the output order.")
    f.add_argument("model", type=Path, help="the .onnx file (or yolo11n-pose, from EDGEPOSE_MODEL_PATH)")
    f.add_argument("--out", type=Path, metavar="FILE.tflite")
    f.add_argument("--float16", action="store_true", help="write the float16 model instead")
    f.add_argument("--reference", help="TFLite model the ONNX came from: output names and order "
                                       "are restored from it, and the result verified against it")
    f.add_argument("--images", type=Path, metavar="DIR|FILE",
                   help="photos of people to verify on (default: the demo photo); without "
                        "--reference the result is verified against the ONNX file in ONNX Runtime")
    f.add_argument("--no-verify", action="store_true")
    f.set_defaults(step=cmd_from_onnx, needs=["onnx2tf", "onnxruntime"])

    t = steps.add_parser(
        "tfjs", help="TF.js graph model -> SavedModel, TFLite float32 / float16 and ONNX (convert-tf extra)",
        description="Convert a TF.js graph model (model.json + weight shards) to a SavedModel, "
                    "TFLite float32 / float16 and ONNX, each verified against TensorFlow on real "
                    "photos, and end with a table of every file. Known names ("
                    + ", ".join(registry.CONVERTIBLE_MODELS) + ") are found in "
                    "EDGEPOSE_MODEL_PATH (or its tfjs/ folder) or downloaded sha256-checked, and "
                    "written where the runtime looks for them; a model.json path of one of them "
                    "(same sha256) is converted as that model. Exit code 0 when each model's "
                    "float32 .tflite (what --model/--detector NAME runs) and every --variant asked "
                    "for passed; 2 when one of those failed (a failed float16 or ONNX file made "
                    "by default is reported, not fatal); 1 on an error.")
    t.add_argument("model", nargs="+", help="known name(s), 'all', or a model.json path")
    t.add_argument("--variant", action="append", choices=["float32", "float16", "onnx"],
                   help="what to write (repeat; default: all three)")
    t.add_argument("--out", type=Path, metavar="DIR", help=f"output folder (default: {converted_dir()})")
    t.add_argument("--input-shape", metavar="N,H,W,C",
                   help="fix a dynamic input shape (MultiPose: 1,256,256,3, the default for it)")
    t.add_argument("--images", type=Path, metavar="DIR|FILE",
                   help="photos to verify each file on: a folder or one photo (default: the "
                        "demo photo)")
    t.set_defaults(step=tfjs_command.cmd_tfjs, needs=["tensorflow"])

    b = steps.add_parser(
        "task-bundle", help="build a MediaPipe PoseLandmarker .task bundle from local models",
        description="Build a MediaPipe Tasks PoseLandmarker .task bundle (uncompressed zip of "
                    "the detector and a landmark model, with input-normalisation metadata).")
    b.add_argument("--detector", default="detector",
                   help="person detector: 'detector' or a .tflite path (default: detector)")
    b.add_argument("--model", default="full",
                   help="landmark model: lite, full, heavy or a .tflite path (default: full)")
    b.add_argument("--out", required=True, type=Path, help="the .task file to write")
    b.set_defaults(step=cmd_task_bundle, needs=[])

    from converters import tf_graph_command

    tf_graph_command.add_step(steps)
    from converters import yolo_heads

    yolo_heads.add_step(steps)

    for step in steps.choices.values():  # `edgepose convert tfjs all -v`
        step.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help=VERBOSE_HELP)


def _verify_flags(p: argparse.ArgumentParser, verify) -> None:
    p.add_argument("--annotated", nargs="+", default=[], metavar="SET",
                   help="annotated sets for AP: COCO/MPII json files or folders holding one "
                        "(e.g. ../shared/data/images/mpii)")
    p.add_argument("--max-ap-drop", type=float, default=verify.MAX_AP_DROP,
                   help=f"gate: most AP a conversion may lose (default: {verify.MAX_AP_DROP})")
    p.add_argument("--limit", type=int, default=256, help="most test crops (default: 256)")


def _quantize_needs(args) -> list[str]:
    from converters import quantize

    return sorted({quantize.VARIANTS[v].tool for v in args.variant or ["int8-mixed"]} - {None})


def _verify_needs(args) -> list[str]:
    from edgepose.backends import engine_for

    return ["onnxruntime"] if engine_for(args.result) == "onnxruntime" else []


# -- commands ----------------------------------------------------------------------------------------
def _resolve(name: str) -> str:
    """Path of a model name or file; tries the landmark role, then the detector."""
    from edgepose import models

    role = "detector" if models.KNOWN_MODELS.get(name) and models.KNOWN_MODELS[name].role == "detector" \
        else "landmark"
    return models.resolve(name, role, download=False)


def _split(crops):
    """Calibration and test crops from one folder: alternate crops, so both see every image."""
    return crops[0::2], crops[1::2]


def cmd_quantize(args) -> int:
    from converters import calibration, quantize, verify

    source = _resolve(args.model)
    variants = args.variant or ["int8-mixed"]
    calib = test = None
    if args.images is not None:
        crops = calibration.inputs_for(source, args.images, limit=2 * max(args.limit, args.calibration_limit))
        calib, test = _split(crops) if len(crops) > 1 else (crops, crops)
        calib = calib[:args.calibration_limit]
        test = test[:args.limit]
    elif any(quantize.VARIANTS[v].needs_calibration for v in variants):
        raise InputError(f"{', '.join(variants)} needs --images DIR: photos of people to calibrate on")
    elif not args.no_verify:
        raise InputError("verification needs --images DIR (or pass --no-verify)")
    single_file = args.out is not None and args.out.suffix == ".tflite"
    if single_file and len(variants) > 1:
        raise InputError(f"--out {args.out} is one file but {len(variants)} variants were asked for: give a folder")
    failed = []
    for variant in variants:
        out = args.out if single_file else (args.out or converted_dir()) / f"{Path(source).stem}_{variant}.tflite"
        quantize.quantize_file(source, variant, out, calib, args.float_tail)
        line = f"wrote {out} ({variant}, {os.path.getsize(out) / 1e6:.2f} MB)"
        if not args.no_verify:
            v = verify.verify(source, out, test, args.annotated, args.max_ap_drop, variant)
            line += "; " + _summary(v.report)
            if not v.passed:
                failed.append(v)
        print(line)
    for v in failed:
        print(f"edgepose: FAILED: {_failure(v)}", file=sys.stderr)
    return EXIT_FAILED_GATE if failed else 0


def cmd_verify(args) -> int:
    from converters import calibration, verify

    source = _resolve(args.source)
    inputs = calibration.load_inputs(args.images, source, limit=args.limit) if args.images else None
    if inputs is None:
        raise InputError("verify needs --images DIR (photos of people) or --images inputs.npy")
    v = verify.verify(source, args.result, inputs, args.annotated, args.max_ap_drop)
    print(f"{args.result}: {_summary(v.report)}")
    if not v.passed:
        print(f"edgepose: FAILED: {_failure(v)}", file=sys.stderr)
        return EXIT_FAILED_GATE
    return 0


def cmd_to_onnx(args) -> int:
    from converters import calibration, onnx_export, verify

    source = _resolve(args.model)
    out = args.out or converted_dir() / f"{Path(source).stem}.onnx"
    onnx_export.tflite_to_onnx(source, out, opset=args.opset)
    line = f"wrote {out}"
    if args.images and not args.no_verify:
        v = verify.verify(source, out, calibration.inputs_for(source, args.images), variant="onnx")
        line += "; " + _summary(v.report)
        print(line)
        return 0 if v.passed else EXIT_FAILED_GATE
    print(line)
    return 0


def cmd_from_onnx(args) -> int:
    from converters import calibration, onnx_import, verify
    from edgepose import registry

    reference = _resolve(args.reference) if args.reference else None
    local = registry.LOCAL_MODELS.get(str(args.model))
    source = Path(registry.resolve_local(local)) if local and not args.model.is_file() else args.model
    out = args.out or converted_dir() / (source.stem + ("_float16" if args.float16 else "") + ".tflite")
    onnx_import.onnx_to_tflite(source, out, float16=args.float16, reference=reference)
    line = f"wrote {out}"
    if args.images and not args.no_verify:  # against the reference TFLite, else the ONNX file
        against = reference or str(source)
        v = verify.verify(against, out, calibration.inputs_for(against, args.images),
                          variant="float16" if args.float16 else "float32")
        print(line + "; " + _summary(v.report))
        return 0 if v.passed else EXIT_FAILED_GATE
    print(line)
    return 0


def cmd_task_bundle(args) -> int:
    from edgepose import models
    from edgepose.task_bundle import DETECTOR_MEMBER, LANDMARK_MEMBER, build_task_bundle

    # Local files only: a missing model is an error that says how to fetch it.
    detector = models.resolve(args.detector, "detector", download=False)
    landmark = models.resolve(args.model, "landmark", download=False)
    out = build_task_bundle(detector, landmark, args.out)
    print(f"wrote {out}: {DETECTOR_MEMBER} <- {detector}, {LANDMARK_MEMBER} <- {landmark}")
    return 0


# -- running a step where its tool is -----------------------------------------------------------------
def dispatch(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Run the step here, or in its tool environment when its tool is missing here."""
    from converters import tools

    needs = args.needs(args) if callable(args.needs) else args.needs
    env_paths = _model_folders(args)
    if env_paths:
        os.environ["EDGEPOSE_MODEL_PATH"] = os.pathsep.join(
            filter(None, [os.environ.get("EDGEPOSE_MODEL_PATH"), *env_paths]))
    if getattr(args, "images", None) is None and (args.converter in ("tfjs", "tf-graph") or (
            args.converter == "from-onnx" and not args.reference and not args.no_verify)):
        args.images, argv = _demo_photo(argv)
    verbose = getattr(args, "verbose", False)
    if not verbose:  # set before a tool is imported, here or in its environment
        os.environ.setdefault("TQDM_DISABLE", "1")  # ai-edge-quantizer's progress bars
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    if not verbose:  # the tools' deprecation notices; edgepose's own warnings still show
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"(edgepose|converters)(\.|$)")
    code = tools.run_in_tool_env(needs, argv)
    if code is not None:
        return code
    return args.step(args)


def _demo_photo(argv: list[str] | None) -> tuple[Path, list[str] | None]:
    """The demo photo as found (or fetched once) here, where edgepose runs, and the command
    line for a tool environment, which may not find it, with it as --images."""
    from edgepose.demo import NoDemoPhoto, demo_photo

    try:
        photo = demo_photo()
    except NoDemoPhoto as exc:
        raise InputError(f"no photo to verify on: {exc}; give --images DIR or --images FILE "
                         "(photos of people)") from None
    return photo, None if argv is None else [*argv, "--images", str(photo)]


def _model_folders(args) -> list[str]:
    """Folders where this environment finds the named models, so that a tool
    environment (without the mediapipe wheel) finds the same files."""
    from edgepose import registry

    folders = []
    for row in registry.status():
        if row["path"]:
            folders.append(str(Path(row["path"]).parent))
    return sorted(set(folders))


def main(argv: list[str] | None = None) -> int:
    """``python -m converters.cli STEP ...``: the steps of ``edgepose convert``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="edgepose convert", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    add_steps(parser)
    args = parser.parse_args(argv)
    from edgepose.quiet import configure_logging, native_stderr_quiet

    configure_logging(args.verbose)
    try:
        # TensorFlow's CUDA probing and the tools' C++ logs are noise unless --verbose
        with native_stderr_quiet(not args.verbose):
            return dispatch(args, argv)
    except EdgeposeError as exc:
        print(f"edgepose: error: {exc}", file=sys.stderr)
        return 1


def run_from_edgepose(args: argparse.Namespace) -> int:
    """The ``func`` edgepose's CLI calls: re-dispatch with the raw argv after ``convert``."""
    argv = sys.argv[sys.argv.index("convert") + 1:] if "convert" in sys.argv else None
    if argv is not None and getattr(args, "verbose", False):
        argv = ["-v", *argv]
    return dispatch(args, argv)


if __name__ == "__main__":
    sys.exit(main())
