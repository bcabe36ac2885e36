"""PoseNet / PersonLab greedy multi-person decoding (Papandreou et al., "PersonLab: Person
Pose Estimation and Instance Segmentation with a Bottom-Up, Part-Based, Geometric
Embedding Model", ECCV 2018; the decoding of PoseNet's multi-person mode).

Tensors, channels last as TF.js publishes them, on one grid of H x W cells ``stride``
input pixels apart (cell (i, j) sits at input pixel (i, j) * stride; a 385x385 input at
stride 16 gives 25x25):

- heatmap (1, H, W, 17): keypoint logits, COCO-17 order; sigmoid -> part score.
- offsets (1, H, W, 34): from a cell to the keypoint near it, input pixels; y in channel
  k, x in channel 17 + k.
- forward / backward displacements (1, H, W, 32): along the 16 edges of POSE_TREE, from
  the parent to the child (forward) and from the child to the parent (backward); y in
  channel e, x in channel 16 + e.

Decoding:

1. Part candidates: cells that are the maximum of their (2 r + 1)^2 neighbourhood in
   their keypoint's map (a max filter over all maps at once) with a score of at least
   ``score_threshold``, sorted by score: the queue of roots.
2. Each root in turn starts a person, unless its keypoint lies within ``nms_radius`` of
   the same keypoint of a person already decoded.
3. The person grows from the root along the tree: first backward (child -> parent) over
   the edges whose child is known, towards the nose, then forward (parent -> child) to
   every other joint. The displacement at the known joint's cell gives a first guess;
   ``refine_steps`` times the offset of the guess's cell then snaps it to the keypoint.
   A joint's score is the part score at the last cell looked up.
4. Person score (soft NMS): the mean over the 17 keypoints of their scores, where a
   keypoint within ``nms_radius`` of the same keypoint of a person decoded before counts
   0, so a second decoding of one body scores low instead of being removed outright.
   People below ``min_pose_score`` are dropped; decoding stops at ``max_people``.

The loops run over candidates and the 16 edges, never over pixels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgepose.geometry import apply_transform, sigmoid
from edgepose.skeletons import CocoKeypoint

NUM_KEYPOINTS = 17
_C = CocoKeypoint
# (parent, child) in displacement channel order; parents come before their children.
POSE_TREE = (
    (_C.NOSE, _C.LEFT_EYE), (_C.LEFT_EYE, _C.LEFT_EAR),
    (_C.NOSE, _C.RIGHT_EYE), (_C.RIGHT_EYE, _C.RIGHT_EAR),
    (_C.NOSE, _C.LEFT_SHOULDER), (_C.LEFT_SHOULDER, _C.LEFT_ELBOW), (_C.LEFT_ELBOW, _C.LEFT_WRIST),
    (_C.LEFT_SHOULDER, _C.LEFT_HIP), (_C.LEFT_HIP, _C.LEFT_KNEE), (_C.LEFT_KNEE, _C.LEFT_ANKLE),
    (_C.NOSE, _C.RIGHT_SHOULDER), (_C.RIGHT_SHOULDER, _C.RIGHT_ELBOW),
    (_C.RIGHT_ELBOW, _C.RIGHT_WRIST),
    (_C.RIGHT_SHOULDER, _C.RIGHT_HIP), (_C.RIGHT_HIP, _C.RIGHT_KNEE), (_C.RIGHT_KNEE, _C.RIGHT_ANKLE),
)
NUM_EDGES = len(POSE_TREE)
CHANNELS = {"heatmap": NUM_KEYPOINTS, "offsets": 2 * NUM_KEYPOINTS,
            "forward": 2 * NUM_EDGES, "backward": 2 * NUM_EDGES}

SCORE_THRESHOLD = 0.5   # a root part's least score (PoseNet's default)
NMS_RADIUS = 20.0       # input pixels (PoseNet's default at its 257..513 inputs)
LOCAL_MAX_RADIUS = 1    # 3x3 neighbourhood
REFINE_STEPS = 2
MIN_POSE_SCORE = 0.15   # measured on the shared sets: see tests/test_posenet.py
# Keypoints at least this sure make the person's box; fewer than two and all do.
BOX_KEYPOINT_SCORE = 0.1


@dataclasses.dataclass(frozen=True)
class Fields:
    """The four outputs of one image on their grid: scores (H, W, 17) in [0, 1]; offsets
    (H, W, 17, 2), forward and backward (H, W, 16, 2), all (y, x) input pixels."""

    scores: np.ndarray
    offsets: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    stride: float

    @classmethod
    def from_outputs(cls, heatmap: np.ndarray, offsets: np.ndarray, forward: np.ndarray,
                     backward: np.ndarray, stride: float) -> Fields:
        """From (1, H, W, C) or (H, W, C) tensors (C as CHANNELS says); ValueError on
        other shapes."""
        maps = {}
        for name, value in (("heatmap", heatmap), ("offsets", offsets), ("forward", forward),
                            ("backward", backward)):
            a = np.asarray(value, dtype=np.float32)
            a = a[0] if a.ndim == 4 and a.shape[0] == 1 else a
            if a.ndim != 3 or a.shape[-1] != CHANNELS[name]:
                raise ValueError(f"PoseNet {name} must be (1, H, W, {CHANNELS[name]}), got {np.shape(value)}")
            maps[name] = a
        grid = maps["heatmap"].shape[:2]
        if any(a.shape[:2] != grid for a in maps.values()):
            raise ValueError(f"PoseNet outputs must share one grid, got "
                             f"{', '.join(f'{k} {v.shape}' for k, v in maps.items())}")
        if stride <= 0:
            raise ValueError(f"stride must be positive, got {stride}")

        def yx(a: np.ndarray, n: int) -> np.ndarray:  # (H, W, 2n) y..., x... -> (H, W, n, 2)
            return np.stack([a[..., :n], a[..., n:]], axis=-1)

        return cls(sigmoid(maps["heatmap"]), yx(maps["offsets"], NUM_KEYPOINTS),
                   yx(maps["forward"], NUM_EDGES), yx(maps["backward"], NUM_EDGES), float(stride))

    def cell(self, pos: np.ndarray) -> tuple[int, int]:
        """The grid cell nearest input pixel ``pos`` (y, x), clipped to the grid."""
        h, w = self.scores.shape[:2]
        y, x = np.rint(np.asarray(pos) / self.stride).astype(np.int64)
        return int(np.clip(y, 0, h - 1)), int(np.clip(x, 0, w - 1))

    def keypoint_at(self, cell: tuple[int, int], k: int) -> np.ndarray:
        """Input pixel (y, x) of keypoint ``k`` from ``cell``: the cell plus its offset."""
        return np.asarray(cell, dtype=np.float32) * self.stride + self.offsets[cell[0], cell[1], k]


def part_candidates(scores: np.ndarray, threshold: float = SCORE_THRESHOLD,
                    radius: int = LOCAL_MAX_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of every map: (N, 3) int64 rows (keypoint, y, x) and (N,) scores, by
    descending score. scores: (H, W, K)."""
    r = int(radius)
    padded = np.pad(scores, ((r, r), (r, r), (0, 0)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * r + 1, 2 * r + 1), axis=(0, 1))
    peak = (scores >= threshold) & (scores == windows.max(axis=(-2, -1)))
    y, x, k = np.nonzero(peak)
    s = scores[y, x, k]
    order = np.argsort(-s, kind="stable")
    return np.stack([k, y, x], axis=1)[order], s[order]


def follow(fields: Fields, displacement: np.ndarray, edge: int, source: np.ndarray, target: int,
           refine_steps: int = REFINE_STEPS) -> tuple[np.ndarray, float]:
    """Keypoint ``target`` reached from ``source`` (y, x input pixels) along ``edge`` of
    ``displacement`` (fields.forward or fields.backward): (position, score)."""
    cy, cx = fields.cell(source)
    guess = np.asarray(source, dtype=np.float32) + displacement[cy, cx, edge]
    cell = fields.cell(guess)
    for _ in range(refine_steps):
        cell = fields.cell(guess)
        guess = fields.keypoint_at(cell, target)
    return guess, float(fields.scores[cell[0], cell[1], target])


def grow(fields: Fields, root: int, position: np.ndarray, score: float,
         refine_steps: int = REFINE_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """One person from a root part: (17, 2) y, x input pixels and (17,) scores."""
    pos = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    scores = np.zeros(NUM_KEYPOINTS, np.float32)
    known = np.zeros(NUM_KEYPOINTS, bool)
    pos[root], scores[root], known[root] = position, score, True
    for edge in reversed(range(NUM_EDGES)):  # towards the nose
        parent, child = POSE_TREE[edge]
        if known[child] and not known[parent]:
            pos[parent], scores[parent] = follow(fields, fields.backward, edge, pos[child], parent, refine_steps)
            known[parent] = True
    for edge, (parent, child) in enumerate(POSE_TREE):  # out to the limbs
        if known[parent] and not known[child]:
            pos[child], scores[child] = follow(fields, fields.forward, edge, pos[parent], child, refine_steps)
            known[child] = True
    return pos, scores


def _near(found: list[np.ndarray], k, position: np.ndarray, radius: float) -> np.ndarray:
    """Whether keypoint(s) ``k`` at ``position`` lie within ``radius`` of the same keypoint
    of any person in ``found`` ((17, 2) each)."""
    if not found:
        return np.zeros(np.shape(k), bool)
    d2 = ((np.stack(found)[:, k] - position) ** 2).sum(axis=-1)
    return (d2 <= radius * radius).any(axis=0)


def decode_fields(fields: Fields, score_threshold: float = SCORE_THRESHOLD,
                  nms_radius: float = NMS_RADIUS, min_pose_score: float = MIN_POSE_SCORE,
                  max_people: int | None = None, refine_steps: int = REFINE_STEPS,
                  local_max_radius: int = LOCAL_MAX_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """People on ``fields``, in decoding order: scores (N,) and keypoints (N, 17, 3)
    y, x input pixels, part score (float32)."""
    parts, part_scores = part_candidates(fields.scores, score_threshold, local_max_radius)
    found: list[np.ndarray] = []
    people, keypoints = [], []
    every = np.arange(NUM_KEYPOINTS)
    for (k, y, x), s in zip(parts, part_scores):
        if max_people is not None and len(people) >= max_people:
            break
        root = fields.keypoint_at((y, x), k)
        if _near(found, k, root, nms_radius):
            continue
        pos, scores = grow(fields, int(k), root, float(s), refine_steps)
        person_score = float(np.where(_near(found, every, pos, nms_radius), 0.0, scores).mean())
        found.append(pos)
        if person_score >= min_pose_score:
            people.append(person_score)
            keypoints.append(np.column_stack([pos, scores]))
    return (np.asarray(people, np.float32),
            np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3))


def decode(heatmap: np.ndarray, offsets: np.ndarray, forward: np.ndarray, backward: np.ndarray,
           to_image: np.ndarray, stride: float, **settings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People in image pixels from the four (1, H, W, C) outputs.

    to_image: (2, 3) affine from model-input pixels to image pixels
    (:func:`~edgepose.geometry.letterbox_transform` for the whole frame). ``settings``:
    the keyword arguments of :func:`decode_fields`.
    Returns scores (N,), boxes (N, 4) x0, y0, x1, y1 around the keypoints at least
    BOX_KEYPOINT_SCORE sure, and keypoints (N, 17, 3) x, y, score, float32, by descending
    person score.
    """
    scores, people = decode_fields(Fields.from_outputs(heatmap, offsets, forward, backward, stride),
                                   **settings)
    order = np.argsort(-scores, kind="stable")
    scores, people = scores[order], people[order]
    out = people.copy()
    out[..., :2] = apply_transform(people[..., 1::-1], to_image)
    boxes = np.zeros((len(out), 4), np.float32)
    for i, kp in enumerate(out):
        sure = kp[kp[:, 2] >= BOX_KEYPOINT_SCORE, :2]
        xy = sure if len(sure) >= 2 else kp[:, :2]
        boxes[i] = (*xy.min(axis=0), *xy.max(axis=0))
    return scores, boxes, out
