"""Track ids from person boxes (edgepose.tracking.Tracker)."""

from edgepose.tracking import Tracker


def walk(x: float) -> tuple:
    return (x, 100.0, x + 50.0, 250.0)


def test_a_walking_person_keeps_one_id_and_a_newcomer_gets_another():
    tracker = Tracker(min_iou=0.5)
    ids = [tracker.assign([walk(100 + 5 * i)]) for i in range(5)]
    assert ids == [[0]] * 5
    assert tracker.assign([walk(125), walk(400)]) == [0, 1]


def test_a_person_missed_for_a_few_frames_comes_back_with_their_id():
    tracker = Tracker(min_iou=0.5, memory=10)
    tracker.assign([walk(100), walk(300)])
    for _ in range(5):
        assert tracker.assign([walk(300)]) == [1]  # person 0 unseen
    assert tracker.assign([walk(102), walk(300)]) == [0, 1]


def test_a_person_gone_longer_than_the_memory_gets_a_new_id():
    tracker = Tracker(min_iou=0.5, memory=3)
    tracker.assign([walk(100)])
    for _ in range(3):
        tracker.assign([])
    assert tracker.assign([walk(100)]) == [1]


def test_ids_the_caller_holds_are_kept_and_not_given_twice():
    tracker = Tracker(min_iou=0.5)
    tracker.assign([walk(100), walk(300)])
    # the caller's crop followed person 1 onto person 0's old place; the new box there
    # cannot take id 1, and takes the free id 0 only by overlap
    assert tracker.assign([walk(100), walk(105)], known=[1, -1]) == [1, 0]
    tracker.reset()
    assert tracker.assign([walk(100)]) == [2]  # reset forgets boxes, never reuses ids
