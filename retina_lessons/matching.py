"""Assigning anchors to ground-truth boxes by IoU, for a whole batch at once.

Paper, Section 4 ("Anchors"): an anchor is assigned to a ground-truth box when their IoU is at least
0.5, to background when its best IoU is below 0.4; anchors in [0.4, 0.5) are ignored during training.
torchvision adds *low-quality matches*: every ground-truth box also gets the anchor(s) it overlaps
most, even below 0.5, so no object goes without a positive anchor. One deliberate difference from torchvision: a box that
overlaps no anchor at all gets no low-quality match (torchvision would make every anchor positive).

Taught in ``notebooks/05_matching_and_box_coding.ipynb``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .boxes import box_iou
from .config import BG_IOU, FG_IOU

BACKGROUND = -1  # best IoU below BG_IOU: trained as a negative for every class
IGNORE = -2  # best IoU in [BG_IOU, FG_IOU): no loss at all


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


def match_anchors(anchors_xyxy: Tensor, gt_boxes: Tensor, gt_valid: Tensor | None = None,
                  fg_iou: float = FG_IOU, bg_iou: float = BG_IOU,
                  allow_low_quality_matches: bool = True) -> Tensor:
    """For each anchor, the index of its ground-truth box, or BACKGROUND / IGNORE.

    Args:
        anchors_xyxy: (N, 4) anchors shared by the batch.
        gt_boxes: (B, M, 4) ground truth, padded (see `pad_ground_truth`); (M, 4) for one image.
        gt_valid: (B, M) True for real boxes; all True if omitted.
    Returns:
        matched_gt_idx: (B, N) int64 (or (N,) for one image): a box index in [0, M), BACKGROUND or IGNORE.
    """
    single = gt_boxes.dim() == 2
    if single:
        gt_boxes = gt_boxes[None]
    num_images, max_boxes, _ = gt_boxes.shape
    num_anchors = anchors_xyxy.shape[0]
    if gt_valid is None:
        gt_valid = torch.ones(gt_boxes.shape[:2], dtype=torch.bool, device=gt_boxes.device)
    if max_boxes == 0:  # no ground truth anywhere: every anchor is background
        matched = torch.full((num_images, num_anchors), BACKGROUND, dtype=torch.int64, device=anchors_xyxy.device)
        return matched[0] if single else matched

    iou = box_iou(gt_boxes, anchors_xyxy)  # (B, M, N)
    iou = iou.masked_fill(~gt_valid[..., None], -1.0)  # padding never wins
    best_iou, matched = iou.max(dim=1)  # (B, N): best ground truth per anchor
    best_match = matched.clone()
    matched[best_iou < bg_iou] = BACKGROUND
    matched[(best_iou >= bg_iou) & (best_iou < fg_iou)] = IGNORE

    if allow_low_quality_matches:
        # Every ground-truth box keeps the anchor(s) it overlaps most (ties included), even below FG_IOU.
        best_iou_per_gt = iou.max(dim=2, keepdim=True).values  # (B, M, 1)
        # A box that overlaps no anchor at all (best IoU 0) gets none: torchvision's Matcher would
        # call every anchor "tied for best" and make all of them positive.
        is_best = (iou == best_iou_per_gt) & (best_iou_per_gt > 0) & gt_valid[..., None]  # (B, M, N)
        promote = is_best.any(dim=1)  # (B, N)
        matched[promote] = best_match[promote]

    # Images without boxes: all background (their IoUs were all -1 above).
    matched[~gt_valid.any(dim=1)] = BACKGROUND
    return matched[0] if single else matched
