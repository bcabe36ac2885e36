"""Person-detector decoders (NanoDet, CenterNet) on hand-made outputs with known answers:
boxes back in image pixels, the person class only, NMS, thresholds, and a clear error for
outputs of the wrong shape. The pose decoders are tested in test_decoders.py."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.decoders import centernet, nanodet
from edgepose.geometry import letterbox_transform, stretch_transform


# -- NanoDet ------------------------------------------------------------------------------
def nanodet_outputs():
    maps = {}
    for stride in (8, 16, 32):
        n = (416 // stride) ** 2
        maps[stride] = [np.zeros((1, n, 80), np.float32), np.zeros((1, n, 44), np.float32)]
    # person at stride 16, cell (row 10, col 6): centre (104, 168); distances 3, 5, 2, 7 strides
    score16, box16 = maps[16]
    cell = 10 * 26 + 6
    score16[0, cell, 0] = 0.9
    box16[0, cell].reshape(4, 11)[np.arange(4), [3, 5, 2, 7]] = 60.0  # one-hot distributions
    # a weaker overlapping person at stride 8 (centre (108, 164), same distances x 2): NMS drops it
    score8, box8 = maps[8]
    cell8 = 20 * 52 + 13
    score8[0, cell8, 0] = 0.5
    box8[0, cell8].reshape(4, 11)[np.arange(4), [6, 10, 4, 10]] = 60.0
    # a confident car: not a person
    score32, _ = maps[32]
    score32[0, 5, 2] = 0.99
    outs = [a for pair in maps.values() for a in pair]
    return outs[::-1]  # any order


def test_nanodet_decode():
    to_image = stretch_transform(832, 624, 416, 416)  # x2 horizontally, x1.5 vertically
    dets = nanodet.decode(nanodet_outputs(), to_image)
    assert len(dets) == 1
    x0, y0, x1, y1 = 104 - 48, 168 - 80, 104 + 32, 168 + 112
    assert dets[0].score == pytest.approx(0.9)
    np.testing.assert_allclose(dets[0].box, [2 * x0, 1.5 * y0, 2 * x1, 1.5 * y1], atol=1e-3)
    assert dets[0].keypoints.shape == (0, 2)
    both = nanodet.decode(nanodet_outputs(), to_image, iou_threshold=0.99)
    assert [d.score for d in both] == pytest.approx([0.9, 0.5])
    assert nanodet.decode(nanodet_outputs(), to_image, class_id=2)[0].score == pytest.approx(0.99)


def test_nanodet_distribution_expectation_and_missing_outputs():
    np.testing.assert_allclose(nanodet.distances(np.zeros((2, 4, 11))), 5.0)
    with pytest.raises(ValueError, match=r"one \(1, 2704, 80\) score map"):
        nanodet.decode(nanodet_outputs()[:4], np.eye(2, 3))


# -- CenterNet ----------------------------------------------------------------------------
def centernet_rows() -> np.ndarray:
    rows = np.zeros((100, 6), np.float32)
    rows[0] = [100, 50, 200, 450, 0.9, 0]  # person
    rows[1] = [300, 100, 400, 300, 0.95, 2]  # car
    rows[2] = [105, 55, 205, 445, 0.5, 0]  # duplicate of the first person
    rows[3] = [400, 200, 480, 500, 0.4, 0]  # another person
    rows[4] = [0, 0, 10, 10, 0.1, 0]  # too weak
    return rows[None]


def test_centernet_decode():
    to_image = letterbox_transform(1024, 768, 512, 512)  # scale 2, 128 px border top/bottom
    dets = centernet.decode(centernet_rows(), to_image)
    assert [d.score for d in dets] == pytest.approx([0.9, 0.4])
    np.testing.assert_allclose(dets[0].box, [200, 100 - 128, 400, 900 - 128])
    assert len(centernet.decode(centernet_rows(), to_image, iou_threshold=None)) == 3
    with pytest.raises(ValueError, match=r"\(1, N, 6\)"):
        centernet.decode(np.zeros((1, 100, 5)), to_image)
