"""`edgepose smooth` on what users give it: bad numbers, odd timestamps, files that hold no
records, and outputs that cannot (or must not) be written. Each ends in one line, or in
valid JSON Lines."""

import json
import os

import cv2
import numpy as np
import pytest

from conftest import STREET, edgepose, need, one_error_line
from edgepose.offline_smoothing import record_times, smooth_records
from test_smoothing import synthetic_records
from edgepose.smoothing import PRESETS


def strict_json_lines(path) -> list[dict]:
    """The records of ``path``, refusing NaN and Infinity (not JSON, though Python writes them)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def write_records(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def keypoints(records, frame):
    return np.array(records[frame]["poses"][0]["keypoints"])


@pytest.fixture(scope="module")
def run_json(tmp_path_factory):
    """What `edgepose run --json` writes for the first 12 frames of the street video."""
    folder = tmp_path_factory.mktemp("run")
    cap = cv2.VideoCapture(str(need(STREET)))
    clip = folder / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (1280, 720))
    for _ in range(12):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    raw = folder / "raw.jsonl"
    code, _, err = edgepose("run", clip, "--json", raw, "--smoothing", "none")
    assert code == 0, err
    return raw


# -- numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, says", [
    ("--beta", "nan", "beta"), ("--beta", "inf", "beta"), ("--beta", "-1", "beta"),
    ("--min-cutoff", "nan", "min_cutoff"), ("--min-cutoff", "inf", "min_cutoff"),
    ("--min-cutoff", "0", "min_cutoff"),
    ("--fps", "0", "--fps"), ("--fps", "-5", "--fps"), ("--fps", "nan", "--fps"), ("--fps", "inf", "--fps"),
])
def test_non_finite_or_out_of_range_numbers_are_refused_in_one_line(tmp_path, flag, value, says):
    """--beta nan used to write NaN from frame 1 on; --fps 0 a ZeroDivisionError and --fps
    -5 / nan / inf a ValueError traceback (on records without timestamp_ms)."""
    raw, out = tmp_path / "raw.jsonl", tmp_path / "smooth.jsonl"
    records = synthetic_records(10)
    for r in records:
        r["timestamp_ms"] = None
    write_records(raw, records)
    code, _, err = edgepose("smooth", raw, "--out", out, f"{flag}={value}")
    line = one_error_line(code, err)
    assert says in line and value in line
    assert not out.exists()


def test_fps_times_records_without_timestamps(tmp_path):
    raw, out = tmp_path / "raw.jsonl", tmp_path / "smooth.jsonl"
    records = synthetic_records(20)
    for r in records:
        r["timestamp_ms"] = None
    write_records(raw, records)
    code, _, err = edgepose("smooth", raw, "--out", out, "--fps", "25")
    assert code == 0, err
    expected = smooth_records(synthetic_records(20, step_ms=40.0), PRESETS["default"])  # 25 fps
    smoothed = strict_json_lines(out)
    for i in range(20):
        np.testing.assert_allclose(keypoints(smoothed, i), keypoints(expected, i), atol=2e-4)


# -- timestamps: as a live run reads them (README "Smoothing", Pipeline's clock) ------------------
@pytest.mark.parametrize("zero_lag", [False, True])
def test_a_repeated_timestamp_switches_to_the_frame_clock(run_json, tmp_path, zero_lag):
    """A run's file with one timestamp_ms repeated used to end in a ValueError traceback. A
    live pipeline switches to its own clock at a repeated timestamp; offline, the frames
    from there on are timed at --fps."""
    records = [json.loads(line) for line in run_json.read_text().splitlines()]
    records[5]["timestamp_ms"] = records[4]["timestamp_ms"]
    raw, out = tmp_path / "repeated.jsonl", tmp_path / "smooth.jsonl"
    write_records(raw, records)
    code, _, err = edgepose("smooth", raw, "--out", out, "--fps", "50", *["--zero-lag"] * zero_lag)
    assert code == 0, err
    [warning] = err.splitlines()
    assert warning.startswith("edgepose: warning: frame 5 repeats timestamp_ms 80.0")
    smoothed = strict_json_lines(out)
    assert len(smoothed) == 12
    assert keypoints(smoothed, 8).tolist() != keypoints(records, 8).tolist()
    # the same as the file with frames 5 on timed at 50 fps from frame 4 (80 ms)
    clocked = [{**r, "timestamp_ms": 80.0 + (r["frame"] - 4) * 20.0 if r["frame"] >= 5 else r["timestamp_ms"]}
               for r in records]
    expected = smooth_records(clocked, PRESETS["default"], zero_lag=zero_lag)
    for i in range(12):
        np.testing.assert_allclose(keypoints(smoothed, i), keypoints(expected, i), atol=2e-4)


def test_constant_timestamps_do_not_freeze_the_track():
    """Many live streams report one timestamp for every frame: the track must move on."""
    records = synthetic_records(60)
    for r in records:
        r["timestamp_ms"] = 1000.0
    out = smooth_records(records, PRESETS["default"])
    assert np.abs(keypoints(out, 59)[:, 0] - keypoints(records, 59)[:, 0]).max() < 5.0
    assert np.isfinite(np.array([keypoints(out, i) for i in range(60)])).all()


def test_a_timestamp_going_back_restarts_the_filter(tmp_path):
    records = synthetic_records(60)
    for r in records[30:]:
        r["timestamp_ms"] -= 900.0  # a rewound video, frame numbers going on
    raw, out = tmp_path / "rewound.jsonl", tmp_path / "smooth.jsonl"
    write_records(raw, records)
    code, _, err = edgepose("smooth", raw, "--out", out, "--zero-lag")
    assert code == 0, err
    assert "timestamp_ms goes back at frame 30" in err
    smoothed = strict_json_lines(out)
    # the two parts are smoothed as two files would be
    parts = (smooth_records(records[:30], PRESETS["default"], zero_lag=True)
             + smooth_records(records[30:], PRESETS["default"], zero_lag=True))
    assert smoothed == parts
    assert np.abs(keypoints(smoothed, 15) - keypoints(records, 15)).max() > 0.1


def test_record_times_follow_the_live_clock():
    def recs(pairs):
        return [{"frame": f, "timestamp_ms": ms, "poses": []} for f, ms in pairs]

    times, starts = record_times(recs([(0, 0.0), (1, 40.0), (2, 40.0), (3, 40.0), (4, 200.0)]), fps=25)
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])  # the frame clock from the repeat on
    assert starts == [True, False, False, False, False]
    times, starts = record_times(recs([(0, 0.0), (1, 40.0), (2, 10.0), (3, 50.0)]))
    assert times == pytest.approx([0.0, 0.04, 0.01, 0.05]) and starts == [True, False, True, False]
    # a run appended to the file (a camera restarted): frames and clock start again
    times, starts = record_times(recs([(0, 0.0), (1, 40.0), (2, 40.0), (0, 500.0), (1, 540.0)]), fps=25)
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.5, 0.54]) and starts == [True, False, False, True, False]
    # a timestamp behind the frames timed at fps before it: that clock, no restart (it restarted)
    times, starts = record_times(recs([(0, 1000.0), (1, None), (2, 1020.0), (3, 1100.0)]), fps=30)
    assert times == pytest.approx([1.0, 1.0 + 1 / 30, 1.0 + 2 / 30, 1.1]) and starts == [True] + [False] * 3
    times, starts = record_times(recs([(3, None), (4, None), (6, None)]), fps=10)
    assert times == pytest.approx([0.3, 0.4, 0.6]) and starts == [True, False, False]
    for fps in (0, -5.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="fps must be a number > 0"):
            record_times(recs([(0, None)]), fps=fps)


def test_a_pose_of_no_size_is_left_as_it_is_and_nothing_becomes_nan():
    records = synthetic_records(10)
    records[4]["poses"][0]["keypoints"] = [[150.0, 250.0, 0.0, 1.0, 1.0]] * 33
    out = smooth_records(records, PRESETS["default"], zero_lag=True)
    assert keypoints(out, 4).tolist() == keypoints(records, 4).tolist()
    assert np.isfinite(np.array([keypoints(out, i) for i in range(10)])).all()


# -- inputs ------------------------------------------------------------------------------------
def test_a_file_without_records_is_an_error(tmp_path):
    """A 0-byte file used to be 'smoothed 0 frame(s)... wrote', exit 0."""
    out = tmp_path / "smooth.jsonl"
    (tmp_path / "bad").mkdir()
    empty, blank = tmp_path / "bad" / "empty.mp4", tmp_path / "blank.jsonl"
    empty.write_bytes(b"")
    blank.write_text("\n  \n")
    for path in (empty, blank):
        code, _, err = edgepose("smooth", path, "--out", out)
        line = one_error_line(code, err)
        assert f"no pose records in {path}" in line and "edgepose run --json" in line
    assert not out.exists()


def test_files_that_are_not_records_are_one_line(tmp_path):
    out = tmp_path / "smooth.jsonl"
    binary, text = tmp_path / "clip.mp4", tmp_path / "notes.txt"
    binary.write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe\x80" * 100)
    text.write_text("hello\n")
    assert "clip.mp4 is not text" in one_error_line(*edgepose("smooth", binary, "--out", out)[::2])
    assert "notes.txt:1 is not an 'edgepose run --json' record" in one_error_line(
        *edgepose("smooth", text, "--out", out)[::2])
    base = synthetic_records(3)[0]
    bad_lines = {
        "frame": {**base, "frame": "1"},  # used to pass, then TypeError in smoothing
        "timestamp": {**base, "timestamp_ms": float("nan")},
        "keypoints": {**base, "poses": [{**base["poses"][0], "keypoints": [[1.0, float("nan"), 0, 1, 1]] * 33}]},
        "ragged": {**base, "poses": [{**base["poses"][0], "keypoints": [[1.0, 2.0]] * 32 + [[1.0]]}]},
        "id": {**base, "poses": [{**base["poses"][0], "id": [0]}]},
    }
    for name, record in bad_lines.items():
        raw = tmp_path / f"{name}.jsonl"
        write_records(raw, [base, record])
        line = one_error_line(*edgepose("smooth", raw, "--out", out)[::2])
        assert f"{name}.jsonl:2" in line, line
    assert not out.exists()


def test_a_folder_given_as_input_is_called_a_folder(tmp_path):
    """It used to say the folder 'does not exist'."""
    folder = tmp_path / "out"
    folder.mkdir()
    line = one_error_line(*edgepose("smooth", folder, "--out", tmp_path / "smooth.jsonl")[::2])
    assert f"{folder} is a folder, not a file" in line


# -- outputs -----------------------------------------------------------------------------------
def test_the_output_is_never_the_input(tmp_path):
    raw = tmp_path / "raw.jsonl"
    write_records(raw, synthetic_records(10))
    before = raw.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(raw)
    os.link(raw, tmp_path / "hard.jsonl")
    for out in (raw, tmp_path / "." / "raw.jsonl", tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        line = one_error_line(*edgepose("smooth", raw, "--out", out)[::2])
        assert "is the input file" in line
    assert raw.read_bytes() == before


def test_an_output_that_cannot_be_written_fails_first(tmp_path):
    raw = tmp_path / "raw.jsonl"
    records = synthetic_records(10)
    write_records(raw, records)
    with raw.open("a") as f:
        f.write("not a record\n")  # reading it would fail: the output is checked first
    folder = tmp_path / "folder"
    folder.mkdir()
    line = one_error_line(*edgepose("smooth", raw, "--out", folder)[::2])
    assert f"--out {folder} is a folder" in line
    line = one_error_line(*edgepose("smooth", raw, "--out", raw / "smooth.jsonl")[::2])
    assert "could not write" in line and "is a file, not a folder" in line
    # a failed run leaves an earlier output as it was, and no temporary file
    out = tmp_path / "smooth.jsonl"
    out.write_text("earlier\n")
    line = one_error_line(*edgepose("smooth", raw, "--out", out)[::2])
    assert "raw.jsonl:11 is not an 'edgepose run --json' record" in line
    assert out.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "raw.jsonl", "smooth.jsonl"]
