"""The anchor-count grader of lesson 00 accepts right counts and rejects the usual wrong ones.

Tests for ``retina_lessons/exercises/lesson00_overview.py``; the runner they share is tested in
test_runner.py.
"""

import math

from grading_support import GraderTests

from retina_lessons.anchors import feature_sizes
from retina_lessons.exercises import lesson00_overview


def anchors_count_student(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(3, 8)) * num_anchors_per_location


def anchors_count_floor(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum((H // 2**level) * (W // 2**level) for level in range(3, 8)) * num_anchors_per_location


def anchors_count_with_p2(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(2, 8)) * num_anchors_per_location


def anchors_count_always_nine(image_size, num_anchors_per_location=9):
    return anchors_count_student(image_size, 9)


def anchors_count_float(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(H / 2**level * W / 2**level for level in range(3, 8)) * num_anchors_per_location


def anchors_count_no_p7(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(3, 7)) * num_anchors_per_location


def library_num_anchors(image_size, num_anchors_per_location=9):
    return sum(h * w for h, w in feature_sizes(image_size)) * num_anchors_per_location


CORRECT = {
    "num_anchors": [anchors_count_student, library_num_anchors],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("num_anchors", anchors_count_floor, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_with_p2, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_no_p7, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_float, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_always_nine, "'one anchor per location'"),
]


class TestGraders(GraderTests):
    grader_module = lesson00_overview
    correct = CORRECT
    wrong = WRONG
