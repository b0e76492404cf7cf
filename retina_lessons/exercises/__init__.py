"""The lessons' exercises: automatic graders, and the student edition built from the notebooks.

- :mod:`~retina_lessons.exercises.runner`: what the graders share (named cases, the verdict
  that never raises) and :func:`check_answer`, the self-check of the lessons' quick questions;
- one grader module per lesson, named like its notebook (``lesson05_matching_and_box_coding``
  holds ``check_box_iou``, ``check_encode_boxes`` and ``check_decode_boxes``);
- :mod:`~retina_lessons.exercises.student_edition`: the notebooks with every solution replaced by
  a stub (``python -m retina_lessons.exercises.student_edition student/``).

The notebooks import this package once, in a cell tagged ``exercise-setup``, and call the
graders through it::

    from retina_lessons import exercises

    exercises.check_box_iou(my_box_iou)
    exercises.check_answer("largest shift", my_largest_shift, cases, hint)

A grader runs the student's function on named cases chosen to catch the usual mistakes
(boxes that do not overlap, N != M, unsorted scores, extreme logits, odd feature-map sizes,
empty inputs, float64), compares with a reference (the library's or torchvision's piece) and
prints a short verdict, ``✓ box_iou: all 12 checks passed``, or, on the first failing case,
what went in, what was expected, what came back and a hint aimed at the mistake that case is
built to catch. It returns True or False and never raises; a function that still raises
``NotImplementedError`` gets a one-line "not implemented yet".

The graders and the function each one expects (shapes as in the package glossary):

- ``check_num_anchors(fn)``: ``fn(image_size (H, W), num_anchors_per_location=9) -> int`` (lesson 00)
- ``check_frozen_batchnorm(fn)``: ``fn(x, weight, bias, running_mean, running_var, eps) -> y`` (01)
- ``check_freeze_batchnorm(fn)``: ``fn(model) -> model``, every ``nn.BatchNorm2d`` frozen for good (01)
- ``check_fpn_top_down(fn)``: ``fn(lateral_c3, lateral_c4, lateral_c5) -> [m3, m4, m5]`` (02)
- ``check_head_reshape(fn)``: ``fn(head_output (B, A*K, H, W), num_anchors) -> (B, H*W*A, K)`` (03)
- ``check_level_anchors(fn)``: ``fn(feature_size, stride, sizes, aspect_ratios) -> (H*W*A, 4)`` (04)
- ``check_box_iou(fn)``: ``fn(boxes1 (N, 4), boxes2 (M, 4)) -> iou (N, M)`` (05)
- ``check_encode_boxes(fn)``: ``fn(gt_boxes (N, 4), anchors (N, 4), weights) -> box_deltas (N, 4)`` (05)
- ``check_decode_boxes(fn)``: ``fn(box_deltas (N, 4), anchors (N, 4), weights) -> boxes (N, 4)`` (05)
- ``check_focal_loss(fn)``: ``fn(logits, targets, alpha=0.25, gamma=2.0) -> loss`` (06)
- ``check_hflip(fn)``: ``fn(image (3, H, W), boxes (M, 4)) -> (image, boxes)`` (07)
- ``check_nms(fn)``: ``fn(boxes (N, 4), scores (N,), iou_threshold) -> keep (K,) int64`` (08)
- ``check_ap_from_pr(fn)``: ``fn(precision (R,), recall (R,)) -> AP (a number)`` (09)
- ``check_modulating_factor(fn)``: ``fn(logits, targets, gamma) -> (1 - p_t) ** gamma`` (10)
- ``check_sync_batchnorm_stats(fn)``: ``fn(sums (W, C), squares (W, C), counts (W,)) -> (mean (C,), var (C,))`` (11)

The exercise convention (cell tags, solution markers) is described in
``retina_lessons/exercises/student_edition.py``; TEACHING.md lists the exercises of each lesson.
"""

from collections.abc import Callable

from .lesson00_overview import check_num_anchors
from .lesson01_resnet_taps import check_freeze_batchnorm, check_frozen_batchnorm
from .lesson02_feature_pyramid import check_fpn_top_down
from .lesson03_subnets import check_head_reshape
from .lesson04_anchors import check_level_anchors
from .lesson05_matching_and_box_coding import check_box_iou, check_decode_boxes, check_encode_boxes
from .lesson06_focal_loss import check_focal_loss
from .lesson07_training import check_hflip
from .lesson08_inference import check_nms
from .lesson09_evaluation import check_ap_from_pr
from .lesson10_ablation import check_modulating_factor
from .lesson11_scaling_up import check_sync_batchnorm_stats
from .runner import check_answer

__all__ = [
    "ALL_CHECKS",
    "check_answer",
    "check_ap_from_pr",
    "check_box_iou",
    "check_decode_boxes",
    "check_encode_boxes",
    "check_focal_loss",
    "check_fpn_top_down",
    "check_freeze_batchnorm",
    "check_frozen_batchnorm",
    "check_head_reshape",
    "check_hflip",
    "check_level_anchors",
    "check_modulating_factor",
    "check_nms",
    "check_num_anchors",
    "check_sync_batchnorm_stats",
]

# Every grader by the name its verdict prints, in lesson order.
ALL_CHECKS: dict[str, Callable[[Callable], bool]] = {
    "num_anchors": check_num_anchors,
    "frozen_batchnorm": check_frozen_batchnorm,
    "freeze_batchnorm": check_freeze_batchnorm,
    "fpn_top_down": check_fpn_top_down,
    "head_reshape": check_head_reshape,
    "level_anchors": check_level_anchors,
    "box_iou": check_box_iou,
    "encode_boxes": check_encode_boxes,
    "decode_boxes": check_decode_boxes,
    "focal_loss": check_focal_loss,
    "hflip": check_hflip,
    "nms": check_nms,
    "ap_from_pr": check_ap_from_pr,
    "modulating_factor": check_modulating_factor,
    "sync_batchnorm_stats": check_sync_batchnorm_stats,
}
