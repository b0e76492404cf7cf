"""The NMS grader of lesson 08 accepts torchvision's NMS and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson08_inference.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torchvision
from grading_support import GraderTests

from retina_lessons import exercises
from retina_lessons.exercises import lesson08_inference


def _naive_nms(boxes, scores, iou_threshold, *, sort=True, suppress=None):
    """Loop NMS; ``suppress(iou, threshold)`` decides which boxes to drop."""
    suppress = suppress or (lambda iou, t: iou > t)
    order = scores.argsort(descending=True) if sort else torch.arange(len(scores))
    iou = torchvision.ops.box_iou(boxes, boxes)
    removed = torch.zeros(len(scores), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if removed[i]:
            continue
        keep.append(i)
        removed |= suppress(iou[i], iou_threshold)
    return torch.tensor(keep, dtype=torch.int64)


def nms_student(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold)


def nms_input_order(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, sort=False)


def nms_greater_equal(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, suppress=lambda iou, t: iou >= t)


def nms_inverted(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, suppress=lambda iou, t: iou < t)


def nms_boolean_mask(boxes, scores, iou_threshold):
    mask = torch.zeros(len(scores), dtype=torch.bool)
    mask[_naive_nms(boxes, scores, iou_threshold)] = True
    return mask


def nms_sorted_positions(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    kept = _naive_nms(boxes[order], scores[order], iou_threshold)
    return kept  # positions in the sorted order, not indices into boxes


def nms_removed_boxes_suppress(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    iou = torchvision.ops.box_iou(boxes, boxes)
    keep = [
        i
        for rank, i in enumerate(order.tolist())
        if not (iou[i, order[:rank]] > iou_threshold).any()
    ]
    return torch.tensor(keep, dtype=torch.int64)


def nms_index_order(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold).sort().values


def nms_int32(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold).to(torch.int32)


CORRECT = {
    "nms": [torchvision.ops.nms, nms_student],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("nms", nms_input_order, "'unsorted scores'"),
    ("nms", nms_greater_equal, "'IoU exactly at the threshold'"),
    ("nms", nms_inverted, "'two overlapping boxes'"),
    ("nms", nms_boolean_mask, "boolean mask"),
    ("nms", nms_sorted_positions, "'unsorted scores'"),
    ("nms", nms_removed_boxes_suppress, "'chain A-B-C: suppressed boxes do not suppress'"),
    ("nms", nms_index_order, "'unsorted scores'"),
    ("nms", nms_int32, "int64"),
]


class TestGraders(GraderTests):
    grader_module = lesson08_inference
    correct = CORRECT
    wrong = WRONG


def test_hints_name_the_mistake(capsys):
    exercises.check_nms(nms_greater_equal)
    assert "Use >, not >=" in capsys.readouterr().out
