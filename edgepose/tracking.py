"""Tracks, the one detection schedule and the one re-identification rule, for every model
family.

- **Schedule** (:meth:`Tracker.should_detect`): in image mode, or with nobody tracked, the
  person detector runs on every frame. In video mode it runs again after a track was lost
  and at least every ``redetect_every`` frames; once ``max_people`` are tracked it stops,
  unless ``redetect_when_full`` (the families whose crops follow their keypoints need the
  detector to re-anchor them; BlazePose's crops follow its own alignment points).
- **Ids** (:meth:`Tracker.assign`): a person followed from the last frame keeps its id. A
  new person takes the id of the box it overlaps most (IoU >= ``min_iou``) among those
  seen in the last ``memory`` frames and not taken this frame: someone missed or hidden
  for a few frames who is found again where they were gets their id back. Otherwise a
  new id; ids are never reused, even after :meth:`reset`.
- **Rejected detections** (:meth:`Tracker.reject`): a detection whose crop the estimator
  found nobody in (too small, not a person) is not tried again for REJECTED_FRAMES frames
  while new detections overlap it (IoU >= REJECTED_IOU); one that moved or grew is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgepose.geometry import box_iou

MEMORY_FRAMES = 25
# Street clip, blazepose+centernet: 56% of the new crops tried on detection frames found
# nobody, the same background people again and again (a landmark run each).
REJECTED_FRAMES = 10
REJECTED_IOU = 0.5


@dataclasses.dataclass
class Track:
    id: int
    crop: Any  # where the estimator looks for this person in the next frame


class Tracker:
    def __init__(self, min_iou: float, redetect_every: int = 10, redetect_when_full: bool = False,
                 memory: int = MEMORY_FRAMES) -> None:
        self.min_iou, self.memory = min_iou, memory
        self.redetect_every, self.redetect_when_full = redetect_every, redetect_when_full
        self.tracks: list[Track] = []
        self._seen: dict[int, tuple[tuple, int]] = {}  # id -> (last box, frame it was seen)
        self._frame = 0
        self._next_id = 0
        self._since_detection = 0
        self._lost = False
        self._rejected: list[tuple[tuple, int]] = []  # (detection box, frame it was rejected)

    def should_detect(self, max_people: int) -> bool:
        """Whether the person detector runs on this frame (video mode)."""
        tracked = len(self.tracks)
        if tracked == 0:
            return True
        if tracked >= max_people and not self.redetect_when_full:
            return False
        return self._lost or self._since_detection + 1 >= self.redetect_every

    def detected(self, ran: bool) -> None:
        """Count frames since the detector last ran."""
        self._since_detection = 0 if ran else self._since_detection + 1

    def assign(self, boxes: list, known: list[int] | None = None) -> list[int]:
        """One id per box (x0, y0, x1, y1) of this frame. ``known``: the ids of people
        followed from the last frame, -1 for new people."""
        known = list(known) if known is not None else [-1] * len(boxes)
        self._frame += 1
        free = {i: box for i, (box, _) in self._seen.items() if i not in known}
        ids = []
        for box, given in zip(boxes, known):
            if given < 0:
                best = max(free, key=lambda i: box_iou(free[i], box), default=None)
                if best is not None and box_iou(free[best], box) >= self.min_iou:
                    given = best
                    del free[best]
                else:
                    given = self.new_id()
            ids.append(given)
        for i, box in zip(ids, boxes):
            self._seen[i] = (box, self._frame)
        self._seen = {i: v for i, v in self._seen.items() if self._frame - v[1] < self.memory}
        return ids

    def follow(self, tracks: list[Track]) -> None:
        """The people to follow into the next frame; a tracked person missing from them
        was lost, which brings the detector back."""
        alive = {t.id for t in tracks}
        self._lost = any(t.id not in alive for t in self.tracks)
        self.tracks = tracks

    def rejected(self, box: tuple) -> bool:
        """Whether a detection box overlaps one whose crop held nobody, recently."""
        return any(self._frame - f < REJECTED_FRAMES and box_iou(b, box) >= REJECTED_IOU
                   for b, f in self._rejected)

    def reject(self, box: tuple) -> None:
        """A detection whose crop held nobody (this frame)."""
        self._rejected = [(b, f) for b, f in self._rejected if self._frame - f < REJECTED_FRAMES]
        self._rejected.append((box, self._frame))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def reset(self, restart_ids: bool = False) -> None:
        """Forget every track and every recent box. Ids keep counting up, unless
        ``restart_ids`` (a new, unrelated stream whose results are kept apart)."""
        if restart_ids:
            self._next_id = 0
            self._frame = 0
        self.tracks = []
        self._seen.clear()
        self._rejected = []
        self._since_detection = 0
        self._lost = False
