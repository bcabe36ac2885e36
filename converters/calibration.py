"""Calibration and test inputs: person crops made the way the runtime makes them.

A static int8 model is only as good as the activation ranges it was calibrated on, and
the landmark model only ever sees rotated, 1.25x-enlarged person crops (detector ->
ROI -> warp, then in video mode the ROI the previous landmarks give). Naive resizes of
whole photos have other ranges, so calibration and verification use the same crops the
runtime feeds the model:

1. the BlazePose detector on the letterboxed image (score >= 0.1, weighted NMS), each
   detection's ROI warped to 256x256 RGB in [0, 1] (``edgepose.blazepose.landmarks.preprocess``);
2. with ``tracking_crops`` (default), the float landmark model run on that crop and,
   when it sees a person, the next-frame ROI from its auxiliary landmarks warped again;
3. with ``flip`` (default), the same on the mirrored image.

Everything is deterministic: files sorted, no random numbers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgepose.errors import InputError
from edgepose.sources import IMAGE_EXTENSIONS, read_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = set(IMAGE_EXTENSIONS)
DETECTION_SCORE = 0.1  # the pipeline's multi-person threshold: presence is the real gate
PRESENCE = 0.5
MAX_PEOPLE_PER_IMAGE = 10


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; InputError when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"calibration folder {root} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"calibration folder {root} holds no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def person_crops(folder: str | os.PathLike, detector: str = "detector", landmark: str = "full",
                 limit: int | None = 256, tracking_crops: bool = True, flip: bool = True,
                 threads: int = 2) -> np.ndarray:
    """(N, 1, 256, 256, 3) float32 RGB crops in [0, 1] of the people in ``folder``.

    ``detector`` and ``landmark`` are model names or paths (resolved like the runtime's,
    without downloading); ``landmark`` is the float model whose auxiliary landmarks place
    the tracking crops. Stops after ``limit`` crops (None: all). InputError when the
    folder has no images or the detector finds nobody in them.
    """
    import cv2

    from edgepose import models
    from edgepose.backends import open_model
    from edgepose.blazepose import detector as det
    from edgepose.blazepose import landmarks as lmk
    from edgepose.blazepose.roi import roi_from_points

    files = image_files(folder)
    det_model = open_model(models.resolve(detector, "detector", download=False), threads=threads)
    lmk_model = None
    if tracking_crops:
        lmk_model = open_model(models.resolve(landmark, "landmark", download=False), threads=threads)
        roles = _landmark_outputs(lmk_model)
    crops: list[np.ndarray] = []
    unreadable = 0
    for path in files:
        try:
            image = read_image(path)
        except InputError:
            unreadable += 1
            continue
        for img in (image, cv2.flip(image, 1)) if flip else (image,):
            to_image = det.letterbox_transform(img.shape[1], img.shape[0])
            boxes, scores = det_model.run(det.preprocess(img, to_image, "bgr"))
            if boxes.shape[-1] != 12:
                boxes, scores = scores, boxes
            found = det.to_detections(det.weighted_nms(*det.decode(boxes[0], scores[0], DETECTION_SCORE)),
                                      to_image)[:MAX_PEOPLE_PER_IMAGE]
            for d in found:
                x, _ = lmk.preprocess(img, roi_from_points(d.keypoints[0], d.keypoints[1]), "bgr")
                crops.append(x)
                if lmk_model is not None:
                    raw, presence = lmk_model.run(x, [roles["landmarks"], roles["presence"]])
                    if float(presence.reshape(-1)[0]) >= PRESENCE:
                        roi = roi_from_points(d.keypoints[0], d.keypoints[1])
                        _, aux = lmk.decode(raw, None, roi)
                        crops.append(lmk.preprocess(img, roi_from_points(aux[0], aux[1]), "bgr")[0])
                if limit is not None and len(crops) >= limit:
                    break
            if limit is not None and len(crops) >= limit:
                break
        if limit is not None and len(crops) >= limit:
            break
    det_model.close()
    if lmk_model is not None:
        lmk_model.close()
    if unreadable:
        log.warning("%d of %d files in %s could not be read as images", unreadable, len(files), folder)
    if not crops:
        raise InputError(f"no person found in the {len(files)} images of {folder}: calibration "
                         "needs photos of people (the BlazePose detector found none)")
    log.info("%d person crops from %d images in %s", len(crops), len(files), folder)
    return np.stack(crops[:limit] if limit else crops).astype(np.float32)


def detector_inputs(folder: str | os.PathLike, limit: int | None = 64, flip: bool = True) -> np.ndarray:
    """(N, 1, 224, 224, 3) float32 letterboxed images in [-1, 1]: detector calibration."""
    from edgepose.blazepose import detector as det

    def make(img: np.ndarray) -> np.ndarray:
        return det.preprocess(img, det.letterbox_transform(img.shape[1], img.shape[0]), "bgr")

    return _each_photo(folder, make, limit, flip)


def _each_photo(folder: str | os.PathLike, make, limit: int | None, flip: bool) -> np.ndarray:
    """(N, ...) float32: ``make(image)`` of each readable photo in ``folder`` (BGR), and of
    its mirror when ``flip``; the first ``limit``."""
    import cv2

    out = []
    for path in image_files(folder):
        try:
            image = read_image(path)
        except InputError:
            continue
        for img in (image, cv2.flip(image, 1)) if flip else (image,):
            out.append(make(img))
    if not out:
        raise InputError(f"no readable image in {folder}")
    return np.stack(out[:limit] if limit else out).astype(np.float32)


def _landmark_outputs(model) -> dict[str, int]:
    from edgepose.backends import find_output
    from edgepose.blazepose import landmarks as lmk

    return {role: find_output(model, lmk.SHAPES[role], role, "landmark")
            for role in ("landmarks", "presence")}


def inputs_for(model_path: str, folder: str | os.PathLike, limit: int | None = 256,
               **crop_options) -> np.ndarray:
    """Calibration / test inputs that fit the model at ``model_path``: person crops for a
    (1, 256, 256, 3) landmark model, letterboxed images for the (1, 224, 224, 3) detector,
    whole letterboxed photos (:func:`whole_image_inputs`) for any other float image input
    of a fixed size. Other inputs are an InputError (give them as a .npy file instead)."""
    from edgepose.backends import open_model

    with open_model(model_path, threads=1) as model:
        shape, dtype = tuple(model.inputs[0].shape), model.inputs[0].dtype
    if shape == (1, 256, 256, 3):
        return person_crops(folder, landmark=model_path, limit=limit, **crop_options)
    if shape == (1, 224, 224, 3):
        return detector_inputs(folder, limit=limit)
    if len(shape) == 4 and 3 in (shape[1], shape[3]) and min(shape) > 0 and np.dtype(dtype).kind == "f":
        return whole_image_inputs(folder, shape, limit=limit)
    raise InputError(f"{model_path} takes input {list(shape)} {np.dtype(dtype).name}: edgepose makes "
                     "inputs only for float image models of a fixed size; pass a .npy array of "
                     "inputs instead")


def whole_image_inputs(folder: str | os.PathLike, shape: tuple[int, ...], limit: int | None = 256,
                       flip: bool = True) -> np.ndarray:
    """(N, *shape) float32: each photo (and its mirror) letterboxed whole into a (1, 3, H, W)
    or (1, H, W, 3) input as YOLO's is made (RGB / 255, grey 114 border): the input of a
    bottom-up model such as YOLO-pose."""
    from edgepose.decoders.preprocess import InputSpec, Letterbox

    first = shape[1] == 3 and shape[3] != 3
    size = (shape[3], shape[2]) if first else (shape[2], shape[1])
    letterbox = Letterbox(InputSpec(size, "first" if first else "last", normalize="unit", border=114.0))
    return _each_photo(folder, lambda img: letterbox(img, "bgr")[0].copy(), limit, flip)


def load_inputs(source: str | os.PathLike, model_path: str, limit: int | None = 256) -> np.ndarray:
    """Inputs from a folder of images (person crops) or a .npy file of shape (N, *input)."""
    path = Path(source)
    if path.suffix == ".npy":
        if not path.is_file():
            raise InputError(f"input file {path} does not exist")
        data = np.load(path)
        return data[:limit] if limit else data
    return inputs_for(model_path, path, limit=limit)
