"""An Ultralytics YOLO-pose ONNX export cut at its head: any input size, decoded by edgepose.

An export (``yolo export format=onnx``) ends in the head's decoding: per level the box
distributions are reshaped, soft-maxed, turned into boxes against a grid of anchors
made for the export's input size, and the keypoints likewise; the three levels are
concatenated into one (1, 5 + 3K, A) tensor. That grid and the attention block's
reshapes (YOLO11's C2PSA) are constants of the export size, so the file runs at that
size only, and on the 2-core machine the in-graph decoding over all 8400 anchors cost
a fifth of the frame (44 against 35 ms, ONNX Runtime, 640x640).

:func:`cut_heads` keeps the network up to the head's nine last convolutions (box
distribution, score and keypoint maps of each level), makes the input's height and width
free: a reshape back to a feature map's shape reads that map's size, and one that
flattens the positions leaves their count free. edgepose then
decodes only the anchors that score (``edgepose.decoders.yolo_pose.head_rows``), and a
frame is letterboxed to the next multiple of 32 only: a 16:9 frame runs at 640x384.

Needs the ``onnx`` and ``onnxruntime`` packages (the convert-tf extra has both). Tested on
YOLO11n-pose; an export with a dynamic input (``dynamic=True``) is refused: it is checked
against at its own fixed size.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from converters import metadata
from edgepose.errors import ModelError

# Each level's last convolution of the Pose head: cv2 (box, 4 x 16 bins), cv3 (score),
# cv4 (keypoints); Ultralytics names them /model.N/cvB.L/.../Conv, N the head's index.
BRANCHES = ("cv2", "cv3", "cv4")
_BRANCH = re.compile(r"(cv[234])\.(\d+)")
# The sizes the result is checked at: the export's own (against the source), a 16:9 frame
# and a portrait one (it must run).
CHECK_SIZES = ((384, 640), (640, 384))


def head_outputs(model) -> list[str]:
    """The nine head maps' tensor names, level by level (box, score, keypoints); ModelError
    when ``model`` is not an Ultralytics pose export."""
    convs = {}
    for node in model.graph.node:
        parts = node.name.split("/")
        found = _BRANCH.fullmatch(parts[2]) if node.op_type == "Conv" and len(parts) > 3 else None
        if found:
            convs.setdefault((parts[1], int(found[2]), found[1]), []).append(node.output[0])
    heads = sorted({key[0] for key in convs}, key=lambda m: int(m.split(".")[-1]) if m.split(".")[-1].isdigit() else -1)
    if not heads:
        raise ModelError("no YOLO Pose head in this ONNX file (its last convolutions are named "
                         "/model.N/cv2.L/..., /cv3.L/..., /cv4.L/... in an Ultralytics export): is it "
                         "a YOLOv8 / YOLO11 pose model exported by `yolo export format=onnx`?")
    head = heads[-1]  # the last module is the head
    levels = sorted({key[1] for key in convs if key[0] == head})
    names = []
    for level in levels:
        for branch in BRANCHES:
            found = convs.get((head, level, branch))
            if not found:
                raise ModelError(f"the YOLO head {head} has no {branch} branch at level {level}: "
                                 "not a pose model (pose heads have cv2, cv3 and cv4)")
            names.append(found[-1])  # the branch's last convolution
    return names


def cut_heads(model):
    """A new ModelProto: ``model`` up to its head maps, with a free input height and width."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper, shape_inference

    heads = head_outputs(model)
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in [*inferred.graph.value_info, *inferred.graph.input]}
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    graph = onnx.ModelProto()
    graph.CopyFrom(model)
    g = graph.graph
    producer = {out: node for node in g.node for out in node.output}
    new_nodes = []
    for node in g.node:
        if node.op_type == "Reshape" and node.input[1] in consts and _before(node, heads, producer):
            target = tuple(int(v) for v in consts[node.input[1]])
            source = _ancestor_of_shape(node.input[0], target, shapes, producer)
            if source is not None:  # back to a feature map: that map's own shape
                name = f"{node.name}/like"
                new_nodes.append(helper.make_node("Shape", [source], [name], name=name))
                node.input[1] = name
            elif len(target) >= 2 and -1 not in target and 0 not in target:  # flattened positions: free
                name = f"{node.name}/free"
                g.initializer.append(numpy_helper.from_array(np.array([*target[:-1], -1], np.int64), name))
                node.input[1] = name
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    dims = g.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    del g.output[:]
    g.output.extend(helper.make_tensor_value_info(h, TensorProto.FLOAT, None) for h in heads)
    del g.value_info[:]
    return onnx.utils.Extractor(graph).extract_model([g.input[0].name], heads)


def _before(node, heads: list[str], producer: dict) -> bool:
    """Whether ``node`` feeds a head map (the head's own decoding reshapes do not)."""
    seen, todo = set(), list(heads)
    while todo:
        name = todo.pop()
        if name in seen or name not in producer:
            continue
        seen.add(name)
        p = producer[name]
        if p is node:
            return True
        todo.extend(p.input)
    return False


def _ancestor_of_shape(name: str, target: tuple, shapes: dict, producer: dict) -> str | None:
    """The nearest 4-D tensor above ``name`` whose shape is ``target``, if any."""
    todo, seen = [name], set()
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if len(target) == 4 and shapes.get(current) == target and current != name:
            return current
        if current in producer:
            todo.extend(producer[current].input)
    return None


def convert(source: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write ``source``'s heads file to ``out`` and check it: at the export's own size its
    decoded rows equal the source's output, and it runs at a 16:9 and a portrait size.
    Returns the check's figures; ModelError when it fails."""
    import onnx

    from edgepose.fileio import atomic_write
    from edgepose.models import sha256_of

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{source} is not an ONNX model ({type(exc).__name__}: {exc})") from None
    size = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)[2:]
    if len(size) != 2 or min(size) < 1:
        raise ModelError(f"{source} has no fixed input size (its input is "
                         f"{_dims(model.graph.input[0])}): export it at a fixed imgsz (yolo export "
                         "format=onnx imgsz=640, without dynamic=True), which is checked against")
    try:
        cut = cut_heads(model)
    except ModelError:
        raise
    except Exception as exc:  # onnx's shape inference and extractor on a graph they cannot read
        raise ModelError(f"{source} could not be cut at its head ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:300]})") from None
    info = metadata.describe(source, sha256_of(source), "float32", "pose",
                             "convert yolo-heads", extra={"stride": 32, "export_size": list(size),
                                                          "options": {"decoder": "yolo-pose"}})
    metadata.set_onnx_metadata(cut, info)
    data = cut.SerializeToString()
    check = _check(str(source), data, size)
    with atomic_write(out) as tmp:
        Path(tmp).write_bytes(data)
    return check


def _dims(value_info) -> str:
    return "x".join(d.dim_param or str(d.dim_value) for d in value_info.type.tensor_type.shape.dim)


# The check's tolerances: pixels for box and keypoint coordinates, probability for scores.
MAX_PX, MAX_PROB = 1e-3, 1e-5


def _check(source: str, data: bytes, size: tuple[int, int]) -> dict:
    import onnxruntime as ort

    from edgepose.decoders.yolo_pose import head_levels, head_rows

    rng = np.random.default_rng(0)
    x = rng.random((1, 3, *size), dtype=np.float32)
    try:
        src = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        want = src.run(None, {src.get_inputs()[0].name: x})[0][0]
    except Exception as exc:  # ORT's pybind errors have no common base
        raise ModelError(f"{source} does not run in ONNX Runtime ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:300]})") from None
    k = (want.shape[0] - 5) // 3
    sizes = [tuple(size), *CHECK_SIZES]
    try:
        res = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outs = res.run(None, {res.get_inputs()[0].name: x})
        for h, w in CHECK_SIZES:
            res.run(None, {res.get_inputs()[0].name: rng.random((1, 3, h, w), dtype=np.float32)})
    except Exception as exc:  # ORT's pybind errors have no common base
        raise ModelError(f"the cut of {Path(source).name} does not run at every input size "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}): this export's "
                         "graph has a size edgepose cannot free") from None
    levels = head_levels([o.shape for o in outs], k)
    got = None if levels is None else head_rows(outs, levels, size, k, None).T
    if got is None or got.shape != want.shape:
        raise ModelError(f"the heads of {Path(source).name} decode to "
                         f"{None if got is None else got.shape}, the export gives {want.shape}")
    error = np.abs(got - want)
    prob = np.zeros(len(want), bool)
    prob[4], prob[7::3] = True, True  # the score and each keypoint's confidence
    px, p = float(error[~prob].max()), float(error[prob].max())
    if not (px < MAX_PX and p < MAX_PROB):
        raise ModelError(f"the heads file differs from the export: {px:.2g} px, {p:.2g} in "
                         f"scores (at most {MAX_PX} px and {MAX_PROB} allowed)")
    return {"max_error_px": px, "max_error_score": p, "anchors": int(want.shape[1]),
            "checked_sizes": [list(s) for s in sizes]}


# -- `edgepose convert yolo-heads` -----------------------------------------------------------------
def add_step(steps) -> None:
    p = steps.add_parser(
        "yolo-heads", help="cut a YOLO-pose ONNX export at its head: any input size "
                           "(needs onnx, onnxruntime)",
        description="Cut an Ultralytics YOLOv8 / YOLO11 pose ONNX export at its head's last "
                    "convolutions, so that it takes any input size and edgepose decodes only the "
                    "anchors that score; checked against the export (the same outputs at its own "
                    "fixed size: a dynamic export is refused). A 16:9 frame then runs at 640x384 "
                    "instead of 640x640. For yolo11n-pose the result runs in place of the export "
                    "(--model yolo11n-pose).")
    p.add_argument("model", type=Path, help="the .onnx export, or yolo11n-pose (from EDGEPOSE_MODEL_PATH)")
    p.add_argument("--out", type=Path, metavar="FILE.onnx",
                   help="where to write it (default: the converted folder, NAME_heads.onnx)")
    p.set_defaults(step=cmd_yolo_heads, needs=["onnx", "onnxruntime"])


def cmd_yolo_heads(args) -> int:
    from converters.tools import converted_dir
    from edgepose import registry
    from edgepose.errors import InputError

    from edgepose.models import sha256_of

    local = registry.LOCAL_MODELS.get(str(args.model))
    if local is not None and not args.model.is_file():
        source, default = registry.resolve_local(local), local.heads_file()
    elif args.model.is_file():
        source, default = args.model, converted_dir() / f"{args.model.stem}_heads.onnx"
        pinned = next((m for m in registry.LOCAL_MODELS.values() if m.heads_file() == default), None)
        digest = sha256_of(source) if pinned is not None else None
        if pinned is not None and digest != pinned.sha256:
            # another file of the pinned model's name: the name's heads file stays the pinned one's
            default = default.with_name(f"{args.model.stem}-{digest[:8]}_heads.onnx")
    else:
        raise InputError(f"{args.model} is not a file or a known YOLO-pose name "
                         f"({', '.join(registry.LOCAL_MODELS)})")
    out = args.out or default
    check = convert(source, out)
    print(f"wrote {out}: the same outputs as {Path(source).name} at its own size (at most "
          f"{check['max_error_px']:.1g} px and {check['max_error_score']:.1g} in scores over "
          f"{check['anchors']} anchors); runs at any input size")
    return 0
