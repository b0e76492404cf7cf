"""The head-reshape grader of lesson 03 accepts torchvision's row order and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson03_subnets.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torchvision
from grading_support import GraderTests

from retina_lessons import exercises, heads
from retina_lessons.exercises import lesson03_subnets


def head_student(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    return head_output.permute(0, 2, 3, 1).reshape(B, H * W * num_anchors, AK // num_anchors)


def head_no_permute(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    return head_output.reshape(B, -1, AK // num_anchors)


def head_k_a_swapped(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, K, num_anchors, H, W).permute(0, 3, 4, 2, 1).reshape(B, -1, K)


def head_x_before_y(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, num_anchors, K, H, W).permute(0, 4, 3, 1, 2).reshape(B, -1, K)


def head_anchor_major_rows(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, num_anchors, K, H, W).permute(0, 1, 3, 4, 2).reshape(B, -1, K)


def head_batch_folded(head_output, num_anchors):
    return head_student(head_output, num_anchors).reshape(-1, head_output.shape[1] // num_anchors)


def library_head_reshape(head_output, num_anchors):
    return heads.flatten_level(head_output, head_output.shape[1] // num_anchors)


CORRECT = {
    "head_reshape": [head_student, lesson03_subnets._head_reshape_reference, library_head_reshape],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("head_reshape", head_no_permute, "'one anchor, 3 classes, 2 x 2'"),
    ("head_reshape", head_k_a_swapped, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_x_before_y, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_anchor_major_rows, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_batch_folded, "expected shape (1, 4, 3), got shape (4, 3)"),
]


class TestGraders(GraderTests):
    grader_module = lesson03_subnets
    correct = CORRECT
    wrong = WRONG


def test_hints_name_the_mistake(capsys):
    exercises.check_head_reshape(head_no_permute)
    assert "permute(0, 3, 4, 1, 2)" in capsys.readouterr().out


def test_head_reshape_reference_matches_torchvision_head():
    head = torchvision.models.detection.retinanet.RetinaNetClassificationHead(
        in_channels=4, num_anchors=3, num_classes=2
    )
    feature = torch.randn(2, 4, 3, 5)
    with torch.no_grad():
        raw = head.cls_logits(head.conv(feature))  # (B, A*K, H, W)
        flat = head([feature])  # (B, H*W*A, K)
    torch.testing.assert_close(lesson03_subnets._head_reshape_reference(raw, 3), flat)
