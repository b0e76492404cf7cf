"""The flip grader of lesson 07 accepts the library's flip and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson07_training.py``; the runner they share is tested in
test_runner.py.
"""

import torch
from grading_support import GraderTests

from retina_lessons import datasets
from retina_lessons.exercises import lesson07_training


def flip_student(image, boxes):
    W = image.shape[-1]
    return image.flip(-1), torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], dim=1)


def flip_corners_not_swapped(image, boxes):
    W = image.shape[-1]
    return image.flip(-1), torch.stack([W - boxes[:, 0], boxes[:, 1], W - boxes[:, 2], boxes[:, 3]], dim=1)


def flip_minus_one(image, boxes):
    W = image.shape[-1] - 1
    return image.flip(-1), torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], dim=1)


def flip_vertical_image(image, boxes):
    return image.flip(-2), flip_student(image, boxes)[1]


def flip_boxes_only(image, boxes):
    return image, flip_student(image, boxes)[1]


def flip_returns_boxes_only(image, boxes):
    return flip_student(image, boxes)[1]


def library_hflip(image, boxes):
    flipped_image, flipped_target = datasets.hflip(image, {"boxes": boxes})
    return flipped_image, flipped_target["boxes"]


CORRECT = {
    "hflip": [flip_student, library_hflip],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("hflip", flip_corners_not_swapped, "'one box'"),
    ("hflip", flip_minus_one, "'one box'"),
    ("hflip", flip_vertical_image, "'one box'"),
    ("hflip", flip_boxes_only, "'one box'"),
    ("hflip", flip_returns_boxes_only, "'one box'"),
]


class TestGraders(GraderTests):
    grader_module = lesson07_training
    correct = CORRECT
    wrong = WRONG
