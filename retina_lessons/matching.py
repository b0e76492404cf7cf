"""Assigning anchors to ground-truth boxes by IoU, for a whole batch at once.

Paper, Section 4 ("Anchors"): "the assignment rule from RPN" with adjusted thresholds: an anchor is
assigned to a ground-truth box when their IoU is at least 0.5, to background when its best IoU is below
0.4; anchors in [0.4, 0.5) are ignored during training. Faster R-CNN's RPN rule also makes each box's
highest-IoU anchor(s) positive; torchvision's ``Matcher`` calls these *low-quality matches*
(``allow_low_quality_matches=True``, its RetinaNet's setting and the default here) and keeps them at any
IoU. (Detectron's ``roi_data/retinanet.py`` labels them foreground too, then relabels background every
anchor whose best IoU is below 0.4.) A promoted anchor is assigned to its own best box, which need not
be the box that promoted it, so a box can still be left without any positive anchor (the lesson shows
one). One deliberate difference from torchvision: a box whose IoU is 0 with every anchor gets no
low-quality match (torchvision's ``Matcher`` counts every anchor as tied for that box's best and makes
every anchor positive, each matched to its own best box), so such a box has no positive anchor.

Matching is two steps, public so that the anchor explorer colours anchors with training's own rule:
:func:`anchor_overlaps` (best IoU, best box and the low-quality candidates per anchor, computed once)
and :func:`assign_by_iou` (the thresholds); :func:`match_anchors` is the two in a row.

Taught in ``notebooks/05_matching_and_box_coding.ipynb``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .boxes import box_iou
from .config import BG_IOU, FG_IOU
from .validation import check_iou_thresholds

BACKGROUND = -1  # best IoU below BG_IOU: trained as a negative for every class
IGNORE = -2  # best IoU in [BG_IOU, FG_IOU): no loss at all
NO_BOX_IOU = -1.0  # best IoU of an anchor in an image without boxes (below any threshold)


def pad_ground_truth(gt_boxes: list[Tensor], gt_labels: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-image ground truth of different lengths: (B, M, 4) boxes, (B, M) labels, (B, M) valid mask.

    Padding rows hold the unit box [0, 0, 1, 1] (finite everywhere) and are never matched.
    """
    num_images = len(gt_boxes)
    max_boxes = max((b.shape[0] for b in gt_boxes), default=0)
    ref = gt_boxes[0]
    boxes = ref.new_zeros((num_images, max_boxes, 4))
    boxes[..., 2:] = 1.0
    labels = torch.zeros((num_images, max_boxes), dtype=torch.int64, device=ref.device)
    valid = torch.zeros((num_images, max_boxes), dtype=torch.bool, device=ref.device)
    for i, (b, lab) in enumerate(zip(gt_boxes, gt_labels)):
        boxes[i, : b.shape[0]] = b
        labels[i, : b.shape[0]] = lab
        valid[i, : b.shape[0]] = True
    return boxes, labels, valid


class Overlaps(NamedTuple):
    """The threshold-free half of matching: per anchor, what the thresholds are then applied to.

    Shapes are (B, N) for a batch, (N,) for one image.
    """

    best_iou: Tensor  # the anchor's highest IoU with a box of its image; NO_BOX_IOU if the image has none
    best_gt_idx: Tensor  # int64: the box that gives it (the first of equals; 0 if the image has none)
    is_best_anchor: Tensor  # bool: the anchor is (tied for) some box's best anchor, at an IoU above 0


def overlaps_from_iou(iou: Tensor, gt_valid: Tensor | None = None) -> Overlaps:
    """The :class:`Overlaps` of an IoU matrix: iou (B, M, N) ground truth x anchors, or (M, N) for one image.

    gt_valid (B, M) (or (M,)) marks the real boxes among padded ones; all are real if omitted.
    """
    single = iou.dim() == 2
    if single:
        iou = iou[None]
        gt_valid = None if gt_valid is None else gt_valid[None]
    num_images, num_boxes, num_anchors = iou.shape
    if gt_valid is None:
        gt_valid = torch.ones((num_images, num_boxes), dtype=torch.bool, device=iou.device)
    if num_boxes == 0:  # no ground truth anywhere
        best_iou = iou.new_full((num_images, num_anchors), NO_BOX_IOU)
        best_gt_idx = torch.zeros((num_images, num_anchors), dtype=torch.int64, device=iou.device)
        is_best = torch.zeros((num_images, num_anchors), dtype=torch.bool, device=iou.device)
    else:
        iou = iou.masked_fill(~gt_valid[..., None], NO_BOX_IOU)  # padding never wins
        best_iou, best_gt_idx = iou.max(dim=1)  # (B, N): best ground truth per anchor
        best_iou_per_gt = iou.max(dim=2, keepdim=True).values  # (B, M, 1)
        # A box that overlaps no anchor at all (best IoU 0) has no best anchor: torchvision's Matcher
        # would call every anchor "tied for best" and make all of them positive.
        is_best = ((iou == best_iou_per_gt) & (best_iou_per_gt > 0) & gt_valid[..., None]).any(dim=1)  # (B, N)
    overlaps = Overlaps(best_iou, best_gt_idx, is_best)
    return Overlaps(*(t[0] for t in overlaps)) if single else overlaps


def anchor_overlaps(anchors_xyxy: Tensor, gt_boxes: Tensor, gt_valid: Tensor | None = None) -> Overlaps:
    """anchors (N, 4) and gt_boxes (B, M, 4) padded (or (M, 4) for one image) -> their :class:`Overlaps`."""
    return overlaps_from_iou(box_iou(gt_boxes, anchors_xyxy), gt_valid)  # IoU (B, M, N)


def assign_by_iou(overlaps: Overlaps, fg_iou: float = FG_IOU, bg_iou: float = BG_IOU,
                  allow_low_quality_matches: bool = True) -> Tensor:
    """The thresholding half of matching: matched_gt_idx, a box index, BACKGROUND or IGNORE per anchor.

    At least `fg_iou`: the best box; below `bg_iou`: BACKGROUND; in between: IGNORE. With low-quality
    matches, each box's best anchor(s) take their own best box whatever their IoU, provided it is above 0.
    """
    check_iou_thresholds(fg_iou, bg_iou)
    best_iou, best_gt_idx, is_best = overlaps
    ignore = torch.full_like(best_gt_idx, IGNORE)
    background = torch.full_like(best_gt_idx, BACKGROUND)
    matched = torch.where(best_iou >= fg_iou, best_gt_idx, torch.where(best_iou >= bg_iou, ignore, background))
    if allow_low_quality_matches:
        matched = torch.where(is_best, best_gt_idx, matched)
    return matched


def match_anchors(anchors_xyxy: Tensor, gt_boxes: Tensor, gt_valid: Tensor | None = None,
                  fg_iou: float = FG_IOU, bg_iou: float = BG_IOU,
                  allow_low_quality_matches: bool = True) -> Tensor:
    """For each anchor, the index of its ground-truth box, or BACKGROUND / IGNORE.

    :func:`anchor_overlaps` (the IoUs, threshold-free) followed by :func:`assign_by_iou` (the thresholds).
    Images without boxes, and padding rows, leave every anchor BACKGROUND.

    Args:
        anchors_xyxy: (N, 4) anchors shared by the batch.
        gt_boxes: (B, M, 4) ground truth, padded (see `pad_ground_truth`); (M, 4) for one image.
        gt_valid: (B, M) True for real boxes; all True if omitted.
    Returns:
        matched_gt_idx: (B, N) int64 (or (N,) for one image): a box index in [0, M), BACKGROUND or IGNORE.
    """
    check_iou_thresholds(fg_iou, bg_iou)
    overlaps = anchor_overlaps(anchors_xyxy, gt_boxes, gt_valid)
    return assign_by_iou(overlaps, fg_iou, bg_iou, allow_low_quality_matches)
