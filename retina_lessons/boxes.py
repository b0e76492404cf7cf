"""Box geometry: area, intersection over union, clipping, resizing.

Boxes are (N, 4) tensors of pixel coordinates in xyxy format, 0 <= x1 < x2 <= W.
Taught in ``notebooks/05_matching_and_box_coding.ipynb``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def upcast(boxes: Tensor) -> Tensor:
    """Boxes in a type whose products do not overflow, as torchvision's ``_upcast``: float16 and
    bfloat16 to float32 (areas above 65,504 are inf in float16), small integer types to int32."""
    if boxes.is_floating_point():
        return boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()
    return boxes if boxes.dtype in (torch.int32, torch.int64) else boxes.int()


def box_area(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (...) areas (computed in float32 for half-precision boxes, as torchvision does)."""
    boxes = upcast(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of every pair: (..., N, 4) and (..., M, 4) -> (..., N, M).

    Leading dimensions broadcast, so a batch of ground truth (B, M, 4) against shared anchors
    (N, 4) gives (B, M, N) in one call. Same arithmetic as `torchvision.ops.box_iou`, including its
    upcast: half-precision boxes give float32 IoUs, integer boxes float ones.
    """
    boxes1, boxes2 = upcast(boxes1), upcast(boxes2)
    area1 = box_area(boxes1)  # (..., N)
    area2 = box_area(boxes2)  # (..., M)
    top_left = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # (..., N, M, 2)
    bottom_right = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)  # no overlap -> 0, never negative
    inter = wh[..., 0] * wh[..., 1]  # (..., N, M)
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter / union


def clip_boxes_to_image(boxes: Tensor, image_size: tuple[int, int] | Tensor) -> Tensor:
    """Clamp xyxy boxes to an image of size (H, W); `image_size` may be a (..., 2) tensor per box group."""
    if isinstance(image_size, Tensor):
        height = image_size[..., 0, None].to(boxes.dtype)
        width = image_size[..., 1, None].to(boxes.dtype)
        x = boxes[..., 0::2].clamp(min=0).minimum(width)
        y = boxes[..., 1::2].clamp(min=0).minimum(height)
    else:
        height, width = image_size
        x = boxes[..., 0::2].clamp(min=0, max=width)
        y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def resize_boxes(boxes: Tensor, original_size: tuple[int, int], new_size: tuple[int, int]) -> Tensor:
    """Scale xyxy boxes from an image of `original_size` (H, W) to one of `new_size`."""
    ratio_h = torch.tensor(new_size[0], dtype=torch.float32) / torch.tensor(original_size[0], dtype=torch.float32)
    ratio_w = torch.tensor(new_size[1], dtype=torch.float32) / torch.tensor(original_size[1], dtype=torch.float32)
    scale = torch.stack((ratio_w, ratio_h, ratio_w, ratio_h)).to(boxes.device)
    return boxes * scale
