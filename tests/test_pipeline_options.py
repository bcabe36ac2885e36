"""The front door: one Pipeline for every family, options refused by name where a family
does not use them, threads capped at the cores, one stream per Pipeline."""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pytest

from onnx_models import pose_heatmap_model
from test_pipeline_contract import SpotBox, movenet_multipose_model, movenet_single_model, spot_frame

from edgepose import Options, Pipeline
from edgepose.errors import EdgeposeError, UsageError
from edgepose.options import OptionError


@pytest.fixture(scope="module")
def heatmap_model(tmp_path_factory):
    offsets = np.zeros((17, 2), int)
    return str(pose_heatmap_model(tmp_path_factory.mktemp("h") / "h.onnx", offsets))


def test_every_family_is_built_by_the_one_front_door(tmp_path, heatmap_model, model_path):
    single = movenet_single_model(tmp_path / "single.onnx")
    multi = movenet_multipose_model(tmp_path / "multi.onnx")
    for options, family, detector in [
        (dict(model=model_path("full")), "blazepose", "blazepose"),
        (dict(model=str(single)), "movenet-single", None),
        (dict(model=str(multi), max_people=6), "movenet-multipose", None),
        (dict(model=heatmap_model, decoder="heatmap", refine="quarter", input_color="bgr"), "heatmap", "custom"),
    ]:
        with Pipeline(person_detector=SpotBox() if family == "heatmap" else None, threads=1, **options) as pipe:
            facts = pipe.describe()
            assert (facts["family"], facts["detector"]) == (family, detector)
            assert facts["runtime"].startswith(("tflite/", "onnx/")) and facts["threads"] == 1


@pytest.mark.parametrize("options, message", [
    (dict(refine="quarter"), r"refine='quarter' \(--refine\) is not used by blazepose"),
    (dict(model="full", decoder="heatmap", input_color="bgr"), "runs your own model file: 'full' is not a file"),
    (dict(input_color="bgr"), r"input_color='bgr' \(--input-color\) is not used by blazepose"),
    (dict(max_people=0), "max_people must be a whole number >= 1"),
    (dict(threads=2.5), "threads must be a whole number >= 1"),
    (dict(smoothing="silky"), "unknown smoothing preset 'silky'"),
    (dict(backend="onnx"), "backend must be one of tflite, mediapipe, mediapipe-tasks"),
    (dict(colour="rgb"), "unexpected keyword argument 'colour'.*fields of edgepose.Options"),
])
def test_options_a_family_does_not_use_are_refused_by_name(options, message, model_path):
    with pytest.raises(EdgeposeError, match=message):
        Pipeline(**{"model": model_path("full"), "threads": 1, **options})


def test_options_of_other_families_are_refused_for_movenet(tmp_path):
    single = str(movenet_single_model(tmp_path / "single.onnx"))
    with pytest.raises(OptionError, match=r"segmentation=True .* not used by movenet-single"):
        Pipeline(model=single, segmentation=True)
    with pytest.raises(OptionError, match=r"detector='centernet' .* movenet-single: it finds people itself"):
        Pipeline(model=single, detector="centernet")
    with pytest.raises(EdgeposeError, match="single-person MoveNet: for max_people=3 use --model movenet-multipose"):
        Pipeline(model=single, max_people=3)


def test_threads_beyond_the_cores_are_capped_with_a_warning(model_path, caplog):
    cores = os.cpu_count()
    with caplog.at_level(logging.WARNING, logger="edgepose.pipeline"), \
            Pipeline(model=model_path("full"), threads=1000) as pipe:
        assert pipe.describe()["threads"] == cores
    assert f"threads=1000 is more than this machine's {cores} cores" in caplog.text
    assert Options(threads=1000).threads == 1000  # the option itself is left as given


def test_one_pipeline_from_two_threads_is_a_clear_error(heatmap_model):
    gate = threading.Event()
    detector = SpotBox(block=gate)
    errors = []
    with Pipeline(model=heatmap_model, decoder="heatmap", normalize="unit", person_detector=detector,
                  threads=1) as pipe:
        worker = threading.Thread(target=lambda: pipe.process(spot_frame(), timestamp_ms=0.0))
        worker.start()
        assert detector.entered.wait(10)
        try:
            pipe.process(spot_frame(), timestamp_ms=40.0)
        except UsageError as exc:
            errors.append(str(exc))
        gate.set()
        worker.join(10)
        assert pipe.process(spot_frame(), timestamp_ms=80.0).poses  # usable again
    assert errors and "two threads at once" in errors[0]


def test_the_tasks_engine_gets_the_thread_cap_too(caplog):
    pytest.importorskip("mediapipe", reason="needs mediapipe (pip install 'edgepose[mediapipe]')")
    from edgepose.errors import BackendError

    try:
        with caplog.at_level(logging.WARNING, logger="edgepose.pipeline"), \
                Pipeline(backend="mediapipe-tasks", model="full", threads=1000) as pipe:
            assert pipe.describe()["threads"] == pipe.estimator.threads == os.cpu_count()
    except (BackendError, EdgeposeError) as exc:  # no model offline
        pytest.skip(str(exc))
    assert "threads=1000 is more than this machine's" in caplog.text
