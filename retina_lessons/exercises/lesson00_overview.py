"""Grader for lesson 00 (``notebooks/00_overview.ipynb``): how many anchors an image gets.

``check_num_anchors(fn)`` expects ``fn(image_size (H, W), num_anchors_per_location=9) -> int``,
the number of anchors on P3..P7; the grid sizes come from ``retina_lessons.anchors.feature_sizes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..anchors import feature_sizes
from .runner import Case, Problem, run_checks


def _num_anchors_reference(image_size, num_anchors_per_location=9):
    return sum(h * w for h, w in feature_sizes(image_size)) * num_anchors_per_location


def _compare_counts(expected: int, got: Any, case: Case) -> str | None:
    try:
        value = int(got)
    except (TypeError, ValueError, RuntimeError):
        return Problem(f"expected a whole number, got {type(got).__name__}", "Return an int.")
    if value != got:
        return Problem(f"expected a whole number, got {got!r}", "Round up each level's grid with math.ceil.")
    return None if value == expected else f"expected {expected}, got {value}"


def check_num_anchors(fn: Callable) -> bool:
    """Check ``fn(image_size, num_anchors_per_location=9) -> int``.

    The number of anchors RetinaNet places on P3..P7 of an image of ``image_size`` (H, W): each
    level l has a ceil(H / 2^l) x ceil(W / 2^l) grid with ``num_anchors_per_location`` anchors per
    location. Reference: the grid sizes of `retina_lessons.anchors.feature_sizes`.
    """
    cases = [
        Case("800 x 800, the paper's image", ((800, 800),), "Sum over the five levels P3..P7."),
        Case("a landscape 640 x 480 image", ((480, 640),), "H and W may differ: multiply each level's H and W."),
        Case("an odd size 97 x 131", ((97, 131),),
              "Each stride-2 layer rounds up: use math.ceil(H / 2**l), not integer division."),
        Case("a tiny 32 x 32 image", ((32, 32),), "P6 and P7 still have one location each (ceil of 0.5 and 0.25)."),
        Case("one anchor per location", ((256, 256),), "Multiply by num_anchors_per_location, not by 9.",
              kwargs={"num_anchors_per_location": 1}),
    ]
    return run_checks("num_anchors", fn, cases, _num_anchors_reference, ("image_size",), compare=_compare_counts)
