"""The level-anchors grader of lesson 04 accepts torchvision's anchors and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson04_anchors.py``; the runner they share is tested in
test_runner.py.
"""

import math

import pytest
import torch
from grading_support import GraderTests
from torchvision.models.detection.anchor_utils import AnchorGenerator

from retina_lessons import anchors
from retina_lessons.exercises import lesson04_anchors


def _loop_anchors(
    feature_size,
    stride,
    sizes,
    aspect_ratios,
    *,
    offset=0.0,
    rounding=True,
    size_major=False,
    swap_xy=False,
    anchor_major=False,
    ratio_inverted=False,
):
    """Student-style anchors with loops; keyword flags switch on typical mistakes."""
    base = []
    pairs = (
        [(r, s) for s in sizes for r in aspect_ratios]
        if size_major
        else [(r, s) for r in aspect_ratios for s in sizes]
    )
    for ratio, size in pairs:
        h_ratio = math.sqrt(ratio)
        if ratio_inverted:
            h_ratio = 1 / h_ratio
        w, h = size / h_ratio, size * h_ratio
        box = torch.tensor([-w, -h, w, h]) / 2
        base.append(box.round() if rounding else box)
    base = torch.stack(base)  # (A, 4)
    H, W = feature_size
    centres = [((x + offset) * stride, (y + offset) * stride) for y in range(H) for x in range(W)]
    if swap_xy:
        centres = [(y * stride, x * stride) for y in range(H) for x in range(W)]
    shifts = torch.tensor([[cx, cy, cx, cy] for cx, cy in centres], dtype=torch.float32)
    if anchor_major:
        return (base[:, None, :] + shifts[None, :, :]).reshape(-1, 4)  # (A*H*W, 4)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # (H*W*A, 4)


def anchors_torchvision(feature_size, stride, sizes, aspect_ratios):
    generator = AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),))
    stride_t = torch.tensor(stride, dtype=torch.int64)
    return generator.grid_anchors([list(feature_size)], [[stride_t, stride_t]])[0]


def anchors_student(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios)


def anchors_half_stride(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, offset=0.5)


def anchors_not_rounded(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, rounding=False)


def anchors_size_major(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, size_major=True)


def anchors_xy_swapped(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, swap_xy=True)


def anchors_anchor_major(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, anchor_major=True)


def anchors_ratio_inverted(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, ratio_inverted=True)


def library_level_anchors(feature_size, stride, sizes, aspect_ratios):
    return anchors.grid_anchors(anchors.base_anchors(sizes, aspect_ratios), feature_size, (stride, stride))


CORRECT = {
    "level_anchors": [anchors_torchvision, anchors_student, library_level_anchors],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("level_anchors", anchors_half_stride, "(0, 0)"),
    ("level_anchors", anchors_not_rounded, "'base anchors are rounded'"),
    ("level_anchors", anchors_size_major, "'order: ratio-major, then size'"),
    ("level_anchors", anchors_xy_swapped, "'grid 2 x 3 (H != W), stride 8'"),
    ("level_anchors", anchors_anchor_major, "'grid 3 x 2 with 3 anchors'"),
    ("level_anchors", anchors_ratio_inverted, "'aspect ratios 0.5, 1, 2'"),
]


class TestGraders(GraderTests):
    grader_module = lesson04_anchors
    correct = CORRECT
    wrong = WRONG


@pytest.mark.parametrize(
    ("feature_size", "stride", "sizes", "aspect_ratios"),
    [
        ((1, 1), 8, (32,), (1.0,)),
        ((2, 3), 8, (20, 33), (0.5, 1.0, 2.0)),
        ((7, 5), 16, tuple(64 * 2 ** (k / 3) for k in range(3)), (0.5, 1.0, 2.0)),
        ((4, 9), 128, (512, 645.1, 812.7), (0.25, 1.3)),
    ],
)
def test_anchor_reference_equals_torchvision(feature_size, stride, sizes, aspect_ratios):
    args = (feature_size, stride, sizes, aspect_ratios)
    torch.testing.assert_close(lesson04_anchors._level_anchors_reference(*args), anchors_torchvision(*args))
