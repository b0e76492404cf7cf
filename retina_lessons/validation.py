"""Checks at the package's boundary: bad input raises a ValueError that names the argument.

Each check names the argument and the item (``images[2]``, ``targets[0]['boxes'][3]``), the value
and what was expected, and runs before any work is done. What is legitimate just works: an image
without boxes, boxes and labels from NumPy or of any real or integer dtype (cast, as documented
below), an image of another floating dtype than the model's (converted). Nothing malformed is
skipped.

- images: (3, H, W) floating point, finite; integer images are refused with the fix (``/ 255``);
  values far outside [0, 1] (e.g. 0..255) get one warning per call;
- boxes: (M, 4) xyxy, finite, x1 < x2 and y1 < y2, cast to the images' dtype; with the image size
  known, a box that lies wholly outside its image is refused (it would silently vanish from the loss)
  and one that crosses the border is clipped to it;
- labels: (M,) integral values in [0, K), cast to int64 (``2.0`` is accepted, ``2.5`` is not).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor

# Pixel values beyond these are taken for an image that was not scaled to [0, 1] (e.g. 0..255):
# a normalised photo stays within [0, 1]; a little over- or undershoot from resampling is fine.
IMAGE_RANGE_SLACK = (-0.5, 1.5)


# ----------------------------------------------------------------------------- settings (numbers)


def is_real(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_int(name: str, value, low: int, high: int | None = None) -> None:
    """An integer (not a bool) in [low, high] (no upper bound without `high`)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None and value > high):
        expected = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise ValueError(f"{name}={value!r}: expected {expected}")


def check_number(name: str, value, low: float, high: float, expected: str, *, low_open: bool = False,
                  high_open: bool = False) -> None:
    """A real number in the range (NaN never is)."""
    ok = is_real(value) and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name}={value!r}: expected {expected}")


def check_iou_thresholds(fg_iou, bg_iou) -> None:
    """The matcher's thresholds: IoUs with 0 <= bg_iou <= fg_iou <= 1, naming the offending one."""
    check_number("fg_iou", fg_iou, 0.0, 1.0, "an IoU in [0, 1]")
    check_number("bg_iou", bg_iou, 0.0, 1.0, "an IoU in [0, 1]")
    if bg_iou > fg_iou:
        raise ValueError(f"bg_iou={bg_iou!r} > fg_iou={fg_iou!r}: expected 0 <= bg_iou <= fg_iou <= 1")


def check_numbers(name: str, values, length: int | None, expected: str, positive: bool = True) -> None:
    """A tuple or list of finite real numbers (positive ones by default), of `length` if given."""
    ok = (isinstance(values, (tuple, list)) and len(values) > 0 and (length is None or len(values) == length)
          and all(is_real(v) and math.isfinite(v) and (v > 0 or not positive) for v in values))
    if not ok:
        raise ValueError(f"{name}={values!r}: expected {expected}")


# ----------------------------------------------------------------------------- images and targets


def _describe(value: object) -> str:
    if isinstance(value, (Tensor, np.ndarray)):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def check_image(image: object, name: str = "image", dtype: torch.dtype | None = None) -> Tensor:
    """An image must be a finite floating-point tensor of shape (3, H, W) with H, W >= 1.

    With `dtype`, a floating image of another dtype (e.g. float64) is converted to it.
    """
    if not isinstance(image, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape (3, H, W), got {_describe(image)}")
    if image.dim() != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"{name}: expected shape (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point image in [0, 1], got dtype {image.dtype}; "
                         "convert it with image.float() / 255")
    finite = torch.isfinite(image)
    if not finite.all():
        bad = int((~finite).sum())
        channel, row, col = (int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"{name}: {bad} non-finite pixel values (NaN or inf), the first at channel {channel}, "
                         f"row {row}, column {col}: expected finite values in [0, 1]")
    if dtype is not None and image.dtype != dtype:
        image = image.to(dtype)
    return image


def _warn_if_unscaled(images: Sequence[Tensor], name: str) -> None:
    low, high = IMAGE_RANGE_SLACK
    for i, image in enumerate(images):
        lo, hi = float(image.min()), float(image.max())
        if lo < low or hi > high:
            scale = " (divide by 255)" if hi > 2 else ""
            warnings.warn(f"{name}[{i}] has values in [{lo:g}, {hi:g}]: expected an image scaled to [0, 1]{scale}",
                          UserWarning, stacklevel=3)
            return  # once per call


def check_images(images: object, name: str = "images", dtype: torch.dtype | None = None) -> list[Tensor]:
    """A non-empty list (or tuple) of (3, H, W) float images, possibly of different sizes.

    With `dtype`, images of another floating dtype are converted to it. Values far outside [0, 1]
    give one warning (they are used as they are).
    """
    if isinstance(images, Tensor):
        raise ValueError(f"{name}: expected a list of (3, H, W) tensors, got one tensor of shape {tuple(images.shape)}")
    if not isinstance(images, Sequence) or isinstance(images, str) or len(images) == 0:
        raise ValueError(f"{name}: expected a non-empty list of (3, H, W) float tensors, got {images!r:.80}")
    checked = [check_image(image, f"{name}[{i}]", dtype) for i, image in enumerate(images)]
    _warn_if_unscaled(checked, name)
    return checked


def _as_tensor(value: object, name: str, what: str) -> Tensor:
    """A tensor from a tensor, a NumPy array or a (nested) list of numbers."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError as error:
            raise ValueError(f"{name}: expected {what}, got a ragged {type(value).__name__}") from error
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected {what} of numbers, got {type(value).__name__} of dtype {array.dtype}")
        return torch.from_numpy(np.ascontiguousarray(array))
    raise ValueError(f"{name}: expected {what}, got {_describe(value)}")


def check_boxes(boxes: object, name: str = "boxes", image_size: tuple[int, int] | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """Boxes: (M, 4) finite xyxy with x1 < x2 and y1 < y2 (M may be 0) -> a `dtype` tensor.

    Tensors, NumPy arrays and lists of any real or integer dtype are accepted and cast; an empty
    (0,) input counts as no boxes. With `image_size` (H, W), a box wholly outside the image is
    refused and a box that crosses its border is clipped to it.
    """
    boxes = _as_tensor(boxes, name, "a tensor of shape (M, 4)")
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise ValueError(f"{name}: expected real xyxy coordinates, got dtype {boxes.dtype}")
    if boxes.dim() == 1 and boxes.numel() == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (M, 4) of xyxy boxes, got {tuple(boxes.shape)}")
    boxes = boxes.to(dtype)
    if not torch.isfinite(boxes).all():
        row = int((~torch.isfinite(boxes)).any(dim=1).nonzero()[0])
        raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: expected finite coordinates")
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if degenerate.any():
        row = int(degenerate.nonzero()[0])
        raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: expected x1 < x2 and y1 < y2 (xyxy format)")
    if image_size is not None:
        height, width = image_size
        outside = (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0) | (boxes[:, 0] >= width) | (boxes[:, 1] >= height)
        if outside.any():
            row = int(outside.nonzero()[0])
            raise ValueError(f"{name}[{row}] = {boxes[row].tolist()}: the box lies wholly outside the "
                             f"{width}x{height} image (W x H); expected xyxy pixel coordinates inside it")
        crossing = (boxes[:, :2] < 0).any(dim=1) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
        if crossing.any():
            from .boxes import clip_boxes_to_image

            boxes = clip_boxes_to_image(boxes, (height, width))
    return boxes


def check_labels(labels: object, num_classes: int, num_boxes: int, name: str = "labels") -> Tensor:
    """Labels: (M,) integral class indices in [0, num_classes) -> an int64 tensor.

    Tensors, NumPy arrays and lists of integers, or of floats with integral values, are accepted.
    """
    labels = _as_tensor(labels, name, f"class indices of shape ({num_boxes},)")
    if labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"{name}: expected integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != num_boxes:
        raise ValueError(f"{name}: expected shape ({num_boxes},) (one label per box), got {tuple(labels.shape)}")
    if labels.is_floating_point():
        fractional = ~torch.isfinite(labels) | (labels != labels.round())
        if fractional.any():
            row = int(fractional.nonzero()[0])
            raise ValueError(f"{name}[{row}] = {labels[row].item()}: expected an integer class index in "
                             f"[0, {num_classes})")
    labels = labels.to(torch.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"{name}[{row}] = {int(labels[row])}: expected a class index in [0, {num_classes})")
    return labels


def check_targets(targets: object, num_images: int, num_classes: int, name: str = "targets",
                  image_sizes: Sequence[tuple[int, int]] | None = None,
                  dtype: torch.dtype = torch.float32) -> list[dict]:
    """One dict per image with `boxes` (M, 4) xyxy and `labels` (M,); M may be 0.

    Returns new dicts (the inputs are not changed) with `boxes` cast to `dtype` (clipped to the
    image where `image_sizes` is given) and `labels` to int64; other keys are kept.
    """
    if not isinstance(targets, Sequence) or isinstance(targets, (str, Tensor)):
        raise ValueError(f"{name}: expected a list of dicts with 'boxes' and 'labels', got {type(targets).__name__}")
    if len(targets) != num_images:
        raise ValueError(f"{name}: expected one target per image ({num_images}), got {len(targets)}")
    checked = []
    for i, target in enumerate(targets):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"{name}[{i}]: expected a dict with keys 'boxes' and 'labels', got {target!r:.80}")
        size = None if image_sizes is None else image_sizes[i]
        boxes = check_boxes(target["boxes"], f"{name}[{i}]['boxes']", size, dtype)
        labels = check_labels(target["labels"], num_classes, boxes.shape[0], f"{name}[{i}]['labels']")
        checked.append({**target, "boxes": boxes, "labels": labels})
    return checked
