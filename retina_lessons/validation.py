"""Checks at the package's boundary: bad input raises a ValueError that names the argument.

An image with no boxes is legitimate and passes; everything malformed is refused, never skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_image(image: object, name: str = "image") -> Tensor:
    """An image must be a float tensor of shape (3, H, W) with H, W >= 1."""
    if not isinstance(image, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape (3, H, W), got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"{name}: expected shape (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point image in [0, 1], got dtype {image.dtype}")
    return image


def check_images(images: object, name: str = "images") -> list[Tensor]:
    """A non-empty list (or tuple) of (3, H, W) float images, possibly of different sizes."""
    if isinstance(images, Tensor):
        raise ValueError(f"{name}: expected a list of (3, H, W) tensors, got one tensor of shape {tuple(images.shape)}")
    if not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError(f"{name}: expected a non-empty list of (3, H, W) float tensors, got {images!r:.80}")
    return [check_image(image, f"{name}[{i}]") for i, image in enumerate(images)]


def check_boxes(boxes: object, name: str = "boxes", image_size: tuple[int, int] | None = None) -> Tensor:
    """Boxes must be a float (M, 4) tensor of finite xyxy with x1 < x2 and y1 < y2 (M may be 0)."""
    if not isinstance(boxes, Tensor):
        raise ValueError(f"{name}: expected a float tensor of shape (M, 4), got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (M, 4) of xyxy boxes, got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {boxes.dtype}")
    if not torch.isfinite(boxes).all():
        row = int((~torch.isfinite(boxes)).any(dim=1).nonzero()[0])
        raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: expected finite coordinates")
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if degenerate.any():
        row = int(degenerate.nonzero()[0])
        raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: expected x1 < x2 and y1 < y2 (xyxy format)")
    if image_size is not None:
        height, width = image_size
        outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
        if outside.any():
            row = int(outside.nonzero()[0])
            raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: expected a box inside the {width}x{height} image")
    return boxes


def check_labels(labels: object, num_classes: int, num_boxes: int, name: str = "labels") -> Tensor:
    """Labels must be an integer (M,) tensor with values in [0, num_classes)."""
    if not isinstance(labels, Tensor):
        raise ValueError(f"{name}: expected an int64 tensor of shape ({num_boxes},), got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != num_boxes:
        raise ValueError(f"{name}: expected shape ({num_boxes},) (one label per box), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer class indices, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"{name}[{row}] = {int(labels[row])}: expected a class index in [0, {num_classes})")
    return labels


def check_targets(targets: object, num_images: int, num_classes: int, name: str = "targets") -> list[dict]:
    """One dict per image with `boxes` (M, 4) xyxy and `labels` (M,); M may be 0."""
    if not isinstance(targets, Sequence) or isinstance(targets, (str, Tensor)):
        raise ValueError(f"{name}: expected a list of dicts with 'boxes' and 'labels', got {type(targets).__name__}")
    if len(targets) != num_images:
        raise ValueError(f"{name}: expected one target per image ({num_images}), got {len(targets)}")
    for i, target in enumerate(targets):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"{name}[{i}]: expected a dict with keys 'boxes' and 'labels', got {target!r:.80}")
        boxes = check_boxes(target["boxes"], f"{name}[{i}]['boxes']")
        check_labels(target["labels"], num_classes, boxes.shape[0], f"{name}[{i}]['labels']")
    return list(targets)
