"""Model registry resolution and the TFLite backend's checks, on real files."""

import shutil

import numpy as np
import pytest

from edgepose import models, registry
from edgepose.backends import open_model
from edgepose.errors import BackendError, ModelError

from conftest import MODELS, need


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No model path, an empty cache, downloads off: only what the test puts there."""
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEPOSE_MODEL_PATH", raising=False)
    monkeypatch.setenv("EDGEPOSE_OFFLINE", "1")
    monkeypatch.setattr(models, "mediapipe_dir", lambda: None)
    return tmp_path


def test_registry_pins_the_shared_digests():
    sums = need(MODELS / "SHA256SUMS").read_text().split()
    pinned = dict(zip(sums[1::2], sums[0::2]))
    for model in models.KNOWN_MODELS.values():
        assert pinned[model.filename] == model.sha256


def test_resolves_from_cache_and_checks_digest(isolated):
    src = need(MODELS / "pose_landmark_lite.tflite")
    cache = isolated / "cache"
    cache.mkdir()
    shutil.copy(src, cache / src.name)
    assert models.resolve("lite", "landmark") == str(cache / src.name)
    # a file with the right name but other bytes is not the pinned model
    (cache / src.name).write_bytes(src.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="pose_landmark_lite.tflite.*not on this machine"):
        models.resolve("lite", "landmark")


def test_offline_and_missing_says_which_file_and_how(isolated):
    with pytest.raises(ModelError) as err:
        models.resolve("heavy", "landmark")
    msg = str(err.value)
    assert "pose_landmark_heavy.tflite" in msg and models.KNOWN_MODELS["heavy"].sha256 in msg
    assert "EDGEPOSE_MODEL_PATH" in msg and "--model" in msg


def test_model_path_env_is_searched(isolated, monkeypatch):
    need(MODELS)
    monkeypatch.setenv("EDGEPOSE_MODEL_PATH", str(MODELS))
    rows = {r["name"]: r for r in registry.status()}
    assert rows["heavy"]["source"] == "EDGEPOSE_MODEL_PATH"
    assert rows["heavy"]["path"].endswith("pose_landmark_heavy.tflite")


@pytest.mark.parametrize("name, role, message", [
    ("huge", "landmark", "unknown landmark model 'huge'"),
    ("detector", "landmark", "is a detector model, not a landmark model"),
    ("/no/such/model.tflite", "landmark", "does not exist"),
])
def test_bad_model_names(name, role, message):
    with pytest.raises(ModelError, match=message):
        models.resolve(name, role)


def test_non_model_and_truncated_files_are_model_errors(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelError, match="not a TFLite model"):
        open_model(str(junk))
    data = need(MODELS / "pose_landmark_lite.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="could not be loaded"):
        open_model(str(cut))


def test_backend_runs_real_model_and_reports_tensors(model_path):
    model = open_model(model_path("detector"), threads=2)
    assert [tuple(s.shape) for s in model.inputs] == [(1, 224, 224, 3)]
    assert sorted(tuple(s.shape) for s in model.outputs) == [(1, 2254, 1), (1, 2254, 12)]
    outs = model.run(np.zeros((1, 224, 224, 3), np.float32))
    assert all(np.isfinite(o).all() for o in outs)


def test_unknown_runtime_and_bad_delegate(model_path, tmp_path):
    with pytest.raises(BackendError, match="unknown TFLite runtime"):
        open_model(model_path("detector"), runtime="onnx")
    with pytest.raises(BackendError, match="does not exist"):
        open_model(model_path("detector"), delegate=str(tmp_path / "libnope.so"))
    not_a_delegate = tmp_path / "libfake_delegate.so"
    not_a_delegate.write_bytes(b"\x7fELF garbage")
    with pytest.raises(BackendError, match="could not be loaded"):
        open_model(model_path("detector"), delegate=str(not_a_delegate))


def test_wrong_model_in_a_slot_names_the_tensor(model_path):
    from edgepose import Pipeline

    with pytest.raises(ModelError, match=r"landmark model .*pose_detection.tflite.*\[1, 256, 256, 3\]"):
        Pipeline(model=model_path("detector"))
    with pytest.raises(ModelError, match=r"detector model .*expected one float32 input of shape \[1, 224, 224, 3\]"):
        Pipeline(detector=model_path("full"))


def test_converted_metadata_is_read_and_checked(model_path, tmp_path):
    pytest.importorskip("ai_edge_litert.schema_py_generated", reason="writing metadata needs LiteRT's schema")
    from converters.metadata import describe, with_tflite_metadata
    from edgepose import Pipeline

    source = model_path("lite")
    info = describe(source, models.sha256_of(source), "float32", "blazepose-landmark", "test")
    converted = tmp_path / "lite_marked.tflite"
    converted.write_bytes(with_tflite_metadata(open(source, "rb").read(), info))
    with Pipeline(model=str(converted), detector=model_path("detector")) as pipe:
        facts = pipe.describe()
        assert facts["variant"] == "float32" and facts["converted_from"] == "pose_landmark_lite.tflite"
    with pytest.raises(ModelError, match="converted as a blazepose-landmark model.*pass it with --model"):
        Pipeline(detector=str(converted))
    wrong = dict(info, input=dict(info["input"], std=127.5))
    (tmp_path / "wrong.tflite").write_bytes(with_tflite_metadata(open(source, "rb").read(), wrong))
    with pytest.raises(ModelError, match="expects input"):
        Pipeline(model=str(tmp_path / "wrong.tflite"))


def test_tflite_runtime_with_numpy2_is_a_clear_error(monkeypatch):
    import sys
    import types

    from edgepose.backends import tflite

    fake = types.ModuleType("tflite_runtime.interpreter")
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    monkeypatch.setattr(np, "__version__", "2.1.0")
    with pytest.raises(BackendError, match="built against NumPy 1.x.*numpy<2"):
        tflite._import_runtime("tflite-runtime")
    monkeypatch.setenv("EDGEPOSE_TFLITE_RUNTIME", "tflite-runtime")
    with pytest.raises(BackendError, match="built against NumPy 1.x"):
        tflite._import_runtime("auto")


def test_atomic_write_puts_the_file_in_place_or_leaves_the_old_one(tmp_path):
    import os

    from edgepose.fileio import atomic_write

    out = tmp_path / "sub" / "model.tflite"
    with atomic_write(out) as tmp:
        assert tmp.parent == out.parent and not out.exists()
        tmp.write_bytes(b"first")
    assert out.read_bytes() == b"first" and os.stat(out).st_mode & 0o777 == 0o644
    with pytest.raises(ModelError, match="check failed"):
        with atomic_write(out) as tmp:
            tmp.write_bytes(b"half written")
            raise ModelError("check failed")
    assert out.read_bytes() == b"first"
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.tflite"]


def test_download_keeps_only_bytes_with_the_pinned_digest(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.delenv("EDGEPOSE_OFFLINE", raising=False)
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(b"the pinned model")
    bad.write_bytes(b"something else")
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "model.bin"
    with pytest.raises(ModelError, match=r"bad.bin: sha256 .* is not the pinned"):
        models.download_checked([bad.as_uri()], dest, digest, "test", timeout=5)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert models.download_checked([bad.as_uri(), good.as_uri()], dest, digest, "test", timeout=5) == dest
    assert dest.read_bytes() == b"the pinned model"
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]
