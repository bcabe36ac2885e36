"""Evaluation from the outside: bad annotation files are one clear error, the ``edgepose
eval`` parser, and the real pipeline on the shared annotated images (CrowdPose through
the CLI, MPII). The metrics on hand-made cases are in test_evaluation.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from conftest import IMAGES, need
from evaluation_cases import FixedPoses, needs_cocotools, write_coco, write_mpii

from edgepose.cli.eval import add_parser as add_eval_parser
from edgepose.errors import InputError
from edgepose.evaluation import evaluate, evaluate_coco, evaluate_mpii


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("not_json", "not valid JSON"),
    ("other_json", "neither COCO keypoint json"),
    ("missing_image", "are not in"),
    ("no_image_dir", "image folder"),
    ("wrong_format", "is MPII json, not COCO"),
    ("short_keypoints", "has 3 keypoint values, expected 51"),
    ("no_file_name", "malformed COCO annotation .KeyError: 'file_name'"),
])
def test_bad_input_is_one_clear_error(tmp_path, case, message):
    images = tmp_path / "images"
    ann = write_mpii(tmp_path)
    if case == "missing":
        ann = tmp_path / "nope.json"
    elif case == "not_json":
        ann.write_text("{not json")
    elif case == "other_json":
        ann.write_text(json.dumps({"images": []}))
    elif case == "missing_image":
        (images / "img0.png").unlink()
    elif case == "no_image_dir":
        images = tmp_path / "elsewhere"
    elif case in ("short_keypoints", "no_file_name"):
        ann = write_coco(tmp_path, [[(0, 0)]])
        data = json.loads(ann.read_text())
        if case == "short_keypoints":
            data["annotations"][0]["keypoints"] = [1, 2, 2]
        else:
            del data["images"][0]["file_name"]
        ann.write_text(json.dumps(data))
    run = evaluate_coco if case == "wrong_format" else evaluate
    with pytest.raises(InputError, match=message) as err:
        run(FixedPoses({}), ann, images)
    assert "\n" not in str(err.value)


def test_eval_subcommand_parses_its_flags():
    parser = argparse.ArgumentParser(prog="edgepose")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "--annotations", "a.json", "--images", "imgs",
                              "--max-people", "4", "--model", "lite", "--out", "r.json"])
    assert (args.annotations, args.images, args.out) == (Path("a.json"), Path("imgs"), Path("r.json"))
    assert (args.max_people, args.model) == (4, "lite")
    assert args.func.__name__ == "cmd_eval"


# -- the real pipeline on shared annotated images ---------------------------------------------
@needs_cocotools
def test_real_pipeline_on_crowdpose_through_the_cli(tmp_path, model_path):
    folder = need(IMAGES / "crowdpose")
    model_path("full")
    model_path("detector")
    parser = argparse.ArgumentParser(prog="edgepose")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "result.json"
    args = parser.parse_args(["eval", "--annotations", str(folder / "test_crowdpose.json"),
                              "--images", str(folder), "--max-people", "10", "--threads", "2",
                              "--out", str(out)])
    assert args.func(args) == 0
    r = json.loads(out.read_text())
    # 5 annotated people; one has no labelled joint, so 4 are scored.
    assert (r["images"], r["annotated_people"], r["people"]) == (2, 5, 4)
    assert r["layout"] == "crowdpose" and r["model"] == "pose_landmark_full.tflite"
    assert r["max_people"] == 10 and r["backend"].startswith("tflite/")
    for key in ("AP", "AP50", "AP75", "AR", "PCK@0.2"):
        assert 0.0 <= r[key] <= 1.0, key
    assert 1 <= r["matched"] <= r["predictions"] <= 20
    assert r["AP50"] > 0.2  # the front-facing people are found


@needs_cocotools
def test_real_pipeline_on_mpii(image_pipeline):
    folder = need(IMAGES / "mpii")
    r = evaluate_mpii(image_pipeline, folder / "test_mpii.json", folder)
    assert (r["images"], r["people"], r["predictions"]) == (5, 5, 5)
    assert r["pckh_people"] == 5
    for key in ("AP", "AR", "PCK@0.2", "PCKh@0.5"):
        assert 0.0 <= r[key] <= 1.0, key
    # full model, single person: most limb joints land within a fifth of the torso
    assert r["PCK@0.2"] >= 0.5 and r["AP50"] >= 0.4
