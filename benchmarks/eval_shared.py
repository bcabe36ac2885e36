"""Accuracy on the shared annotated image sets: edgepose (lite / full / heavy, max_people 1
and 10) and mediapipe.solutions.pose (model_complexity 0 / 1 / 2), all in static image mode.

Sets: mpii, aic, crowdpose, mhp, jhmdb, exlpose under ../shared/data/images. Figures are
those of ``edgepose.evaluation`` (OKS AP/AR with pycocotools over the joints each set
shares with BlazePose, PCK@0.2 of the torso, PCKh@0.5 where the layout has a head
segment, per-joint errors). The sets are tiny (2-5 images): read the figures as a smoke
test and a comparison between configurations, not as benchmark numbers.
Writes benchmarks/results/eval_shared.json.

    python benchmarks/eval_shared.py [--threads 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common import IMAGES, MODELS, RESULTS, command, machine, require_shared, use_shared_models, write_json

SETS = {
    "mpii": "test_mpii.json",
    "aic": "test_aic.json",
    "crowdpose": "test_crowdpose.json",
    "mhp": "test_mhp.json",
    "jhmdb": "test_jhmdb_sub1.json",
    "exlpose": "test_exlpose.json",
}
MODEL_NAMES = ("lite", "full", "heavy")
MAX_PEOPLE = (1, 10)
KEPT = ("images", "annotated_people", "people", "predictions", "matched", "AP", "AP50",
        "AP75", "AR", "AR50", "AR75", "PCK@0.2", "pck_people", "PCKh@0.5", "pckh_people", "joints")


class MediaPipeSolution:
    """mediapipe.solutions.pose.Pose behind the estimator interface: BGR image in,
    FrameResult with one Pose (x, y in pixels) or none out.

    The legacy API gives no pose score and leaves landmark presence at 0: the Pose gets
    score 1.0 and presence 1.0 (a pose is only returned when the model's presence passed
    MediaPipe's threshold), so its evaluation score is the mean visibility.
    """

    def __init__(self, complexity: int) -> None:
        import mediapipe as mp

        self.complexity = complexity
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=complexity)

    def process(self, image: np.ndarray):
        from edgepose.types import FrameResult, Pose

        h, w = image.shape[:2]
        found = self._pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).pose_landmarks
        poses = []
        if found is not None:
            kp = np.array([(p.x * w, p.y * h, p.z * w, p.visibility, 1.0) for p in found.landmark],
                          dtype=np.float32)
            poses.append(Pose(kp, 1.0, track_id=0))
        return FrameResult(poses, (w, h))

    def close(self) -> None:
        self._pose.close()


def mediapipe_models_from(models: Path) -> None:
    """Make mediapipe.solutions.pose load its models from ``models``.

    The wheel ships only the full landmark model and fetches lite/heavy from the network on
    first use. Instead of writing into site-packages, point MediaPipe's resource folder at a
    temporary tree that links to the shared (byte-identical, SHA256SUMS) files.
    """
    from mediapipe.python import solution_base
    from mediapipe.python.solutions import pose as mp_pose

    root = Path(tempfile.mkdtemp(prefix="edgepose_mp_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    layout = {"pose_detection": ["pose_detection.tflite"],
              "pose_landmark": [f"pose_landmark_{m}.tflite" for m in MODEL_NAMES]}
    for sub, files in layout.items():
        folder = root / "mediapipe" / "modules" / sub
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).symlink_to(models / name)
    real = solution_base.resource_util

    class _Resources:
        @staticmethod
        def set_resource_dir(_path: str) -> None:
            real.set_resource_dir(str(root))

    solution_base.resource_util = _Resources
    mp_pose._download_oss_pose_landmark_model = lambda complexity: None


def configs(threads: int):
    """(key, description, factory) of every configuration, edgepose first."""
    from edgepose import Pipeline

    for model in MODEL_NAMES:
        for people in MAX_PEOPLE:
            yield (f"edgepose {model} x{people}",
                   {"engine": "edgepose", "model": model, "max_people": people, "threads": threads},
                   lambda m=model, n=people: Pipeline(model=m, max_people=n, static_image_mode=True,
                                                      threads=threads))
    for complexity, model in enumerate(MODEL_NAMES):
        yield (f"mediapipe {model}",
               {"engine": "mediapipe.solutions.pose", "model": model,
                "model_complexity": complexity, "max_people": 1},
               lambda c=complexity: MediaPipeSolution(c))


def run_config(estimator, datasets: dict) -> dict:
    """datasets: name -> (Dataset, images folder, annotation file)."""
    from edgepose.evaluation import measured_by, predict, score

    out = {}
    for name, (dataset, folder, source) in datasets.items():
        t0 = time.perf_counter()
        predictions = predict(estimator, dataset, folder)
        seconds = time.perf_counter() - t0
        result = score(dataset, predictions, source, measured_by(estimator))
        out[name] = {**{k: result[k] for k in KEPT},
                     "s_per_image": round(seconds / len(dataset.images), 4)}
    return out


def mean_over_sets(per_set: dict, key: str) -> float | None:
    values = [r[key] for r in per_set.values() if r[key] is not None]
    return round(float(np.mean(values)), 4) if values else None


def print_table(results: dict, key: str) -> None:
    sets = list(SETS)
    print(f"\n{key:22}" + "".join(f"{s:>10}" for s in sets) + f"{'mean':>8}")
    for cfg, per_set in results.items():
        cells = [per_set[s][key] for s in sets]
        row = "".join(f"{'-' if v is None else f'{v:.3f}':>10}" for v in cells)
        mean = mean_over_sets(per_set, key)
        print(f"{cfg:22}{row}{'-' if mean is None else f'{mean:.3f}':>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_shared.json")
    args = parser.parse_args()
    require_shared("eval_shared", IMAGES, MODELS)
    use_shared_models()

    from edgepose.evaluation import DEFINITIONS, load_dataset
    from edgepose.quiet import native_stderr_quiet

    datasets = {name: (load_dataset(IMAGES / name / ann), IMAGES / name, IMAGES / name / ann)
                for name, ann in SETS.items()}
    mediapipe_models_from(MODELS)
    results, described = {}, {}
    for key, description, make in configs(args.threads):
        with native_stderr_quiet():
            estimator = make()
            results[key] = run_config(estimator, datasets)
        estimator.close()
        described[key] = description
        print(f"{key}: done", file=sys.stderr)

    report = {
        "benchmark": "accuracy on the shared annotated images, static image mode",
        "command": command(),
        "device": machine(),
        "definitions": {**DEFINITIONS,
                        "mediapipe score": "legacy API has no pose score: mean visibility",
                        "mean": "unweighted mean over the sets that have the figure"},
        "sets": {name: {"annotations": SETS[name], "layout": ds.layout, "format": ds.format,
                        "images": len(ds.images)} for name, (ds, _, _) in datasets.items()},
        "configs": described,
        "results": results,
        "mean_over_sets": {cfg: {k: mean_over_sets(per_set, k) for k in ("AP", "AR", "PCK@0.2")}
                           for cfg, per_set in results.items()},
    }
    write_json(args.out, report)
    for key in ("AP", "AR", "PCK@0.2", "PCKh@0.5"):
        print_table(results, key)
    print("\npeople scored / predictions / matched (edgepose full x10): " + ", ".join(
        f"{s} {r['people']}/{r['predictions']}/{r['matched']}"
        for s, r in results["edgepose full x10"].items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
