"""Track ids from person boxes, for the pipelines whose models give boxes (MoveNet
MultiPose, your own models behind ``--decoder``) and for the people the BlazePose
pipeline finds again.

A person takes the id of the box it overlaps most among those seen in the last
``memory`` frames (IoU >= ``min_iou``): the person in the last frame first of all, and one
lost for a few frames (missed, hidden) when found again where they were. Otherwise a new
id. The BlazePose pipeline's crops follow their person; it gives the crops of new
people to a BoxTracker too, so someone lost for a few frames gets their id back.
"""

from __future__ import annotations

from edgepose.decoders.geometry import box_iou

MEMORY_FRAMES = 25


class BoxTracker:
    def __init__(self, min_iou: float, memory: int = MEMORY_FRAMES) -> None:
        self.min_iou, self.memory = min_iou, memory
        self._seen: dict[int, tuple[tuple, int]] = {}  # id -> (last box, frame it was seen)
        self._frame = 0
        self._next_id = 0

    def assign(self, boxes: list, known: list[int] | None = None) -> list[int]:
        """One id per box of this frame. ``known``: ids the caller already holds (a crop
        that followed its person), -1 for new people."""
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

    def new_id(self) -> int:
        """An id never given before (ids are not reused, even after reset())."""
        self._next_id += 1
        return self._next_id - 1

    def reset(self) -> None:
        self._seen.clear()
