"""Grader for lesson 04 (``notebooks/04_anchors.ipynb``): the anchors of one pyramid level.

``check_level_anchors(fn)`` expects ``fn(feature_size (H, W), stride, sizes, aspect_ratios) ->
(H*W*A, 4)`` xyxy anchors in torchvision's order; the reference is built from the library's
``retina_lessons.anchors.base_anchors`` and ``grid_anchors`` (equal to torchvision's
``AnchorGenerator``).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import anchors
from .runner import Case, run_checks


def _level_anchors_reference(feature_size, stride, sizes, aspect_ratios):
    """One level of torchvision's AnchorGenerator: (H*W*A, 4) xyxy anchors."""
    base = anchors.base_anchors(sizes, aspect_ratios)  # (A, 4) around (0, 0), rounded
    return anchors.grid_anchors(base, feature_size, (stride, stride))  # (H*W*A, 4)


def _level_anchors_cases() -> list[Case]:
    retina_sizes = tuple(32 * 2 ** (k / 3) for k in range(3))
    base_hint = (
        "Base anchor: h_ratio = sqrt(r), w_ratio = 1 / h_ratio, w = w_ratio * size, "
        "h = h_ratio * size, anchor = round([-w, -h, w, h] / 2). On a 1 x 1 grid the only "
        "centre is (0, 0), so the anchors are the base anchors themselves."
    )
    grid_hint = (
        "Centres are at (x * stride, y * stride) for x in range(W), y in range(H) (no "
        "half-stride offset); the rows go location by location (y, then x) and within "
        "a location through the A base anchors: (H, W, A, 4) -> (H*W*A, 4)."
    )
    return [
        Case("one square anchor", ((1, 1), 8, (32,), (1.0,)), base_hint),
        Case(
            "aspect ratios 0.5, 1, 2",
            ((1, 1), 8, (32,), (0.5, 1.0, 2.0)),
            "The aspect ratio is height / width: ratio 2 gives a tall anchor "
            "(h_ratio = sqrt(2), w_ratio = 1 / sqrt(2)). " + base_hint,
        ),
        Case(
            "base anchors are rounded",
            ((1, 1), 8, (20,), (0.5,)),
            "torchvision rounds the base anchors to whole pixels: .round() after "
            "dividing [-w, -h, w, h] by 2.",
        ),
        Case(
            "order: ratio-major, then size",
            ((1, 1), 8, (32, 64), (0.5, 1.0, 2.0)),
            "Base anchors go ratio by ratio, and within a ratio through the sizes: "
            "ws = (w_ratios[:, None] * sizes[None, :]).view(-1).",
        ),
        Case("grid 2 x 3 (H != W), stride 8", ((2, 3), 8, (16,), (1.0,)), grid_hint),
        Case("grid 3 x 2 with 3 anchors", ((3, 2), 16, (32,), (0.5, 1.0, 2.0)), grid_hint),
        Case(
            "RetinaNet P3: 9 anchors on 5 x 7, stride 8",
            ((5, 7), 8, retina_sizes, (0.5, 1.0, 2.0)),
            grid_hint,
        ),
    ]


def check_level_anchors(fn: Callable) -> bool:
    """Check ``fn(feature_size, stride, sizes, aspect_ratios) -> anchors``.

    - ``feature_size``: ``(H, W)``, the level's grid size (ints).
    - ``stride``: int, pixels between neighbouring grid cells.
    - ``sizes``: tuple of anchor sizes in pixels (e.g. ``(32, 40.3, 50.8)``).
    - ``aspect_ratios``: tuple of height / width ratios (e.g. ``(0.5, 1.0, 2.0)``).
    - returns: (H*W*A, 4) float tensor of xyxy anchors, A = len(sizes) * len(aspect_ratios),
      in torchvision's order: location-major (row y, then x), then the A base
      anchors (ratio-major, then size); centres at (x * stride, y * stride).

    Reference: ``torchvision.models.detection.anchor_utils.AnchorGenerator``.
    """
    return run_checks(
        "level_anchors",
        fn,
        _level_anchors_cases(),
        _level_anchors_reference,
        ("feature_size", "stride", "sizes", "aspect_ratios"),
    )
