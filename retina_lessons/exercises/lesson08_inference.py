"""Grader for lesson 08 (``notebooks/08_inference.ipynb``): non-maximum suppression.

``check_nms(fn)`` expects ``fn(boxes (N, 4), scores (N,), iou_threshold) -> keep (K,) int64``,
indices in decreasing score order; the reference is ``torchvision.ops.nms``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision

from .runner import Case, Problem, run_checks, seeded, tensor


def _compare_indices(expected, got, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return Problem(
            f"expected a torch.Tensor of indices, got {type(got).__name__}",
            "Return the kept indices as a tensor: torch.tensor(keep, dtype=torch.int64).",
        )
    if got.dtype == torch.bool:
        return Problem(
            "got a boolean mask instead of indices",
            "Return the indices of the kept boxes (int64) in decreasing score order, "
            "not a True/False mask over the boxes.",
        )
    if got.dtype != torch.int64:
        return Problem(
            f"expected int64 indices, got dtype {got.dtype}",
            "Indices are int64 in PyTorch: .to(torch.int64) or dtype=torch.long.",
        )
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected {expected.numel()} kept boxes, got shape {tuple(got.shape)}"
    if not torch.equal(got.cpu(), expected):
        return "different indices (or order)"
    return None


def _clustered_boxes(num: int, g: torch.Generator) -> torch.Tensor:
    centres = torch.tensor([[30.0, 30.0], [70.0, 40.0], [50.0, 80.0]])
    pick = torch.randint(0, 3, (num,), generator=g)
    xy = centres[pick] + torch.randn(num, 2, generator=g) * 6
    half = 10 + torch.rand(num, 2, generator=g) * 8
    return torch.cat([xy - half, xy + half], dim=1)  # (num, 4)


def _nms_cases() -> list[Case]:
    g = seeded(2)
    overlap = tensor([[0, 0, 10, 10], [1, 1, 11, 11]])  # IoU 81 / 119 = 0.68
    unsorted_boxes = tensor([[0, 0, 10, 10], [20, 0, 30, 10], [1, 0, 11, 10], [40, 0, 50, 10]])
    sort_hint = (
        "Visit boxes in decreasing score order (scores.argsort(descending=True)) and "
        "return indices into the original boxes, highest score first."
    )
    return [
        Case(
            "two overlapping boxes",
            (overlap, tensor([0.9, 0.8]), 0.5),
            "A box is suppressed when its IoU with a kept, higher-scoring box is "
            "GREATER than iou_threshold (not smaller).",
        ),
        Case("unsorted scores", (unsorted_boxes, tensor([0.3, 0.5, 0.6, 0.9]), 0.5), sort_hint),
        Case(
            "IoU exactly at the threshold",
            (tensor([[0, 0, 3, 1], [1, 0, 4, 1]]), tensor([0.9, 0.8]), 0.5),
            "These boxes have IoU exactly 0.5: torchvision suppresses only IoU > "
            "threshold, so both are kept. Use >, not >=.",
        ),
        Case(
            "chain A-B-C: suppressed boxes do not suppress",
            (tensor([[0, 0, 10, 10], [6, 0, 16, 10], [12, 0, 22, 10]]), tensor([0.9, 0.8, 0.7]), 0.2),
            "B overlaps A and C, but A and C do not overlap. B is removed by A, and a "
            "removed box must not remove anything: compare each box only with boxes "
            "already kept.",
        ),
        Case(
            "no overlaps: keep everything, sorted",
            (
                tensor([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30], [20, 20, 30, 30]]),
                tensor([0.1, 0.7, 0.4, 0.9]),
                0.5,
            ),
            sort_hint,
        ),
        Case("single box", (tensor([[5, 5, 9, 9]]), tensor([0.3]), 0.5), "One box is always kept: [0]."),
        Case(
            "empty input",
            (torch.zeros(0, 4), torch.zeros(0), 0.5),
            "No boxes give an empty int64 tensor: torch.empty(0, dtype=torch.int64).",
        ),
        Case(
            "40 clustered boxes, threshold 0.5",
            (_clustered_boxes(40, g), torch.rand(40, generator=g), 0.5),
            sort_hint,
        ),
        Case(
            "40 clustered boxes, threshold 0.3",
            (_clustered_boxes(40, g), torch.rand(40, generator=g), 0.3),
            "Use the iou_threshold argument rather than a fixed 0.5.",
        ),
    ]


def check_nms(fn: Callable) -> bool:
    """Check ``fn(boxes, scores, iou_threshold) -> keep``.

    - ``boxes``: (N, 4) float tensor of xyxy boxes.
    - ``scores``: (N,) float tensor.
    - ``iou_threshold``: float; a box is dropped when its IoU with a kept box of
      higher score is greater than this.
    - returns: (K,) int64 tensor of indices into ``boxes``, in decreasing score order.

    Reference: ``torchvision.ops.nms``.
    """
    return run_checks(
        "nms",
        fn,
        _nms_cases(),
        torchvision.ops.nms,
        ("boxes", "scores", "iou_threshold"),
        compare=_compare_indices,
    )
