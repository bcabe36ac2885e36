"""Which estimator runs a model: the family choice, made once when a Pipeline opens.

MediaPipe's engines by backend; a model edgepose knows but does not ship, by its registry
entry; your own model file by ``decoder``; a converted model by the options its metadata
records; else the model file's outputs say (MoveNet single or MultiPose, BlazePose
otherwise).
"""

from __future__ import annotations

import dataclasses
import os

from edgepose import models, registry
from edgepose.errors import ModelError
from edgepose.options import DECODERS, Options


def open_estimator(o: Options, threads: int):
    """The estimator of the family ``o`` names: MediaPipe's engines by backend; your own
    model by decoder; else the model file says (MoveNet single or MultiPose by its
    outputs, BlazePose otherwise). The model file is opened once, here."""
    if o.backend == "mediapipe":
        from edgepose.mediapipe_backend import MediaPipeSolution

        return MediaPipeSolution(o)
    if o.backend == "mediapipe-tasks":
        from edgepose.mediapipe_backend import MediaPipeTasks

        return MediaPipeTasks(o)
    from edgepose.backends import open_model

    local = registry.LOCAL_MODELS.get(str(o.model))
    if local is not None:  # a model edgepose knows but does not ship: its decoder by name
        path = registry.local_to_run(local)
        o = dataclasses.replace(o, decoder=o.decoder or local.decoder)
    elif o.decoder:
        if not os.path.isfile(str(o.model)):
            raise ModelError(f"--decoder {o.decoder} runs your own model file: {o.model!r} is not a "
                             "file (give the path of a .onnx or .tflite model)")
        path = str(o.model)
    else:
        path = registry.resolve_converted(o.model) or models.resolve(o.model, "landmark",
                                                                    also=registry.pose_names())
    model = open_model(path, runtime=o.runtime, threads=threads, delegate=o.delegate, provider=o.provider)
    try:
        if local is not None and path == str(local.heads_file()):
            made_from = ((model.metadata or {}).get("source") or {}).get("sha256")
            if made_from != local.sha256:
                raise ModelError(f"{path} was not made from {local.name}'s pinned export (sha256 "
                                 f"{local.sha256[:12]}..): run `edgepose convert yolo-heads "
                                 f"{local.name}` again, or delete it to run the export itself")
        return estimator_for(model, o)
    except BaseException:
        model.close()
        raise


def estimator_for(model, o: Options):
    from edgepose.estimators import movenet, openpose

    # a converted model's metadata names its decoder, layout and normalisation
    o = o.filled_from((model.metadata or {}).get("options"))
    if o.decoder == "paf":
        return openpose.OpenPoseEstimator(model, o)
    if o.decoder == "posenet":
        from edgepose.estimators.posenet import PoseNetEstimator

        return PoseNetEstimator(model, o)
    if o.decoder == "yolo-pose":
        from edgepose.estimators.yolo_pose import YoloPoseEstimator

        return YoloPoseEstimator(model, o)
    if o.decoder:
        from edgepose.estimators.topdown import TopDownEstimator

        return TopDownEstimator(model, o)
    family = movenet.family_of(model)
    if family == "movenet-single":
        return movenet.MoveNetSingle(model, o)
    if family == "movenet-multipose":
        return movenet.MoveNetMultiPose(model, o)
    from edgepose.estimators.blazepose import BlazePoseEstimator

    try:
        return BlazePoseEstimator(model, o)
    except ModelError as exc:
        if model.metadata:  # a converted model: its metadata said what it is
            raise
        raise ModelError(f"{exc} If it is your own pose model, run it with --decoder "
                         f"{'|'.join(DECODERS)} (layouts: docs/model_layouts.md)") from None
