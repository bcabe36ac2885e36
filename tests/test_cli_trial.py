"""What a new user's trial of the CLI found (session 7): outputs that destroyed the input,
frames silently dropped from a video, values accepted that broke the results, memory
reserved for every possible person, and messages that named the wrong fix."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMAGES, MODELS, ROOT, edgepose, need, one_error_line


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- never write over the input -----------------------------------------------------------
@pytest.mark.parametrize("flags", [["--json", "{src}"], ["--out", "{src}"]])
def test_an_output_that_is_the_input_video_is_refused(clip, tmp_path, flags):
    """`edgepose run v.mp4 --json v.mp4` replaced the video with JSON and exited 0."""
    src = tmp_path / "v.avi"
    shutil.copy(clip, src)
    before = digest(src)
    code, _, err = edgepose("run", src, *[f.format(src=src) for f in flags])
    assert "is an input of this run" in one_error_line(code, err)
    assert digest(src) == before


@pytest.mark.parametrize("out", ["{d}", "{d}/"])
def test_annotating_a_folder_into_itself_is_refused(tmp_path, out):
    """`edgepose run imgs --out imgs/` wrote the annotated photos over the originals."""
    folder = tmp_path / "imgs"
    shutil.copytree(need(IMAGES / "mpii"), folder)
    before = {p.name: digest(p) for p in folder.glob("*.jpg")}
    code, _, err = edgepose("run", folder, "--out", out.format(d=folder))
    assert "is an input of this run" in one_error_line(code, err)
    assert {p.name: digest(p) for p in folder.glob("*.jpg")} == before


def test_one_file_for_both_outputs_is_refused(clip, tmp_path):
    code, _, err = edgepose("run", clip, "--json", tmp_path / "o.mp4", "--out", tmp_path / "o.mp4")
    assert "is a file --out writes too" in one_error_line(code, err)


def test_json_onto_an_annotated_photo_is_refused(tmp_path):
    """`--out ann --json ann/a.jpg` wrote both into one file."""
    photo = next(need(IMAGES / "mpii").glob("*.jpg"))
    code, _, err = edgepose("run", photo.parent, "--out", tmp_path / "ann",
                            "--json", tmp_path / "ann" / photo.name)
    assert "is a file --out writes too" in one_error_line(code, err)


def test_a_folder_of_other_photos_may_hold_the_annotated_ones(tmp_path):
    """Not an input: the annotated photos go into a new folder as before."""
    code, _, err = edgepose("run", need(IMAGES / "mpii"), "--out", tmp_path / "annotated")
    assert code == 0, err
    assert len(list((tmp_path / "annotated").glob("*.jpg"))) == len(list((IMAGES / "mpii").glob("*.jpg")))


# -- a video of photos of several sizes -----------------------------------------------------
def test_a_video_of_photos_of_several_sizes_has_every_photo(tmp_path):
    """OpenCV's writer drops a frame of another size than the first without a word: the
    AIC folder (900x600, 900x596, 950x641) gave a video of 1 frame."""
    import cv2

    folder = need(IMAGES / "aic")
    photos = sorted(p for p in folder.iterdir() if p.suffix == ".jpg")
    sizes = {cv2.imread(str(p)).shape[:2] for p in photos}
    assert len(sizes) > 1, "the test needs photos of several sizes"
    out = tmp_path / "aic.avi"
    code, _, err = edgepose("run", folder, "--out", out)
    assert code == 0, err
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == len(photos)
    first = cv2.imread(str(photos[0])).shape[:2]
    assert all(f.shape[:2] == first for f in frames)
    # a later photo is letterboxed in: not black, its border is
    assert frames[-1].mean() > 20


# -- values that broke the results -------------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--smoothing-beta", "nan"), ("--smoothing-min-cutoff", "inf"),
                                        ("--smoothing-beta", "-inf")])
def test_a_smoothing_value_that_is_not_a_number_is_refused(clip, tmp_path, flag, value):
    """`--smoothing-beta nan` was taken, and every pose after the first frame was NaN."""
    code, _, err = edgepose("run", clip, f"{flag}={value}", "--json", tmp_path / "p.jsonl")
    assert "must be a number" in one_error_line(code, err)
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize("flags", [["--smoothing", "bogus"], ["--smoothing-beta", "-1"],
                                   ["--smoothing-min-cutoff", "0"]])
def test_a_bad_smoothing_value_is_refused_on_photos_too(flags):
    """Image mode never smooths, so its values were never read, nor checked."""
    code, _, err = edgepose("run", need(IMAGES / "mpii"), *flags)
    one_error_line(code, err)


@pytest.mark.parametrize("flags,says", [(["--max-frames", "0"], "--max-frames"),
                                        (["--max-frames", "-3"], "--max-frames")])
def test_bench_refuses_no_frames(clip, flags, says):
    """`edgepose bench --max-frames 0` ran on one frame and exited 0."""
    code, _, err = edgepose("bench", clip, *flags)
    assert says in one_error_line(code, err)


def test_bench_and_eval_refuse_an_unwritable_output_before_they_run(clip, tmp_path):
    """They ran the whole benchmark or evaluation, then failed on the output."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = edgepose("bench", clip, "--out", blocker / "b", "--runs", "1000")
    assert "could not write" in one_error_line(code, err)
    mpii = need(IMAGES / "mpii")
    code, out, err = edgepose("eval", "--annotations", mpii / "test_mpii.json", "--images", mpii,
                              "--out", blocker / "x.json")
    assert "is a file, not a folder" in one_error_line(code, err)
    assert "AP" not in out  # refused before the evaluation ran
    annotations = tmp_path / "a.json"
    shutil.copy(mpii / "test_mpii.json", annotations)
    before = digest(annotations)
    for out_path, says in ((tmp_path, "is a folder"), (annotations, "is the annotations file")):
        code, out, err = edgepose("eval", "--annotations", annotations, "--images", mpii, "--out", out_path)
        assert says in one_error_line(code, err)
    assert digest(annotations) == before


@pytest.mark.parametrize("args,says", [(["run", ""], "empty name"), (["run", "{clip}", "--out", ""], "--out"),
                                       (["run", "{clip}", "--json", " "], "--json")])
def test_an_empty_name_is_refused(clip, args, says):
    """`edgepose run ""` ran on the working folder; `--out ""` wrote nothing and exited 0."""
    code, _, err = edgepose(*[a.format(clip=clip) for a in args])
    assert says in one_error_line(code, err)


# -- memory for max_people ----------------------------------------------------------------
def test_a_large_max_people_does_not_reserve_memory_for_every_person(model_path):
    """The landmark interpreter was allocated for max_people crops when the pipeline
    opened: 916 MB of RSS at 100, 7.6 GB at 1000. It now takes MAX_BATCH crops at most."""
    code = ("import psutil, edgepose\n"
            "from edgepose.estimators.blazepose import MAX_BATCH\n"
            "p = psutil.Process(); a = p.memory_info().rss\n"
            "pipe = edgepose.Pipeline(model={full!r}, max_people={n}, threads=1)\n"
            "print((p.memory_info().rss - a) / 2**20)\n")
    grown = {}
    for n in (2, 300):
        proc = subprocess.run([sys.executable, "-c", code.format(n=n, full=model_path("full"))],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
        grown[n] = float(proc.stdout.split()[-1])
    assert grown[300] - grown[2] < 100, grown  # 300 crops of full would be about 2 GB


def test_more_crops_than_one_batch_give_the_poses_of_one_crop_each(model_path, monkeypatch):
    """Crops past MAX_BATCH run in a second invoke, with the same outputs."""
    import cv2

    from edgepose import Pipeline
    from edgepose.estimators import blazepose
    from edgepose.profiler import StageClock
    from edgepose.types import Roi

    image = cv2.imread(str(next(need(IMAGES / "mpii").glob("*.jpg"))))
    with Pipeline(model=model_path("full"), static_image_mode=True, threads=1) as pipe:
        x, y, w, h = pipe.process(image).poses[0].bbox
    # five crops about the one person, moved and turned a little
    crops = [Roi(x + w / 2 + 4 * k, y + h / 2 - 3 * k, 1.3 * max(w, h), 0.05 * k) for k in range(5)]
    monkeypatch.setattr(blazepose, "MAX_BATCH", 2)
    with Pipeline(model=model_path("full"), max_people=5, threads=1) as pipe:
        est = pipe.estimator
        assert est._batches
        many = est.estimate_many(image, "bgr", crops, StageClock())
        one = [est.estimate_many(image, "bgr", [roi], StageClock())[0] for roi in crops]
    assert len(many) == 5 and all(m is not None for m in many)
    for a, b in zip(many, one):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.pose.keypoints, b.pose.keypoints, atol=1e-3)


# -- messages that named the wrong fix ----------------------------------------------------
def test_an_unknown_model_lists_every_model_name(clip):
    code, _, err = edgepose("run", clip, "--model", "nonsense")
    line = one_error_line(code, err)
    for name in ("movenet-multipose", "openpose", "posenet", "yolo11n-pose", ".onnx"):
        assert name in line


def test_an_onnx_pose_model_without_its_decoder_names_the_flag(clip, tmp_path):
    """A YOLO-pose export given without --decoder was 'expected [1, 256, 256, 3]' and no more."""
    from onnx_models import pose_heatmap_model

    model = pose_heatmap_model(tmp_path / "pose.onnx", np.zeros((17, 2), np.float32))
    code, _, err = edgepose("run", clip, "--model", model)
    assert "--decoder heatmap|simcc|yolo-pose" in one_error_line(code, err)


def test_a_file_that_is_no_model_names_both_formats(clip, tmp_path):
    code, _, err = edgepose("run", clip, "--model", clip)
    assert "pass a .tflite or .onnx model file" in one_error_line(code, err)


def test_models_offers_a_heads_file_only_for_yolo(tmp_path):
    """Right after `edgepose convert tf-graph openpose` (a fixed-size file), its row said
    "`edgepose convert tf-graph openpose` makes it run at any input size"."""
    from edgepose import registry

    if not registry.FROZEN_GRAPHS["openpose"].converted().is_file():
        pytest.skip("openpose is not converted: run .ci/prepare_models.sh")
    need(MODELS / "yolo" / "yolo11n-pose.onnx")
    code, out, err = edgepose("models")
    assert code == 0, err
    openpose = next(line for line in out.splitlines() if line.startswith("openpose"))
    assert "converted/openpose.tflite" in openpose and "any input size" not in openpose
    code, out, err = edgepose("models", env={"EDGEPOSE_CACHE": str(tmp_path)})  # no heads file yet
    yolo = next(line for line in out.splitlines() if line.startswith("yolo11n-pose"))
    assert "`edgepose convert yolo-heads yolo11n-pose` makes it run at any input size" in yolo


def test_stdout_closed_by_its_reader_ends_quietly(clip):
    """`edgepose run v --json - | head -c 300` said 'could not write None: Broken pipe'."""
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "run", str(clip), "--json", "-"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert json.loads(first)["frame"] == 0
    assert b"Traceback" not in err and b"could not write" not in err, err
