"""RetinaNet's training loss, vectorised over the whole batch.

Paper, Section 4.1 ("Focal Loss"): the classification loss is the focal loss summed over all anchors that are
not ignored, normalised by the number of anchors assigned to a ground-truth box (not by the total
number of anchors: almost all of them are easy negatives with negligible loss). The box loss is
computed on the foreground anchors only.

Normalisation:
- ``"per_image"`` (torchvision): each image's sums are divided by that image's foreground count
  (at least 1), then the images are averaged;
- ``"per_batch"`` (Detectron, the authors' code; the paper's text normalises per image): the batch's sums are divided by the batch's foreground count.

Box losses: ``"l1"`` on the encoded deltas (torchvision v1), ``"smooth_l1"`` with ``beta`` (the
paper's Detectron implementation used beta = 0.11, ``SMOOTH_L1_BETA``), or ``"giou"`` on the decoded boxes
(torchvision v2).

Mixed precision: under ``torch.autocast`` the heads return bfloat16 or float16 outputs; both losses
upcast them to float32 first (as torchvision's loss effectively does: its cross-entropy and box
targets are float32), so matching, box coding and the sums run in float32. The focal loss keeps its
log-space form, which stays finite where ``(1 - p_t) ** gamma`` of a rounded ``p`` would not.

Taught in ``notebooks/06_focal_loss.ipynb`` and ``notebooks/07_training.ipynb``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import generalized_box_iou_loss

from .box_coding import TORCHVISION_WEIGHTS, decode_boxes, encode_boxes
from .boxes import upcast
from .config import BOX_DELTA_CLAMP, FOCAL_ALPHA, FOCAL_GAMMA, NO_ALPHA, SMOOTH_L1_BETA
from .distributed import foreground_total
from .matching import IGNORE


def classification_targets(matched_gt_idx: Tensor, gt_labels: Tensor, num_classes: int) -> Tensor:
    """One-hot targets (B, N, K): 1 for the matched box's class on foreground anchors, 0 elsewhere."""
    foreground = matched_gt_idx >= 0  # (B, N)
    labels = gt_labels.gather(1, matched_gt_idx.clamp(min=0))  # (B, N): label of the matched box
    one_hot = F.one_hot(labels, num_classes).to(torch.float32)  # (B, N, K)
    return one_hot * foreground[..., None]


def _normalise(per_image_sums: Tensor, num_foreground: Tensor, normalization: str) -> Tensor:
    if normalization == "per_image":
        return (per_image_sums / num_foreground.clamp(min=1)).mean()
    if normalization == "per_batch":  # over all processes of a data-parallel step (see distributed.py)
        total, scale = foreground_total(num_foreground.sum())
        return per_image_sums.sum() * scale / total.clamp(min=1)
    raise ValueError(f"normalization={normalization!r}: expected 'per_image' or 'per_batch'")


def classification_loss(cls_logits: Tensor, matched_gt_idx: Tensor, gt_labels: Tensor, *,
                        alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA,
                        normalization: str = "per_image") -> Tensor:
    """Focal loss over all non-ignored anchors, normalised by the foreground count.

    cls_logits (B, N, K); matched_gt_idx (B, N) from `match_anchors`; gt_labels (B, M) padded labels.

    Equal to ``sigmoid_focal_loss(cls_logits, classification_targets(...))`` summed over the
    non-ignored anchors, but computed without building the (B, N, K) one-hot targets: every entry
    is first scored as a negative (t = 0), then the few foreground entries (one per foreground
    anchor) are switched to t = 1. Both terms are taken in log space, as in `sigmoid_focal_loss`,
    so gradients stay finite for every gamma >= 0.
    """
    cls_logits = upcast(cls_logits)  # half-precision logits (autocast) -> float32 sums
    B, N, K = cls_logits.shape
    log_p = F.logsigmoid(cls_logits)  # (B, N, K): log p
    # t = 0: CE = -log(1 - p) = x - log p, and 1 - p_t = p.
    negative = torch.exp(gamma * log_p) * (cls_logits - log_p)
    counted = (matched_gt_idx != IGNORE).to(cls_logits.dtype)  # (B, N)
    per_image = (negative.sum(dim=2) * counted).sum(dim=1)  # (B,)
    # t = 1 on the foreground entries: CE = -log p, and 1 - p_t = 1 - p, log(1 - p) = log p - x.
    image_idx, anchor_idx = (matched_gt_idx >= 0).nonzero(as_tuple=True)  # (F,), (F,)
    label = gt_labels[image_idx, matched_gt_idx[image_idx, anchor_idx]]  # (F,)
    x, lp = cls_logits[image_idx, anchor_idx, label], log_p[image_idx, anchor_idx, label]
    positive = torch.exp(gamma * (lp - x)) * -lp
    negative_weight, positive_weight = (1.0, 1.0) if alpha == NO_ALPHA else (1 - alpha, alpha)
    per_image = negative_weight * per_image
    switch = positive_weight * positive - negative_weight * negative[image_idx, anchor_idx, label]
    per_image = per_image.index_add(0, image_idx, switch)
    return _normalise(per_image, (matched_gt_idx >= 0).sum(dim=1), normalization)


def box_loss(box_deltas: Tensor, anchors_xyxy: Tensor, matched_gt_idx: Tensor, gt_boxes: Tensor, *,
             loss_type: str = "l1", beta: float = SMOOTH_L1_BETA, weights=TORCHVISION_WEIGHTS,
             clamp: float = BOX_DELTA_CLAMP, normalization: str = "per_image") -> Tensor:
    """Box regression loss on foreground anchors only.

    box_deltas (B, N, 4); anchors_xyxy (N, 4); matched_gt_idx (B, N); gt_boxes (B, M, 4) padded.
    """
    box_deltas = upcast(box_deltas)  # half-precision deltas (autocast) -> float32, as the targets
    B = box_deltas.shape[0]
    foreground = matched_gt_idx >= 0  # (B, N)
    image_idx, anchor_idx = foreground.nonzero(as_tuple=True)  # (F,), (F,): every foreground anchor
    matched_boxes = gt_boxes[image_idx, matched_gt_idx[image_idx, anchor_idx]]  # (F, 4)
    deltas = box_deltas[image_idx, anchor_idx]  # (F, 4)
    anchors = anchors_xyxy[anchor_idx]  # (F, 4)
    if loss_type == "l1":
        per_anchor = F.l1_loss(deltas, encode_boxes(matched_boxes, anchors, weights), reduction="none").sum(1)
    elif loss_type == "smooth_l1":
        per_anchor = F.smooth_l1_loss(deltas, encode_boxes(matched_boxes, anchors, weights),
                                      reduction="none", beta=beta).sum(1)
    elif loss_type == "giou":
        per_anchor = generalized_box_iou_loss(decode_boxes(deltas, anchors, weights, clamp), matched_boxes,
                                              reduction="none", eps=1e-7)
    else:
        raise ValueError(f"loss_type={loss_type!r}: expected 'l1', 'smooth_l1' or 'giou'")
    per_image = box_deltas.new_zeros(B).index_add(0, image_idx, per_anchor)  # (B,)
    return _normalise(per_image, foreground.sum(dim=1), normalization)
