"""Grader for lesson 09 (``notebooks/09_evaluation.ipynb``): COCO's 101-point AP.

``check_ap_from_pr(fn)`` expects ``fn(precision (R,), recall (R,)) -> AP`` (a number) from one
precision-recall curve, the arguments in the order of the library's
``retina_lessons.evaluation.interpolated_ap``, which is the reference (what pycocotools'
``COCOeval.accumulate`` computes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import evaluation
from .runner import Case, Problem, run_checks, seeded, tensor


def _ap_reference(precision, recall) -> float:
    """COCO's 101-point AP from one precision-recall curve (as pycocotools accumulates)."""
    return float(evaluation.interpolated_ap(precision, recall))


def _compare_numbers(expected: float, got: Any, case: Case) -> str | None:
    number_hint = "Return the AP as one number: the mean of the 101 sampled precisions."
    if isinstance(got, torch.Tensor | np.ndarray) and math.prod(got.shape) != 1:
        return Problem(
            f"expected a single number, got an array of shape {tuple(got.shape)}", number_hint
        )
    try:
        value = float(got)
    except (TypeError, ValueError, RuntimeError):
        return Problem(f"expected a single number, got {type(got).__name__}", number_hint)
    if not math.isfinite(value):
        return "the AP is NaN or inf"
    if abs(value - expected) > 1e-6:
        return f"expected {expected:.6g}, got {value:.6g}"
    return None


def _ap_cases() -> list[Case]:
    g = seeded(6)
    # A ranked list of 24 detections against 16 ground-truth boxes: recall k / 16.
    is_tp = torch.rand(24, generator=g) < 0.6
    tp = torch.cumsum(is_tp.double(), 0)
    realistic = (tp / torch.arange(1, 25, dtype=torch.float64), tp / 16)  # (precision, recall)

    def pr(precision, recall):
        return (tensor(precision, torch.float64), tensor(recall, torch.float64))

    return [
        Case(
            "perfect detector",
            pr([1.0, 1.0, 1.0, 1.0], [0.25, 0.5, 0.75, 1.0]),
            "Precision 1 up to recall 1 gives AP 1: each of the 101 thresholds, 1.0 "
            "included, finds a recall >= it (searchsorted with side='left') and takes "
            "its precision; the AP is their mean, not an area.",
        ),
        Case(
            "recall stops at 0.5",
            pr([1.0, 1.0], [0.25, 0.5]),
            "Take the arguments as (precision, recall). Sample precision at the 101 "
            "thresholds linspace(0, 1, 101) and average all "
            "101 values; thresholds beyond the largest recall count as 0 (AP = 51 / 101 "
            "here). Not 11 points, not the area under the curve.",
        ),
        Case(
            "precision rises again (needs the envelope)",
            pr([1.0, 0.5, 0.67, 0.5, 0.6, 0.4], [0.125, 0.25, 0.375, 0.5, 0.625, 0.75]),
            "First make precision monotone non-increasing from the right: precision[i] = "
            "max(precision[i:]), e.g. torch.cummax on the flipped tensor.",
        ),
        Case(
            "recall exactly on a threshold",
            pr([1.0, 0.5, 0.25], [0.25, 0.5, 0.75]),
            "For each threshold t take the precision at the first recall >= t: "
            "torch.searchsorted(recall, thresholds, side='left').",
        ),
        Case(
            "single point", pr([0.5], [1.0]), "One point (recall 1, precision 0.5) gives AP 0.5."
        ),
        Case(
            "no detections",
            pr([], []),
            "With no detections every threshold is beyond the largest recall: AP = 0.",
        ),
        Case(
            "24 detections, 16 ground-truth boxes",
            realistic,
            "Envelope from the right, then 101 thresholds with side='left', 0 beyond the "
            "largest recall, mean of the 101 values.",
        ),
        Case(
            "precision first, then recall",
            pr([1.0, 0.5], [0.5, 1.0]),
            "The arguments come as (precision, recall), the order of the library's "
            "interpolated_ap(precision, recall): precision 1 up to recall 0.5, then 0.5, "
            "gives AP (51 * 1 + 50 * 0.5) / 101.",
        ),
    ]


def check_ap_from_pr(fn: Callable) -> bool:
    """Check ``fn(precision, recall) -> ap``.

    - ``precision``: (R,) float64 tensor (one value per ranked detection).
    - ``recall``: (R,) float64 tensor, sorted increasing.
    - returns: a number (float or 0-d tensor), COCO's 101-point interpolated AP:
      precision made monotone non-increasing from the right, sampled at the recall
      thresholds ``linspace(0, 1, 101)`` with ``searchsorted(..., side="left")``
      (0 where a threshold is beyond the largest recall), averaged over all 101.

    Reference: ``COCOeval.accumulate`` in pycocotools.
    """
    return run_checks(
        "ap_from_pr",
        fn,
        _ap_cases(),
        _ap_reference,
        ("precision", "recall"),
        compare=_compare_numbers,
    )
