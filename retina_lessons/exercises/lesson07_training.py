"""Grader for lesson 07 (``notebooks/07_training.ipynb``): the horizontal flip augmentation.

``check_hflip(fn)`` expects ``fn(image (3, H, W), boxes (M, 4)) -> (image, boxes)`` mirrored left
to right; the reference is ``retina_lessons.datasets.hflip``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import datasets
from .runner import Case, Problem, compare_tensors, run_checks, seeded, tensor


def _hflip_reference(image, boxes):
    flipped_image, flipped_target = datasets.hflip(image, {"boxes": boxes})
    return flipped_image, flipped_target["boxes"]


def _compare_pairs(expected, got, case) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return Problem(f"expected a pair (image, boxes), got {type(got).__name__}",
                        "Return both: `return flipped_image, flipped_boxes`.")
    for name, e, g_ in zip(("image", "boxes"), expected, got):
        problem = compare_tensors(e, g_, check_dtype=False)
        if problem is not None:
            return Problem(f"{name}: {problem}", getattr(problem, "hint", None) or case.hint)
    return None


def check_hflip(fn: Callable) -> bool:
    """Check ``fn(image, boxes) -> (flipped_image, flipped_boxes)``.

    - ``image``: (3, H, W); ``boxes``: (M, 4) xyxy in pixels.
    - returns: the image mirrored left to right and its boxes, still xyxy: x1' = W - x2,
      x2' = W - x1 (y unchanged). Reference: ``retina_lessons.datasets.hflip``.
    """
    g = seeded(12)
    image = torch.rand(3, 6, 10, generator=g)
    cases = [
        Case("one box", (image, tensor([[1.0, 2, 4, 5]])), "x1' = W - x2 and x2' = W - x1, so x1' < x2' still."),
        Case("a box touching the right edge", (image, tensor([[6.0, 0, 10, 6]])),
              "Boxes are in pixel edges, not pixel centres: use W, not W - 1."),
        Case("a wide image", (torch.rand(3, 4, 17, generator=g), tensor([[0.0, 1, 3, 2], [5, 0, 17, 4]])),
              "Flip along the last dimension (width): image.flip(-1), not the height."),
        Case("no boxes", (image, torch.zeros(0, 4)), "An image without boxes is fine: return an empty (0, 4) tensor."),
    ]
    return run_checks("hflip", fn, cases, _hflip_reference, ("image", "boxes"), compare=_compare_pairs)
