"""Inference: from raw head outputs to detections, for the whole batch at once.

Paper, Section 4.1 ("Inference"): to keep inference fast, each pyramid level keeps at most its 1000
top-scoring box predictions after thresholding the detector confidence at 0.05; the boxes are
decoded, the predictions of all levels merged, and non-maximum suppression with threshold 0.5 is
applied per class. torchvision keeps 300 detections per image, the paper 100.

Taught in ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from .box_coding import TORCHVISION_WEIGHTS, decode_boxes
from .boxes import clip_boxes_to_image
from .config import BOX_DELTA_CLAMP


def top_candidates(cls_logits: Tensor, score_thresh: float, topk: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One level's best (anchor, class) pairs above the threshold, for every image.

    cls_logits (B, N_l, K) -> flat (image_idx, anchor_idx, labels, scores), each (C,), where C is the
    number of candidates kept over the batch (at most `topk` per image).
    """
    B, N, K = cls_logits.shape
    scores = torch.sigmoid(cls_logits).reshape(B, N * K)  # (B, N*K): anchor-major, then class
    candidates = torch.where(scores > score_thresh, scores, torch.full_like(scores, -1.0))
    top_scores, top_idx = candidates.topk(min(topk, N * K), dim=1)  # (B, k)
    keep = top_scores > score_thresh  # drop the ones that were below the threshold
    image_idx = torch.arange(B, device=cls_logits.device)[:, None].expand_as(top_idx)[keep]
    flat_idx = top_idx[keep]
    return image_idx, flat_idx // K, flat_idx % K, top_scores[keep]


def detections_from_outputs(cls_logits: Tensor, box_deltas: Tensor, anchors_xyxy: Tensor,
                            num_anchors_per_level: list[int], image_sizes: list[tuple[int, int]], *,
                            score_thresh: float = 0.05, topk_candidates: int = 1000, nms_thresh: float = 0.5,
                            detections_per_img: int = 300, box_weights=TORCHVISION_WEIGHTS,
                            box_delta_clamp: float = BOX_DELTA_CLAMP) -> list[dict[str, Tensor]]:
    """cls_logits (B, N, K), box_deltas (B, N, 4), anchors (N, 4) -> one dict per image.

    Each dict holds `boxes` (D, 4) xyxy in the resized image's pixels, `scores` (D,), `labels` (D,),
    sorted by decreasing score, D <= detections_per_img.
    """
    B = cls_logits.shape[0]
    sizes = torch.as_tensor(image_sizes, device=cls_logits.device)  # (B, 2) as (H, W)
    image_idx, boxes, scores, labels = [], [], [], []
    start = 0
    for num in num_anchors_per_level:  # a loop over the 5 levels, never over images or anchors
        level = slice(start, start + num)
        start += num
        img, anchor, label, score = top_candidates(cls_logits[:, level], score_thresh, topk_candidates)
        decoded = decode_boxes(box_deltas[:, level][img, anchor], anchors_xyxy[level][anchor],
                               box_weights, box_delta_clamp)  # (C, 4)
        boxes.append(clip_boxes_to_image(decoded, sizes[img]))
        image_idx.append(img)
        scores.append(score)
        labels.append(label)
    image_idx, boxes = torch.cat(image_idx), torch.cat(boxes)
    scores, labels = torch.cat(scores), torch.cat(labels)

    # Class-aware NMS within each image: one NMS group per (image, class) pair.
    num_classes = cls_logits.shape[2]
    keep = batched_nms(boxes, scores, image_idx * num_classes + labels, nms_thresh)  # by decreasing score
    # The best `detections_per_img` per image: a stable sort by image keeps the score order inside each.
    keep = keep[torch.sort(image_idx[keep], stable=True).indices]
    kept_images = image_idx[keep]
    counts = torch.bincount(kept_images, minlength=B)
    first = torch.cumsum(counts, 0) - counts  # where each image's run starts
    rank = torch.arange(keep.numel(), device=keep.device) - first[kept_images]
    keep = keep[rank < detections_per_img]
    kept_images = image_idx[keep]
    counts = torch.bincount(kept_images, minlength=B).tolist()
    return [
        {"boxes": b, "scores": s, "labels": lab}
        for b, s, lab in zip(boxes[keep].split(counts), scores[keep].split(counts), labels[keep].split(counts))
    ]
