"""Grader for lesson 03 (``notebooks/03_subnets.ipynb``): a head's output, one row per anchor.

``check_head_reshape(fn)`` expects ``fn(head_output (B, A*K, H, W), num_anchors) -> (B, H*W*A, K)``
in torchvision's order; the reference is ``retina_lessons.heads.flatten_level``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import heads
from .runner import Case, run_checks


def _head_reshape_reference(head_output, num_anchors):
    K = head_output.shape[1] // num_anchors
    return heads.flatten_level(head_output, K)  # (B, H*W*A, K)


def _head_reshape_cases() -> list[Case]:
    def numbered(B, A, K, H, W):
        return torch.arange(B * A * K * H * W, dtype=torch.float32).view(B, A * K, H, W)

    order_hint = (
        "Channel a * K + k holds class k of anchor a: view(B, A, K, H, W), move A and "
        "K to the end with permute(0, 3, 4, 1, 2), then reshape(B, -1, K): rows go "
        "through the grid row by row (y, then x) and through the A anchors at each "
        "location. A reshape without the permute mixes locations and classes."
    )
    return [
        Case("one anchor, 3 classes, 2 x 2", (numbered(1, 1, 3, 2, 2), 1), order_hint),
        Case("3 anchors, 2 classes, 2 x 3", (numbered(1, 3, 2, 2, 3), 3), order_hint),
        Case(
            "A = K = 3 (same shape either way)",
            (numbered(1, 3, 3, 2, 2), 3),
            "The channels are anchor-major: view(B, A, K, H, W), not view(B, K, A, H, W). "
            "Here A = K, so only the values tell the two apart.",
        ),
        Case(
            "batch of 2, box head (K = 4)",
            (numbered(2, 9, 4, 3, 2), 9),
            "Keep the batch dimension first; every image gets its own H*W*A rows. " + order_hint,
        ),
    ]


def check_head_reshape(fn: Callable) -> bool:
    """Check ``fn(head_output, num_anchors) -> per-anchor outputs``.

    - ``head_output``: (B, A*K, H, W), a head's output for one level, channel
      ``a * K + k`` holding value k of anchor a.
    - ``num_anchors``: A, anchors per location.
    - returns: (B, H*W*A, K), rows ordered location-major (y, then x) then anchor, as
      torchvision's RetinaNet heads: ``view(B, A, K, H, W).permute(0, 3, 4, 1, 2)
      .reshape(B, -1, K)``.
    """
    return run_checks(
        "head_reshape",
        fn,
        _head_reshape_cases(),
        _head_reshape_reference,
        ("head_output", "num_anchors"),
    )
