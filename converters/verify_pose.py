"""What a conversion of a bottom-up YOLO-pose model changes in the people it finds.

Ultralytics' raw YOLO-pose export has one output of (1, 5 + 3K, A) anchors (or (1, A,
5 + 3K)): box, person score, K keypoints x (x, y, score) in input pixels. Its tensor
errors say little by themselves (most anchors are background); these figures are taken
on the anchors the source scores as people: keypoint and box error in input pixels, and
how often source and result agree on whether an anchor is a person.
"""

from __future__ import annotations

import numpy as np

# edgepose.decoders.yolo_pose.SCORE_THRESHOLD (Ultralytics' predict default)
PERSON_SCORE = 0.25


def yolo_pose_output(shapes) -> tuple[int, int] | None:
    """(output index, K) of the first output shaped like YOLO-pose rows, else None."""
    for i, shape in enumerate(shapes):
        if len(shape) != 3 or shape[0] != 1:
            continue
        width, anchors = sorted(shape[1:])
        if width > 5 and (width - 5) % 3 == 0 and anchors > 10 * width:
            return i, (width - 5) // 3
    return None


def _rows(out: np.ndarray, width: int) -> np.ndarray:
    out = np.asarray(out, np.float64)[0]
    return out.T if out.shape[0] == width else out


def figures(src_all: list, res_all: list, shapes) -> dict:
    """{"people": figures} for a YOLO-pose model (outputs of each input, source and
    result, matched), else {}: keypoint / box error (input pixels) on the anchors the
    source scores as people and the person-score agreement over every anchor."""
    found = yolo_pose_output(shapes)
    if found is None:
        return {}
    k, num = found
    width = 5 + 3 * num
    kp_err, box_err, agree, people = [], [], [], 0
    for s_out, r_out in zip(src_all, res_all):
        s, r = _rows(s_out[k], width), _rows(r_out[k], width)
        person = s[:, 4] > PERSON_SCORE
        agree.append(((r[:, 4] > PERSON_SCORE) == person).mean())
        people += int(person.sum())
        s_kp = s[person, 5:].reshape(-1, num, 3)[..., :2]
        r_kp = r[person, 5:].reshape(-1, num, 3)[..., :2]
        kp_err.append(np.linalg.norm(s_kp - r_kp, axis=-1).reshape(-1))
        box_err.append(np.abs(s[person, :4] - r[person, :4]).reshape(-1))
    kp, box = np.concatenate(kp_err), np.concatenate(box_err)
    out = {"person_anchors": people, "score_agreement": round(float(np.mean(agree)), 6),
           "person_score": PERSON_SCORE}
    if kp.size:
        out.update({"keypoint_px_mean": round(float(kp.mean()), 4),
                    "keypoint_px_p95": round(float(np.percentile(kp, 95)), 4),
                    "keypoint_px_max": round(float(kp.max()), 4),
                    "box_px_max": round(float(box.max()), 4)})
    return {"people": out}


def markdown_lines(report: dict) -> list[str]:
    """The report's people figures for its Markdown, [] when it has none."""
    figures, samples = report.get("people"), report["samples"]
    if not figures:
        return []
    line = (f"People (YOLO-pose anchors the source scores above {figures['person_score']}) on "
            f"{samples} images: {figures['person_anchors']} anchors")
    if "keypoint_px_mean" in figures:
        line += (f", keypoint error mean {figures['keypoint_px_mean']:.3g} px, p95 "
                 f"{figures['keypoint_px_p95']:.3g} px, max {figures['keypoint_px_max']:.3g} px "
                 f"(input pixels); box max {figures['box_px_max']:.3g} px")
    return ["", line + f"; person/background agreement {figures['score_agreement']:.4f}"]
