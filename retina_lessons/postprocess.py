"""Inference: from raw head outputs to detections, for the whole batch at once.

Paper, Section 4.1 ("Inference"): to keep inference fast, each pyramid level keeps at most its 1000
top-scoring box predictions after thresholding the detector confidence at 0.05; the boxes are
decoded, the predictions of all levels merged, and non-maximum suppression with threshold 0.5 is
applied per class. torchvision keeps 300 detections per image, the paper 100.

Two building blocks, composed by :func:`detections_from_outputs` (and used apart by the predictions
explorer, which decodes once and suppresses again for every NMS threshold):

1. :func:`decode_candidates`: per level, threshold, top-k, decode and clip, for the whole batch;
2. :func:`suppress`: class-aware NMS within each image, then the best `detections_per_img` of each.

Taught in ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

from typing import NamedTuple

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


class Candidates(NamedTuple):
    """A batch's decoded candidates before NMS, flat over the images; C candidates in all."""

    image_idx: Tensor  # (C,) int64: the image each candidate belongs to
    boxes: Tensor  # (C, 4) xyxy in the resized image's pixels, clipped to it
    scores: Tensor  # (C,)
    labels: Tensor  # (C,) int64


def decode_candidates(cls_logits: Tensor, box_deltas: Tensor, anchors_xyxy: Tensor,
                      num_anchors_per_level: list[int], image_sizes: list[tuple[int, int]], *,
                      score_thresh: float = 0.05, topk_candidates: int = 1000, box_weights=TORCHVISION_WEIGHTS,
                      box_delta_clamp: float = BOX_DELTA_CLAMP) -> Candidates:
    """The first half of postprocessing: per level, threshold, top-k, decode and clip.

    cls_logits (B, N, K), box_deltas (B, N, 4), anchors (N, 4) -> `Candidates`, level by level (the
    candidates of level 0 of every image, then level 1, ...). Each image keeps at most
    `topk_candidates` per level of its (anchor, class) pairs scored above `score_thresh`; a
    candidate's box is decoded from its anchor and clipped to its image's (H, W) in `image_sizes`.
    """
    sizes = torch.as_tensor(image_sizes, device=cls_logits.device)  # (B, 2) as (H, W)
    image_idx, boxes, scores, labels = [], [], [], []
    start = 0
    for num in num_anchors_per_level:  # a loop over the 5 levels, never over images or anchors
        level = slice(start, start + num)
        start += num
        img, anchor, label, score = top_candidates(cls_logits[:, level], score_thresh, topk_candidates)
        decoded = decode_boxes(box_deltas[:, level][img, anchor], anchors_xyxy[level][anchor],
                               box_weights, box_delta_clamp)  # (C_l, 4)
        boxes.append(clip_boxes_to_image(decoded, sizes[img]))
        image_idx.append(img)
        scores.append(score)
        labels.append(label)
    return Candidates(torch.cat(image_idx), torch.cat(boxes), torch.cat(scores), torch.cat(labels))


def suppress(candidates: Candidates, num_images: int, num_classes: int, *, nms_thresh: float = 0.5,
             detections_per_img: int = 300) -> list[dict[str, Tensor]]:
    """The second half of postprocessing: class-aware NMS within each image, then the best of each.

    One NMS group per (image, class) pair, with IoU threshold `nms_thresh` (a box overlapping a
    better-scored box of its group by more is dropped); each of the `num_images` images then keeps
    its `detections_per_img` best. Labels lie in [0, num_classes). Returns one dict per image:
    `boxes` (D, 4), `scores` (D,), `labels` (D,), sorted by decreasing score.
    """
    image_idx, boxes, scores, labels = candidates
    keep = batched_nms(boxes, scores, image_idx * num_classes + labels, nms_thresh)  # by decreasing score
    # The best `detections_per_img` per image: a stable sort by image keeps the score order inside each.
    keep = keep[torch.sort(image_idx[keep], stable=True).indices]
    kept_images = image_idx[keep]
    counts = torch.bincount(kept_images, minlength=num_images)
    first = torch.cumsum(counts, 0) - counts  # where each image's run starts
    rank = torch.arange(keep.numel(), device=keep.device) - first[kept_images]
    keep = keep[rank < detections_per_img]
    counts = torch.bincount(image_idx[keep], minlength=num_images).tolist()
    return [
        {"boxes": b, "scores": s, "labels": lab}
        for b, s, lab in zip(boxes[keep].split(counts), scores[keep].split(counts), labels[keep].split(counts))
    ]


def detections_from_outputs(cls_logits: Tensor, box_deltas: Tensor, anchors_xyxy: Tensor,
                            num_anchors_per_level: list[int], image_sizes: list[tuple[int, int]], *,
                            score_thresh: float = 0.05, topk_candidates: int = 1000, nms_thresh: float = 0.5,
                            detections_per_img: int = 300, box_weights=TORCHVISION_WEIGHTS,
                            box_delta_clamp: float = BOX_DELTA_CLAMP) -> list[dict[str, Tensor]]:
    """cls_logits (B, N, K), box_deltas (B, N, 4), anchors (N, 4) -> one dict per image.

    Each dict holds `boxes` (D, 4) xyxy in the resized image's pixels, `scores` (D,), `labels` (D,),
    sorted by decreasing score, D <= detections_per_img: :func:`decode_candidates`, then :func:`suppress`.
    """
    B, _, K = cls_logits.shape
    candidates = decode_candidates(cls_logits, box_deltas, anchors_xyxy, num_anchors_per_level, image_sizes,
                                   score_thresh=score_thresh, topk_candidates=topk_candidates,
                                   box_weights=box_weights, box_delta_clamp=box_delta_clamp)
    return suppress(candidates, B, K, nms_thresh=nms_thresh, detections_per_img=detections_per_img)
