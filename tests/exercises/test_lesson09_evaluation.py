"""The AP grader of lesson 09 accepts COCO's 101-point AP and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson09_evaluation.py``; the runner they share is tested in
test_runner.py.
"""

import numpy as np
import torch
from grading_support import GraderTests

from retina_lessons import evaluation, exercises
from retina_lessons.exercises import lesson09_evaluation


def _np_ap(precision, recall, *, envelope=True, side="left", thresholds=None, zero_fill=True):
    recall = recall.numpy()
    precision = precision.numpy().copy()
    if envelope:
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    thresholds = np.linspace(0, 1, 101) if thresholds is None else thresholds
    inds = np.searchsorted(recall, thresholds, side=side)
    valid = inds < len(recall)
    sampled = precision[inds[valid]]
    if zero_fill:
        return float(np.concatenate([sampled, np.zeros((~valid).sum())]).mean())
    return float(sampled.mean()) if len(sampled) else 0.0


def ap_student(precision, recall):
    envelope = precision.flip(0).cummax(0).values.flip(0)
    thresholds = torch.linspace(0, 1, 101, dtype=recall.dtype)
    inds = torch.searchsorted(recall, thresholds, side="left")
    padded = torch.cat([envelope, envelope.new_zeros(1)])  # index R means "beyond"
    return padded[inds].mean()


def ap_eleven_point(precision, recall):
    return _np_ap(precision, recall, thresholds=np.linspace(0, 1, 11))


def ap_no_envelope(precision, recall):
    return _np_ap(precision, recall, envelope=False)


def ap_trapezoid(precision, recall):
    return float(np.trapezoid(precision.numpy(), recall.numpy()))


def ap_side_right(precision, recall):
    return _np_ap(precision, recall, side="right")


def ap_reached_thresholds_only(precision, recall):
    return _np_ap(precision, recall, zero_fill=False)


def ap_fails_without_detections(precision, recall):
    envelope = precision.flip(0).cummax(0).values.flip(0)
    inds = torch.searchsorted(recall, torch.linspace(0, 1, 101, dtype=recall.dtype))
    return torch.where(inds < len(recall), envelope[inds.clamp(max=len(recall) - 1)], 0.0).mean()


def ap_envelope_from_left(precision, recall):
    from_left = torch.from_numpy(np.maximum.accumulate(precision.numpy()))
    return _np_ap(from_left, recall, envelope=False)


def ap_recall_first(recall, precision):
    return ap_student(precision, recall)


def library_ap(precision, recall):
    return evaluation.interpolated_ap(precision, recall)


CORRECT = {
    "ap_from_pr": [ap_student, _np_ap, library_ap],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("ap_from_pr", ap_recall_first, "'recall stops at 0.5'"),
    ("ap_from_pr", ap_eleven_point, "'recall stops at 0.5'"),
    ("ap_from_pr", ap_no_envelope, "'precision rises again (needs the envelope)'"),
    ("ap_from_pr", ap_trapezoid, "'perfect detector'"),
    ("ap_from_pr", ap_side_right, "'perfect detector'"),
    ("ap_from_pr", ap_reached_thresholds_only, "'recall stops at 0.5'"),
    ("ap_from_pr", ap_fails_without_detections, "'no detections'"),
    ("ap_from_pr", ap_envelope_from_left, "'precision rises again (needs the envelope)'"),
]


class TestGraders(GraderTests):
    grader_module = lesson09_evaluation
    correct = CORRECT
    wrong = WRONG


def test_hints_name_the_mistake(capsys):
    exercises.check_ap_from_pr(ap_side_right)
    assert "side='left'" in capsys.readouterr().out


def test_ap_reference_equals_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    generator = torch.Generator().manual_seed(0)
    num_gt, num_det = 12, 20
    gt_xy = torch.arange(num_gt, dtype=torch.float64)[:, None] * 50 + torch.tensor([10.0, 10.0])
    is_tp = torch.rand(num_det, generator=generator) < 0.6
    gt_for_det = torch.randperm(num_gt, generator=generator).tolist()
    scores = torch.linspace(0.99, 0.2, num_det).tolist()
    detections, matched = [], 0
    for i in range(num_det):
        if is_tp[i] and matched < num_gt:
            x, y = gt_xy[gt_for_det[matched]].tolist()
            matched += 1
        else:
            x, y = 2000.0 + 50 * i, 2000.0  # far from every ground-truth box
        detections.append(
            {"image_id": 1, "category_id": 1, "bbox": [x, y, 20, 20], "score": scores[i]}
        )
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 4000, "height": 4000}],
        "categories": [{"id": 1, "name": "shape"}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [*gt_xy[k].tolist(), 20, 20],
                "area": 400.0,
                "iscrowd": 0,
            }
            for k in range(num_gt)
        ],
    }
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.params.iouThrs = np.array([0.5])
    evaluator.evaluate()
    evaluator.accumulate()
    coco_ap = float(evaluator.eval["precision"][0, :, 0, 0, -1].mean())

    tp = torch.cumsum(
        torch.tensor([d["bbox"][0] < 1000 for d in detections], dtype=torch.float64), 0
    )
    recall = tp / num_gt
    precision = tp / torch.arange(1, num_det + 1, dtype=torch.float64)
    assert abs(lesson09_evaluation._ap_reference(precision, recall) - coco_ap) < 1e-9
    assert exercises.check_ap_from_pr(ap_student) is True
