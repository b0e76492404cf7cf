"""Graders for lesson 05 (``notebooks/05_matching_and_box_coding.ipynb``): IoU and box coding.

- ``check_box_iou(fn)``: ``fn(boxes1 (N, 4), boxes2 (M, 4)) -> iou (N, M)``, against
  ``torchvision.ops.box_iou``;
- ``check_encode_boxes(fn)``: ``fn(gt_boxes (N, 4), anchors (N, 4), weights) -> box_deltas (N, 4)``,
  against torchvision's ``BoxCoder``;
- ``check_decode_boxes(fn)``: ``fn(box_deltas (N, 4), anchors (N, 4), weights) -> boxes (N, 4)``,
  against torchvision's ``BoxCoder`` with the library's clamp ``BOX_DELTA_CLAMP``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torchvision
from torchvision.models.detection._utils import BoxCoder

from ..config import BOX_DELTA_CLAMP
from .runner import Case, run_checks, seeded, tensor


def _random_boxes(num: int, g: torch.Generator, max_xy: float = 100.0, max_wh: float = 60.0):
    xy = torch.rand(num, 2, generator=g) * max_xy
    wh = torch.rand(num, 2, generator=g) * max_wh + 1.0
    return torch.cat([xy, xy + wh], dim=1)  # (num, 4) xyxy


def _box_iou_cases() -> list[Case]:
    g = seeded(0)
    union_hint = (
        "IoU = intersection / (area1 + area2 - intersection), with width = x2 - x1 "
        "(no +1: boxes are in continuous pixel coordinates)."
    )
    pairwise_hint = (
        "Compare every box of boxes1 with every box of boxes2: broadcast "
        "boxes1[:, None, :2] against boxes2[None, :, :2]. The result has one row per "
        "box of boxes1 and one column per box of boxes2: shape (N, M)."
    )
    return [
        Case("identical boxes", (tensor([[0, 0, 2, 2]]), tensor([[0, 0, 2, 2]])), union_hint),
        Case("partial overlap", (tensor([[0, 0, 2, 2]]), tensor([[1, 1, 3, 3]])), union_hint),
        Case("one box inside the other", (tensor([[0, 0, 4, 4]]), tensor([[1, 1, 2, 2]])), union_hint),
        Case(
            "disjoint boxes (apart in x and y)",
            (tensor([[0, 0, 1, 1]]), tensor([[2, 2, 3, 3]])),
            "For boxes that do not overlap, x2 - x1 of the overlap is negative; two "
            "negatives multiply to a positive area. Clamp the overlap width and height "
            "at 0 (.clamp(min=0)) before multiplying.",
        ),
        Case(
            "disjoint boxes (apart in x only)",
            (tensor([[0, 0, 1, 4]]), tensor([[2, 0, 3, 4]])),
            "A negative overlap width times a positive height gives a negative area: "
            "clamp the overlap width and height at 0 (.clamp(min=0)).",
        ),
        Case(
            "boxes that share an edge",
            (tensor([[0, 0, 1, 1]]), tensor([[1, 0, 2, 1]])),
            "Boxes that only touch have zero overlap. Width is x2 - x1, without the "
            "old +1 pixel convention.",
        ),
        Case(
            "negative coordinates",
            (tensor([[-5, -5, 5, 5]]), tensor([[0, 0, 10, 10]])),
            "Boxes may extend past the image (negative x1, y1): do not clamp the "
            "coordinates themselves, only the overlap width and height.",
        ),
        Case("N != M (3 vs 5 boxes)", (_random_boxes(3, g), _random_boxes(5, g)), pairwise_hint),
        Case("N = M (4 vs 4 boxes)", (_random_boxes(4, g), _random_boxes(4, g)), pairwise_hint),
        Case(
            "empty boxes1",
            (torch.zeros(0, 4), _random_boxes(3, g)),
            "With no boxes the answer is an empty tensor of shape (0, M); broadcasting "
            "handles this without special cases.",
        ),
        Case(
            "empty boxes2",
            (_random_boxes(2, g), torch.zeros(0, 4)),
            "With no boxes the answer is an empty tensor of shape (N, 0); broadcasting "
            "handles this without special cases.",
        ),
        Case(
            "float64 boxes",
            (_random_boxes(2, g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: float64 boxes give a float64 IoU. Avoid "
            "torch.zeros(N, M) without dtype=boxes1.dtype.",
            check_dtype=True,
        ),
    ]


def check_box_iou(fn: Callable) -> bool:
    """Check ``fn(boxes1, boxes2) -> iou``.

    - ``boxes1``: (N, 4) float tensor of xyxy boxes in pixels.
    - ``boxes2``: (M, 4) float tensor of xyxy boxes.
    - returns: (N, M) tensor, ``iou[i, j]`` = IoU of ``boxes1[i]`` and ``boxes2[j]``,
      same dtype as the inputs.

    Reference: ``torchvision.ops.box_iou``.
    """
    return run_checks(
        "box_iou", fn, _box_iou_cases(), torchvision.ops.box_iou, ("boxes1", "boxes2")
    )


def _encode_reference(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights).encode_single(gt_boxes, anchors)


def _decode_reference(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights, bbox_xform_clip=BOX_DELTA_CLAMP).decode_single(box_deltas, anchors)


def _encode_cases() -> list[Case]:
    g = seeded(3)
    anchors = tensor([[0, 0, 16, 8], [10, 10, 42, 74]])
    formula_hint = (
        "dx = (gt_cx - anchor_cx) / anchor_w, dy likewise with heights, "
        "dw = log(gt_w / anchor_w), dh = log(gt_h / anchor_h), where the centre "
        "cx = x1 + 0.5 * w."
    )
    return [
        Case(
            "gt equal to the anchors",
            (anchors, anchors),
            "A ground-truth box equal to its anchor encodes to (0, 0, 0, 0).",
        ),
        Case(
            "shifted boxes",
            (anchors + tensor([4, -2, 4, -2]), anchors),
            "dx, dy are the centre offsets divided by the ANCHOR's width and height.",
        ),
        Case(
            "larger box, same top-left corner",
            (tensor([[0, 0, 32, 24], [10, 10, 26, 42]]), anchors),
            "The centre is x1 + 0.5 * w (not x1 + w, not x1 + x2), and "
            "dw = log(gt_w / anchor_w): ground truth over anchor, not the reverse.",
        ),
        Case("20 random pairs", (_random_boxes(20, g), _random_boxes(20, g)), formula_hint),
        Case(
            "weights (10, 10, 5, 5)",
            (_random_boxes(6, g), _random_boxes(6, g)),
            "Encoding MULTIPLIES by the weights: dx = wx * (gt_cx - anchor_cx) / anchor_w, "
            "dw = ww * log(gt_w / anchor_w).",
            kwargs={"weights": (10.0, 10.0, 5.0, 5.0)},
        ),
        Case(
            "no boxes",
            (torch.zeros(0, 4), torch.zeros(0, 4)),
            "No boxes give an empty (0, 4) tensor.",
        ),
        Case(
            "float64 boxes",
            (_random_boxes(3, g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: build every tensor from gt_boxes / anchors.",
            check_dtype=True,
        ),
    ]


def check_encode_boxes(fn: Callable) -> bool:
    """Check ``fn(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)) -> box_deltas``.

    - ``gt_boxes``: (N, 4) xyxy ground-truth box matched to each anchor.
    - ``anchors``: (N, 4) xyxy anchors.
    - ``weights``: ``(wx, wy, ww, wh)``, multiplied into the deltas (RetinaNet uses 1s).
    - returns: (N, 4) ``(dx, dy, dw, dh)``.

    Reference: torchvision's ``BoxCoder(weights).encode_single(gt_boxes, anchors)``.
    """
    return run_checks(
        "encode_boxes", fn, _encode_cases(), _encode_reference, ("gt_boxes", "anchors")
    )


def _decode_cases() -> list[Case]:
    g = seeded(4)
    anchors = tensor([[0, 0, 16, 8], [10, 10, 42, 74]])
    formula_hint = (
        "cx = anchor_cx + dx * anchor_w, w = anchor_w * exp(dw) (the same for y and h), "
        "then the box is (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)."
    )
    return [
        Case(
            "zero deltas give the anchors",
            (torch.zeros(2, 4), anchors),
            "Deltas (0, 0, 0, 0) decode to the anchor itself.",
        ),
        Case("shift only", (tensor([[0.25, -0.5, 0, 0], [1, 0.1, 0, 0]]), anchors), formula_hint),
        Case(
            "scale only",
            (tensor([[0, 0, math.log(2), 0], [0, 0, 0, -math.log(2)]]), anchors),
            "Width and height scale by exp(dw), exp(dh) around the anchor's centre.",
        ),
        Case(
            "20 random deltas",
            (torch.randn(20, 4, generator=g) * 0.5, _random_boxes(20, g)),
            formula_hint,
        ),
        Case(
            "weights (10, 10, 5, 5)",
            (torch.randn(6, 4, generator=g), _random_boxes(6, g)),
            "Decoding DIVIDES the deltas by the weights before using them "
            "(dx = deltas[:, 0] / wx), undoing what encode multiplied in.",
            kwargs={"weights": (10.0, 10.0, 5.0, 5.0)},
        ),
        Case(
            "huge dw, dh are clamped",
            (tensor([[0, 0, 10, 10], [0, 0, 100, 3]]), anchors),
            "Clamp dw and dh at max=log(1000 / 16) before exp(), as torchvision's BoxCoder "
            "does; otherwise one wild prediction becomes an enormous (or inf) box.",
        ),
        Case(
            "very negative dw, dh are not clamped",
            (tensor([[0, 0, -10, -6], [0, 0, -3, -10]]), anchors),
            "Only the upper side is clamped (dw.clamp(max=log(1000 / 16))); shrinking is "
            "not limited.",
        ),
        Case(
            "no boxes",
            (torch.zeros(0, 4), torch.zeros(0, 4)),
            "No deltas give an empty (0, 4) tensor.",
        ),
        Case(
            "float64 deltas",
            (torch.randn(3, 4, generator=g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: build every tensor from box_deltas / anchors.",
            check_dtype=True,
        ),
    ]


def check_decode_boxes(fn: Callable) -> bool:
    """Check ``fn(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)) -> boxes``.

    - ``box_deltas``: (N, 4) ``(dx, dy, dw, dh)`` predicted for each anchor.
    - ``anchors``: (N, 4) xyxy anchors.
    - ``weights``: ``(wx, wy, ww, wh)``; the deltas are divided by them.
    - returns: (N, 4) xyxy boxes; dw, dh clamped at ``max=log(1000 / 16)`` before exp().

    Reference: torchvision's ``BoxCoder(weights).decode_single(box_deltas, anchors)``.
    """
    return run_checks(
        "decode_boxes", fn, _decode_cases(), _decode_reference, ("box_deltas", "anchors")
    )
