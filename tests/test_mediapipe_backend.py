"""MediaPipe's own engine behind our API: the .task bundle builder, the legacy Solutions and
Tasks backends against our pipeline on the shared images, and their clear errors."""

import sys
import zipfile

import cv2
import numpy as np
import pytest

from conftest import IMAGES, STREET, need
from edgepose import Pipeline
from edgepose.errors import BackendError, InputError, ModelError
from edgepose.options import OptionError

mp = pytest.importorskip("mediapipe", reason="needs mediapipe (pip install 'edgepose[mediapipe]')")

from edgepose import task_bundle  # noqa: E402  (needs mediapipe's metadata tools)
from edgepose.mediapipe_files import legacy_model_file  # noqa: E402

MEMBERS = {task_bundle.DETECTOR_MEMBER, task_bundle.LANDMARK_MEMBER}


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Bundles built on the fly go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("EDGEPOSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, model_path):
    out = tmp_path_factory.mktemp("bundle") / "pose_full.task"
    return task_bundle.build_task_bundle(model_path("detector"), model_path("full"), out)


@pytest.fixture(scope="module")
def legacy_image():
    with Pipeline(backend="mediapipe", model="full", static_image_mode=True) as pipe:
        yield pipe


@pytest.fixture(scope="module")
def tasks_image():
    with Pipeline(backend="mediapipe-tasks", model="full", static_image_mode=True) as pipe:
        yield pipe


def mean_distance(a, b):
    """Mean landmark distance in pixels and the diagonal of b's box."""
    return np.linalg.norm(a.keypoints[:, :2] - b.keypoints[:, :2], axis=1).mean(), np.hypot(*b.bbox[2:])


# -- the bundle builder --------------------------------------------------------------------
def test_bundle_is_stored_uncompressed_with_normalisation_metadata(bundle, model_path):
    from edgepose.backends import open_model

    with zipfile.ZipFile(bundle) as zf:
        infos = zf.infolist()
        assert {i.filename for i in infos} == MEMBERS
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        detector = zf.read(task_bundle.DETECTOR_MEMBER)
        landmark = zf.read(task_bundle.LANDMARK_MEMBER)
    assert task_bundle.read_normalisation(detector) == ([127.5], [127.5])
    assert task_bundle.read_normalisation(landmark) == ([0.0], [255.0])
    # The detector's own metadata is kept byte for byte; the landmark graph is unchanged.
    assert detector == open(model_path("detector"), "rb").read()
    written = bundle.parent / "landmark_with_metadata.tflite"
    written.write_bytes(landmark)
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    original, rewritten = open_model(model_path("full"), threads=1), open_model(str(written), threads=1)
    for a, b in zip(original.run(x), rewritten.run(x)):
        np.testing.assert_array_equal(a, b)


def test_bundle_metadata_is_what_mediapipes_own_writer_writes(bundle, model_path):
    """edgepose writes the metadata from the schemas (MediaPipe's tools do not import from
    0.10.30 on); where MediaPipe's writer still runs, it writes the same metadata."""
    import json

    metadata = pytest.importorskip("mediapipe.tasks.python.metadata.metadata",
                                   reason="MediaPipe's own metadata tools (releases <= 0.10.21)")
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    raw = open(model_path("full"), "rb").read()
    spec = task_bundle.MEMBERS[task_bundle.LANDMARK_MEMBER]
    writer = metadata_writer.MetadataWriter.create(bytearray(raw))
    writer.add_general_info(spec.title, f"{spec.member} written by edgepose")
    writer.add_image_input([spec.mean], [spec.std])
    for _ in range(writer_utils.get_subgraph(bytearray(raw)).OutputsLength()):
        writer.add_feature_output()
    theirs, _ = writer.populate()
    ours = task_bundle.with_normalisation(raw, spec, "full")

    def shown(model):
        return json.loads(metadata.MetadataDisplayer.with_model_buffer(bytes(model)).get_metadata_json())

    assert shown(ours) == shown(theirs)
    with zipfile.ZipFile(bundle) as zf:  # members 4-byte aligned, for MediaPipe's mmap
        for info in zf.infolist():
            assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 4 == 0


def test_mediapipe_pose_landmarker_runs_from_our_bundle(bundle):
    from mediapipe.tasks.python import BaseOptions, vision

    rgb = cv2.cvtColor(cv2.imread(str(need(IMAGES / "mpii" / "004645041.jpg"))), cv2.COLOR_BGR2RGB)
    options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(bundle)))
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    assert len(result.pose_landmarks) == 1
    assert len(result.pose_landmarks[0]) == 33


def test_convert_command_builds_a_bundle(tmp_path, model_path):
    import subprocess
    import sys

    from conftest import ROOT

    out = tmp_path / "lite.task"
    proc = subprocess.run([sys.executable, "-m", "edgepose", "convert", "task-bundle",
                           "--detector", model_path("detector"), "--model", model_path("lite"),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    task_bundle.check_task_bundle(out)


def zip_of(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing member", "lacks pose_landmarks_detector.tflite"),
    ("no metadata", "pose_landmarks_detector.tflite has no input normalisation metadata"),
    ("compressed", "compressed"),
    ("not a zip", "not a zip file"),
])
def test_bad_bundles_are_model_errors(case, message, bundle, model_path, tmp_path):
    with zipfile.ZipFile(bundle) as zf:
        good = {name: zf.read(name) for name in MEMBERS}
    bad = tmp_path / "bad.task"
    if case == "missing member":
        zip_of(bad, {task_bundle.DETECTOR_MEMBER: good[task_bundle.DETECTOR_MEMBER]})
    elif case == "no metadata":
        raw = open(model_path("full"), "rb").read()
        zip_of(bad, {**good, task_bundle.LANDMARK_MEMBER: raw})
    elif case == "compressed":
        with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in good.items():
                zf.writestr(name, data)
    else:  # a plain model file (one with metadata would pass as an empty zip)
        bad.write_bytes(open(model_path("full"), "rb").read())
    with pytest.raises(ModelError, match=message):
        task_bundle.check_task_bundle(bad)
    with pytest.raises(ModelError, match=message):
        Pipeline(backend="mediapipe-tasks", model=str(bad))


def test_builder_refuses_models_in_the_wrong_slot(model_path, tmp_path):
    out = tmp_path / "swapped.task"
    with pytest.raises(ModelError, match="does not look like a detector model"):
        task_bundle.build_task_bundle(model_path("full"), model_path("detector"), out)
    assert not out.exists()


# -- the three backends agree ------------------------------------------------------------
def test_three_backends_agree_on_the_shared_images(shared_images, image_pipeline,
                                                   legacy_image, tasks_image):
    compared = 0
    for path in shared_images:
        bgr = cv2.imread(str(path))
        results = [pipe.process(bgr) for pipe in (image_pipeline, legacy_image, tasks_image)]
        if not all(r.poses for r in results):
            continue
        ours = results[0].poses[0]
        for name, result in zip(("mediapipe", "mediapipe-tasks"), results[1:]):
            theirs = result.poses[0]
            error, diag = mean_distance(theirs, ours)
            assert error <= 0.02 * diag, f"{path.name} {name}: {error:.1f}px > 2% of {diag:.0f}px"
            # z in pixels on the same scale as ours (MediaPipe scales it by the image width)
            z_error = np.abs(theirs.keypoints[:, 2] - ours.keypoints[:, 2]).mean()
            assert z_error <= 0.02 * diag, f"{path.name} {name}: z off by {z_error:.1f}px"
            assert np.linalg.norm(theirs.world - ours.world, axis=1).mean() < 0.01  # metres
            assert theirs.track_id == 0 and 0.0 < theirs.score <= 1.0
            assert result.stages_ms.keys() >= {"preprocess", "mediapipe", "postprocess"}
        compared += 1
    assert compared >= 10, f"all three backends found a person on only {compared} images"


def test_tasks_bundle_finds_the_same_people_as_our_pipeline(shared_images, model_path, bundle):
    from edgepose import Pipeline

    settings = {"static_image_mode": True, "max_people": 5, "min_detection_confidence": 0.5}
    people = 0
    with Pipeline(model=model_path("full"), detector=model_path("detector"), threads=2, **settings) as ours, \
            Pipeline(backend="mediapipe-tasks", model=str(bundle), **settings) as tasks:
        for path in shared_images:
            bgr = cv2.imread(str(path))
            mine, theirs = ours.process(bgr).poses, tasks.process(bgr).poses
            assert len(theirs) == len(mine), f"{path.name}: PoseLandmarker {len(theirs)}, we {len(mine)}"
            unmatched = list(theirs)
            for pose in mine:
                best = min(unmatched, key=lambda other: mean_distance(other, pose)[0])
                error, diag = mean_distance(best, pose)
                assert error <= 0.02 * diag, f"{path.name}: no PoseLandmarker pose matches one of ours"
                unmatched.remove(best)
            assert [p.track_id for p in theirs] == list(range(len(theirs)))
            people += len(mine)
    assert people >= 12


def test_segmentation_masks_match_ours(model_path):
    from edgepose import Pipeline

    bgr = cv2.imread(str(need(IMAGES / "mpii" / "004645041.jpg")))
    masks = []
    for backend in ("tflite", "mediapipe", "mediapipe-tasks"):
        with Pipeline(backend=backend, model="full", static_image_mode=True, segmentation=True) as pipe:
            mask = pipe.process(bgr).poses[0].mask
        assert mask.shape == bgr.shape[:2] and mask.dtype == np.float32
        masks.append(mask > 0.5)
    for mask in masks[1:]:
        iou = (mask & masks[0]).sum() / (mask | masks[0]).sum()
        assert iou > 0.9


# -- video mode and errors ---------------------------------------------------------------
def street_frames(n):
    cap = cv2.VideoCapture(str(need(STREET)))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


@pytest.mark.parametrize("backend", ["mediapipe", "mediapipe-tasks"])
def test_video_mode_tracks_and_smooths(backend):
    with Pipeline(backend=backend, model="full") as pipe:
        results = [pipe.process(f, timestamp_ms=20.0 * i) for i, f in enumerate(street_frames(6))]
    assert all(len(r.poses) == 1 for r in results)
    assert [r.detector_ran for r in results] == [True] + [False] * 5
    assert "smoothing" in results[-1].stages_ms


def test_tasks_takes_any_timestamps_the_pipeline_accepts(caplog):
    """MediaPipe's graph needs strictly increasing whole milliseconds; the pipeline's clock
    hands it those: a repeated timestamp switches to the monotonic clock, one that goes
    back starts a new stream, one within a millisecond is moved on by one."""
    frame = street_frames(1)[0]
    with Pipeline(backend="mediapipe-tasks", model="full", smoothing="none") as pipe:
        for t in (40.0, 40.3, 20.0, 20.0):
            assert pipe.process(frame, timestamp_ms=t).poses
        with pytest.raises(InputError, match="finite number"):
            pipe.process(frame, timestamp_ms=float("nan"))
        assert pipe.process(frame).poses  # and usable after the bad frame
    assert "timestamp went back" in caplog.text and "monotonic clock" in caplog.text


@pytest.mark.parametrize("overrides, message", [
    ({"max_people": 2}, "use backend 'mediapipe-tasks'"),
    ({"model": "some/landmark.tflite"}, "not 'some/landmark.tflite'"),
    ({"delegate": "libedgetpu.so.1"}, "delegate='libedgetpu.so.1' .--delegate. is not used by mediapipe"),
    ({"smoothing": "default", "mediapipe_smoothing": True}, "pass smoothing='none'"),
])
def test_legacy_backend_errors(overrides, message):
    with pytest.raises((BackendError, OptionError), match=message):
        Pipeline(backend="mediapipe", **overrides)


def test_tasks_tracks_and_smooths_several_people():
    """The shared tracker gives MediaPipe's people ids, so smoothing follows each."""
    frames = street_frames(30)
    with Pipeline(backend="mediapipe-tasks", model="full", max_people=3, min_detection_confidence=0.2) as pipe:
        results = [pipe.process(f, timestamp_ms=20.0 * i) for i, f in enumerate(frames)]
    ids = [[p.track_id for p in r.poses] for r in results]
    assert max(len(i) for i in ids) >= 2, ids
    poses, distinct = sum(len(i) for i in ids), {t for i in ids for t in i}
    assert len(distinct) * 3 <= poses, ids  # ids last: not one per frame
    assert all("smoothing" in r.stages_ms for r in results if r.poses)


def test_missing_mediapipe_and_legacy_api(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    with pytest.raises(BackendError, match=r"edgepose\[mediapipe-legacy\]' \(mediapipe>=0.10.14,<=0.10.21\)"):
        Pipeline(backend="mediapipe")
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(BackendError, match=r"pip install 'edgepose\[mediapipe\]'"):
        Pipeline(backend="mediapipe-tasks")


def test_legacy_models_are_copied_in_not_downloaded(tmp_path, model_path):
    from edgepose import models

    model_path("lite")  # skips without ../shared: the copy comes from there

    package = tmp_path / "mediapipe"
    (package / "modules" / "pose_landmark").mkdir(parents=True)
    lite = legacy_model_file("lite", package)
    assert lite == package / "modules" / "pose_landmark" / "pose_landmark_lite.tflite"
    assert models.sha256_of(lite) == models.KNOWN_MODELS["lite"].sha256
    with pytest.raises(ModelError, match="could not write"):
        legacy_model_file("heavy", tmp_path / "no-such-package")
