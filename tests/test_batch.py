"""``edgepose batch`` as a user meets it: a folder of short clips cut from the shared videos
plus one corrupt file. Every good video's JSON Lines equal `edgepose run --json`'s frame for
frame; the corrupt one is failed in the manifest and the exit code says so; a run stopped
with SIGTERM leaves no partial file and a re-run does only the rest; Ray (a head and a
worker node started here, in a loopback-only network namespace) writes what the local
engine writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pytest

from conftest import ROOT, STREET, edgepose, need

VIDEOS = STREET.parent
# the same options for run and batch; 320x180 keeps it fast, 3 people makes ids matter
OPTIONS = ["--max-people", "3", "--threads", "1"]
GOOD = ["street_a.avi", "sub/street_b.avi", "sub/deeper/pedestrians.avi", "posetrack.avi"]


def cut(source: Path, target: Path, frames: int, start: int = 0, size=(320, 180)) -> Path:
    cap = cv2.VideoCapture(str(need(source)))
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), cap.get(cv2.CAP_PROP_FPS), size)
    written = 0
    while written < frames:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size))
        written += 1
    writer.release()
    cap.release()
    assert written > 0, f"nothing read from {source}"
    return target


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    cut(STREET, folder / "street_a.avi", 25)
    cut(STREET, folder / "sub" / "street_b.avi", 25, start=100)
    cut(VIDEOS / "pedestrians_960x540_5fps.mp4", folder / "sub" / "deeper" / "pedestrians.avi", 20)
    cut(VIDEOS / "posetrack_000001" / "000001_mpiinew_test.mp4", folder / "posetrack.avi", 5)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 40)
    (folder / "notes.txt").write_text("not a video, and not in a folder's list")
    return folder


def frames_of(path: Path) -> list[dict]:
    """JSON Lines records without their timings (stages_ms), which differ run to run."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("stages_ms")
    return records


@pytest.fixture(scope="module")
def reference(clips, tmp_path_factory) -> dict[str, list[dict]]:
    """`edgepose run VIDEO --json` on every good clip."""
    out = tmp_path_factory.mktemp("run")
    found = {}
    for name in GOOD:
        target = out / (name.replace("/", "_") + ".jsonl")
        code, _, err = edgepose("run", clips / name, "--json", target, *OPTIONS)
        assert code == 0, err
        found[name] = frames_of(target)
    assert sum(len(r["poses"]) for r in found["street_a.avi"]) > 25  # several people, ids matter
    return found


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_run(clips, tmp_path_factory):
    """One local batch over the folder: one worker, so that one pipeline runs every video
    (the strictest check that a video starts as on a new pipeline)."""
    out = tmp_path_factory.mktemp("local") / "poses"
    code, stdout, stderr = edgepose("batch", clips, "--out", out, "--workers", 1, *OPTIONS)
    return out, code, stdout, stderr


def test_every_video_equals_edgepose_run_and_the_corrupt_one_is_failed(clips, reference, local_run):
    out, code, stdout, stderr = local_run
    assert code == 1, stderr
    assert "edgepose: error: 1 of 5 video(s) failed" in stderr
    assert "this run: 4 done, 1 failed" in stdout
    for name in GOOD:
        assert frames_of(out / f"{name}.jsonl") == reference[name], name
    records = {Path(r["path"]).relative_to(clips).as_posix(): r for r in manifest(out)}
    assert set(records) == {*GOOD, "broken.mp4"}
    broken = records["broken.mp4"]
    assert broken["status"] == "failed" and "\n" not in broken["error"]
    assert "broken.mp4 could not be opened as a video" in broken["error"]
    assert f"failed: {clips / 'broken.mp4'}: broken.mp4 could not be opened" in stdout
    assert not (out / "broken.mp4.jsonl").exists()
    for name in GOOD:
        r = records[name]
        data = (clips / name).read_bytes()
        assert r["status"] == "done" and r["error"] is None
        assert r["size"] == len(data) and r["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert r["frames"] == len(reference[name]) and r["output"] == str(out / f"{name}.jsonl")
        assert r["poses"] == sum(len(f["poses"]) for f in reference[name])
        assert r["options"] == {"max_people": 3} and r["format"] == "jsonl"
    assert not list(out.rglob("*.part"))


def test_a_rerun_skips_what_is_done_and_tries_the_failed_again(clips, local_run):
    out = local_run[0]
    before = manifest(out)
    code, stdout, stderr = edgepose("batch", clips, "--out", out, *OPTIONS)
    assert code == 1, stderr
    assert "5 video(s), 4 done before (skipped); this run: 0 done, 1 failed" in stdout
    added = manifest(out)[len(before):]
    assert [Path(r["path"]).name for r in added] == ["broken.mp4"]
    # other options into the same folder would mix results: refused in one line
    code, _, stderr = edgepose("batch", clips, "--out", out, "--max-people", "2")
    assert code == 1 and stderr.strip().splitlines()[-1].startswith("edgepose: error:")
    assert "holds results made with other settings" in stderr


def test_parquet_has_one_row_per_pose_with_the_json_values(clips, reference, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow (the parquet extra)")
    code, _, stderr = edgepose("batch", clips / "street_a.avi", "--out", tmp_path, "--format", "parquet", *OPTIONS)
    assert code == 0, stderr
    rows = pq.read_table(tmp_path / "street_a.avi.parquet").to_pylist()
    expected = [{"source": f["source"], "frame": f["frame"], "image": f["image"], "mode": f.get("mode"),
                 "timestamp_ms": f["timestamp_ms"], "image_width": f["image_size"][0],
                 "image_height": f["image_size"][1], **{k: p.get(k) for k in ("id", "score", "bbox", "keypoints", "world")}}
                for f in reference["street_a.avi"] for p in f["poses"]]
    assert rows == expected


def still_image(clips: Path, target: Path) -> Path:
    """A frame of a clip written as a photo (JPEG, whatever ``target``'s suffix)."""
    ok, frame = cv2.VideoCapture(str(clips / "posetrack.avi")).read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cv2.imencode(".jpg", frame)[1].tobytes())
    return target


def test_bad_invocations_are_one_line_and_make_nothing_in_out(clips, tmp_path):
    photo = still_image(clips, tmp_path / "photos" / "frame.jpg")
    renamed = still_image(clips, tmp_path / "frame.dat")  # a video may have any name: the content says
    video = clips / "posetrack.avi"
    for args, message in [((tmp_path / "nope",), "does not exist"),
                          ((tmp_path / "empty",), "no video found"),
                          ((photo.parent,), "1 image(s) skipped (frame.jpg): edgepose batch takes videos; "
                                            f"run images with `edgepose run {photo.parent}`"),
                          ((video, photo), f"{photo} is an image: edgepose batch takes videos; run "
                                           f"images with `edgepose run {photo}`"),
                          ((renamed,), "frame.dat is an image: edgepose batch takes videos"),
                          ((clips, "--address", "127.0.0.1:6379"), "add --engine ray"),
                          ((clips, "--workers", "0"), "workers must be a whole number >= 1"),
                          ((clips, "--threads", "0"), "threads must be a whole number >= 1"),
                          ((video, "--model", "nosuch"), "unknown landmark model 'nosuch'"),
                          ((video, "--runtime", "nope"), "unknown TFLite runtime 'nope'")]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        code, _, stderr = edgepose("batch", *args, "--out", tmp_path / "out")
        assert code == 1 and stderr.strip().splitlines() == [stderr.strip().splitlines()[-1]], stderr
        assert message in stderr
        # every option and model is checked before anything is made in --out
        assert not (tmp_path / "out").exists(), (args, sorted((tmp_path / "out").iterdir()))


def test_images_in_a_folder_are_skipped_with_a_warning(clips, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(clips / "posetrack.avi", folder / "sub" / "clip.avi")
    still_image(clips, folder / "a.jpg")
    still_image(clips, folder / "sub" / "b.png")
    code, stdout, stderr = edgepose("batch", folder, "--out", tmp_path / "out", *OPTIONS)
    assert code == 0, stderr
    assert ("edgepose: warning: 2 image(s) skipped (a.jpg, b.png): edgepose batch takes videos; "
            f"run images with `edgepose run {folder}`") in stderr
    assert "this run: 1 done, 0 failed" in stdout
    assert [Path(r["path"]).name for r in manifest(tmp_path / "out")] == ["clip.avi"]


def test_a_truncated_video_is_done_with_a_warning_and_exit_1_as_edgepose_run_judges_it(clips, tmp_path):
    data = (clips / "street_a.avi").read_bytes()
    video = tmp_path / "cut" / "truncated.avi"
    video.parent.mkdir()
    video.write_bytes(data[:len(data) * 3 // 10])  # the header says 25 frames; about 7 decode
    code, _, stderr = edgepose("run", video, "--json", tmp_path / "run.jsonl", *OPTIONS)
    assert code == 1 and "ended after" in stderr and "truncated" in stderr, stderr
    expected = frames_of(tmp_path / "run.jsonl")
    assert 0 < len(expected) < 25
    out = tmp_path / "poses"
    code, stdout, stderr = edgepose("batch", video.parent, "--out", out, *OPTIONS)
    assert code == 1, stderr  # it exited 0
    assert "edgepose: warning: 1 video(s) ended early" in stderr
    assert "this run: 1 done, 0 failed" in stdout
    [record] = manifest(out)
    assert record["status"] == "done" and record["frames"] == len(expected)
    assert record["warning"].startswith(f"truncated.avi ended after {len(expected)} of 25 frames")
    assert "\n" not in record["warning"] and f"warning: {video}: truncated.avi ended after" in stdout
    assert frames_of(out / "truncated.avi.jsonl") == expected  # as run's --json: the frames read
    # the same file again would give the same frames: a resume skips it; a changed file is run
    code, stdout, _ = edgepose("batch", video.parent, "--out", out, *OPTIONS)
    assert code == 0 and "1 done before (skipped)" in stdout
    video.write_bytes(data)
    code, stdout, stderr = edgepose("batch", video.parent, "--out", out, *OPTIONS)
    assert code == 0 and "this run: 1 done, 0 failed" in stdout, stderr
    assert manifest(out)[-1]["warning"] is None and manifest(out)[-1]["frames"] == 25


def test_a_list_file_names_videos_and_two_of_one_name_get_distinct_outputs(clips, tmp_path):
    from edgepose.batch.inputs import find_videos

    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "street_a.avi"
    twin.write_bytes((clips / "street_a.avi").read_bytes())
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# archive\n{clips / 'street_a.avi'}\nother/street_a.avi\n\n{clips / 'sub'}\n")
    keys = sorted(v.key for v in find_videos([str(listing)]))
    assert len(keys) == 4 and len(set(keys)) == 4
    assert [k for k in keys if not k.startswith("street_a.avi-")] == ["deeper/pedestrians.avi", "street_b.avi"]


def copies(video: Path, folder: Path, n: int) -> Path:
    """A folder of ``n`` copies of ``video``: copy0.avi ..."""
    folder.mkdir()
    for i in range(n):
        (folder / f"copy{i}.avi").write_bytes(video.read_bytes())
    return folder


def start_until_a_video_is_done(archive: Path, out: Path) -> subprocess.Popen:
    """`edgepose batch ARCHIVE --out OUT --workers 2`, started in its own process group (a
    terminal's job), returned once the manifest has its first line (a video done, the
    others in flight)."""
    cmd = [sys.executable, "-m", "edgepose", "batch", str(archive), "--out", str(out), "--workers", "2", *OPTIONS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not ((out / "manifest.jsonl").is_file() and (out / "manifest.jsonl").read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no video was done: {proc.communicate()}")
        time.sleep(0.05)
    return proc


def test_sigterm_leaves_no_partial_file_and_a_rerun_does_only_the_rest(clips, reference, tmp_path):
    archive = copies(clips / "street_a.avi", tmp_path / "archive", 8)
    out = tmp_path / "poses"
    proc = start_until_a_video_is_done(archive, out)
    try:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr  # docs/batch.md: 130 / 143
    assert "stopped; every video finished is in" in stderr
    assert "8 video(s); this run: " in stdout and f"wrote: {out}" in stdout  # the summary, as run's
    assert not list(out.rglob("*.part"))
    first = manifest(out)
    done = {r["path"] for r in first if r["status"] == "done"}
    assert 1 <= len(done) < 8
    expected = reference["street_a.avi"]
    for path in out.glob("copy*.jsonl"):  # every output there is whole
        assert frames_of(path) == [{**r, "source": path.stem, "image": path.stem} for r in expected]
    assert all(Path(r["output"]).is_file() for r in first)
    code, stdout, stderr = edgepose("batch", archive, "--out", out, *OPTIONS)
    assert code == 0, stderr
    assert f"8 video(s), {len(done)} done before (skipped); this run: {8 - len(done)} done, 0 failed" in stdout
    again = manifest(out)[len(first):]
    assert {r["path"] for r in again}.isdisjoint(done) and len(again) == 8 - len(done)
    for i in range(8):
        assert frames_of(out / f"copy{i}.avi.jsonl") == [
            {**r, "source": f"copy{i}.avi", "image": f"copy{i}.avi"} for r in expected]


def test_sighup_stops_as_sigterm_does(clips, tmp_path):
    archive = copies(clips / "posetrack.avi", tmp_path / "archive", 6)
    out = tmp_path / "poses"
    proc = start_until_a_video_is_done(archive, out)
    try:
        os.killpg(proc.pid, signal.SIGHUP)  # the terminal went away: the whole job gets it
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGHUP, stderr
    assert "stopped; every video finished is in" in stderr and "this run: " in stdout
    assert not list(out.rglob("*.part"))
    # the workers, hung up on too, were stopped by the batch, not killed in a video
    assert all(r["status"] == "done" and Path(r["output"]).is_file() for r in manifest(out)), manifest(out)


def test_workers_end_when_the_batch_is_killed_outright(clips, tmp_path):
    import psutil

    archive = copies(clips / "street_a.avi", tmp_path / "archive", 4)
    out = tmp_path / "poses"
    cmd = [sys.executable, "-m", "edgepose", "batch", str(archive), "--out", str(out), "--workers", "2",
           "--model", "heavy", *OPTIONS]  # heavy: the workers are busy on a video when it is killed
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = []
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob(".*.part"))) < 2:  # both workers are in a video
            assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)  # workers, resource tracker
        assert sum("spawn_main" in " ".join(c.cmdline()) for c in children) == 2
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running after their parent was killed: {alive}"
    finally:
        proc.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    assert not list(out.rglob("*.part"))  # each deleted its temporary file, as on SIGTERM


def test_a_worker_that_dies_fails_its_video_alone(clips, reference, tmp_path):
    import psutil

    archive = copies(clips / "street_a.avi", tmp_path / "archive", 6)
    out = tmp_path / "poses"
    proc = start_until_a_video_is_done(archive, out)
    try:
        time.sleep(0.2)  # both workers are on a video now (one just took its next)
        workers = [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        workers[0].kill()  # as a decoder crash would
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    records = manifest(out)
    failed = [r for r in records if r["status"] == "failed"]
    assert len(records) == 6 and len(failed) == 1, stdout
    assert failed[0]["error"] == "the worker process ended (signal SIGKILL) on this video"
    assert not Path(failed[0]["output"]).exists() and not list(out.rglob("*.part"))
    assert "edgepose: error: 1 of 6 video(s) failed" in stderr


def test_reset_with_restart_ids_starts_ids_again_as_a_new_tracker():
    from edgepose.tracking import Tracker

    tracker = Tracker(min_iou=0.5)
    assert tracker.assign([(0, 0, 10, 10), (50, 50, 60, 60)]) == [0, 1]
    tracker.reset()
    assert tracker.assign([(0, 0, 10, 10)]) == [2]  # a live stream: ids never reused
    tracker.reset(restart_ids=True)
    assert tracker.assign([(0, 0, 10, 10), (50, 50, 60, 60)]) == [0, 1]


# -- Ray ----------------------------------------------------------------------------------
RAY_PORT = 6379


def ray_nodes(run, address: str, env: dict) -> int:
    proc = run(["status", "--address", address], capture_output=True, text=True, env=env, timeout=60)
    return proc.stdout.count(" node_") if proc.returncode == 0 else 0


@pytest.fixture
def ray_cluster():
    """A Ray head and one worker node, one CPU each, in a network namespace made here that
    has only a loopback interface (Ray otherwise talks over the machine's own address,
    whatever --node-ip-address says); token authentication with a token made here
    (nothing written to ~/.ray); stopped, by process group, and the namespace deleted at
    the end. Yields (address, env, the command prefix that runs inside the namespace)."""
    pytest.importorskip("ray.data", reason="--engine ray needs the ray extra (pip install -e '.[ray]')")
    ray = str(Path(sys.executable).with_name("ray"))
    if not os.path.exists(ray):
        pytest.skip(f"the ray command is not next to {sys.executable}")
    netns = f"edgepose-ray-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", netns], capture_output=True, text=True) \
        if shutil.which("ip") else None
    if made is None or made.returncode != 0:
        pytest.skip("the Ray test runs its cluster in a loopback-only network namespace, which needs "
                    f"root and iproute2 ({made.stderr.strip() if made else 'no ip command'})")
    inside = ["ip", "netns", "exec", netns]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{RAY_PORT}"
    node = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory",
            str(100 * 1024 * 1024), "--disable-usage-stats", "--block"]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    started = []

    def run_ray(args, **kwargs):
        return subprocess.run([*inside, ray, *args], **kwargs)

    try:
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        for extra, nodes in ((["--head", "--port", str(RAY_PORT), "--include-dashboard",
                               "false", "--temp-dir", temp], 1), (["--address", address], 2)):
            started.append(subprocess.Popen([*inside, ray, "start", *extra, *node], env=env,
                                            start_new_session=True, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 90
            while ray_nodes(run_ray, address, env) < nodes:
                assert started[-1].poll() is None, f"ray start {' '.join(extra)} ended"
                assert time.monotonic() < deadline, f"the Ray cluster at {address} did not come up"
                time.sleep(0.5)
        yield address, env, inside
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in reversed(started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):  # what `ray start` left in its group
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_engine_on_a_two_node_cluster_writes_what_local_writes(clips, local_run, ray_cluster, tmp_path):
    address, env, inside = ray_cluster
    out = tmp_path / "poses"
    proc = subprocess.run([*inside, sys.executable, "-m", "edgepose", "batch", str(clips), "--out", str(out),
                           "--engine", "ray", "--address", address, *OPTIONS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "on 2 Ray actor(s) x 1 thread(s)" in proc.stderr
    assert "this run: 4 done, 1 failed" in proc.stdout
    for name in GOOD:
        assert frames_of(out / f"{name}.jsonl") == frames_of(local_run[0] / f"{name}.jsonl"), name
    records = {Path(r["path"]).name: r for r in manifest(out)}
    assert records["broken.mp4"]["status"] == "failed"
    assert len({r["worker"] for r in records.values()}) == 2  # both nodes' actors worked


def test_ray_engine_without_ray_is_one_line(clips, tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from edgepose.cli import main; "
            f"sys.exit(main(['batch', {str(clips)!r}, '--out', {str(tmp_path)!r}, '--engine', 'ray']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("edgepose: error: --engine ray needs Ray with Ray Data: "
                                   "pip install 'edgepose[ray]'")
