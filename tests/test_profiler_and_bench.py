"""Profiler figures, device facts, and `edgepose bench` end to end on real frames."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgepose import profiler
from edgepose.profiler import Profiler, latency_stats, parse_throttled

from conftest import IMAGES, ROOT, need


def test_latency_stats_known_values():
    s = latency_stats(list(range(1, 101)))
    assert s["count"] == 100 and s["min"] == 1 and s["max"] == 100
    assert s["mean"] == 50.5 and s["p50"] == 50.5
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert s["std"] == pytest.approx(np.std(np.arange(1, 101)), abs=1e-3)
    assert latency_stats([]) == {"count": 0}


def test_profiler_counts_skipped_stages_as_zero_and_reports_process():
    prof = Profiler()
    prof.add({"landmark": 4.0, "detector": 6.0}, poses=1, detector_ran=True, track_ids=(0,))
    prof.add({"landmark": 2.0}, poses=1, track_ids=(0,))
    prof.add({"landmark": 3.0}, poses=2, track_ids=(0, 1))
    s = prof.summary()
    assert s["frames"] == 3 and s["people"] == 4 and s["tracks"] == 2 and s["detector_frames"] == 1
    assert s["stages_ms"]["detector"]["count"] == 3 and s["stages_ms"]["detector"]["mean"] == 2.0
    assert s["stages_ms"]["landmark"]["p50"] == 3.0
    assert prof.rolling_fps is not None and prof.rolling_fps > 0
    assert s["process"]["rss_mb_max"] > 10  # psutil is a dependency: a real reading


def test_thermal_zones_read_and_absent_sensors_are_none(tmp_path):
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("48312\n")
    assert profiler._thermal_zones(str(tmp_path)) == {"thermal_zone0:cpu-thermal": 48.312}
    assert profiler._thermal_zones(str(tmp_path / "none")) is None


def test_pi_throttle_flags():
    flags = parse_throttled("throttled=0x50005\n")
    assert flags["under_voltage_now"] and flags["throttled_now"] and not flags["freq_capped_now"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert parse_throttled("error") is None


def test_device_facts_name_the_machine():
    facts = profiler.device_facts()
    assert facts["cores"] >= 1 and facts["python"].count(".") == 2
    assert "numpy" in facts["libraries"]
    assert set(facts["thermal"]) == {"thermal_zones_c", "raspberry_pi_throttled", "jetson_power_rails_mw"}


def test_bench_command_writes_json_markdown_and_plot(tmp_path, model_path):
    folder = need(IMAGES / "mhp")
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "edgepose", "bench", str(folder), "--models", "full",
         "--threads", "1,2", "--warmup", "1", "--runs", "4", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "bench.json").read_text())
    assert report["schema"] == "edgepose.bench/1" and report["source"]["mode"] == "image"
    assert [r["threads"] for r in report["results"]] == [1, 2]
    for r in report["results"]:
        lat = r["latency_ms"]
        assert lat["count"] == 4 and lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
        assert r["model_sha256"] == "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"
        assert r["stages_ms"]["landmark"]["count"] == 4
    assert "| full | tflite/litert | 2 |" in (out / "bench.md").read_text()
    if (out / "bench.png").exists():
        assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_without_out_prints_the_table_and_writes_nothing(tmp_path, model_path):
    image = next(need(IMAGES / "mhp").glob("*.jpg"))
    here = tmp_path / "cwd"
    here.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "edgepose", "bench", str(image), "--threads", "1",
         "--warmup", "0", "--runs", "2"],
        cwd=here, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| full | tflite/litert | 1 |" in proc.stdout and "wrote" not in proc.stdout
    assert list(here.iterdir()) == []  # no bench-results/ in the current folder


def test_bench_says_no_detector_for_a_model_that_finds_people_itself(tmp_path):
    """MoveNet MultiPose and YOLO-pose rows were labelled with detector "blazepose", which
    never ran: the detector is what the pipeline describes (null for these)."""
    pytest.importorskip("onnx", reason="needs the test extra (onnx) to build the stand-in model")
    from onnx_models import constant_model

    rows = np.zeros((20, 56), np.float32)  # YOLO-pose: one person, 17 keypoints on a line
    rows[0, :5] = [160, 200, 100, 200, 0.9]
    rows[0, 5:] = np.stack([np.full(17, 160.0), np.linspace(110, 290, 17), np.full(17, 0.8)], 1).ravel()
    model = constant_model(tmp_path / "yolo.onnx", (1, 3, 320, 320), {"output0": rows.T[None]})
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "edgepose", "bench", str(need(IMAGES / "mhp")), "--models", str(model),
         "--decoder", "yolo-pose", "--max-people", "3", "--threads", "1", "--warmup", "0", "--runs", "2",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads((out / "bench.json").read_text())["results"]
    assert result["detector"] is None
    from edgepose.bench import markdown_table

    report = json.loads((out / "bench.json").read_text())
    report["results"].append({**result, "model": "movenet-multipose", "decoder": None})
    table = markdown_table(report)
    assert f"| {model} | none (yolo-pose finds people), 3 people | onnx/onnxruntime-cpu | 1 |" in table
    assert "| movenet-multipose | none (model finds people), 3 people |" in table


def test_publish_bench_regenerates_the_readme_table_without_measuring(tmp_path, monkeypatch):
    """README says `python benchmarks/publish_bench.py` regenerates its table; it re-ran
    the whole 146 s benchmark. Now it reads benchmarks/results/bench_street.json (--measure
    runs the benchmark), and the table in README is the one those results give."""
    import edgepose.bench

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import publish_bench

    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    monkeypatch.setattr(publish_bench, "README", readme)
    monkeypatch.setattr(edgepose.bench, "bench", lambda *a, **k: pytest.fail("it measured"))
    monkeypatch.setattr(sys, "argv", ["publish_bench.py"])
    publish_bench.main()
    assert readme.read_text() == (ROOT / "README.md").read_text()
