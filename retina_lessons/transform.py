"""Preprocessing: resize, normalise and pad a list of images into one batch; map boxes back.

Reproduces torchvision's ``GeneralizedRCNNTransform``: each image is resized (bilinear) so that its
shorter side becomes ``min_size`` unless its longer side would then exceed ``max_size``; normalised with
the ImageNet mean and std; and the batch is zero-padded at the bottom and right to a multiple of
``size_divisible`` (32, the stride of C5). Detections are computed on the resized image and mapped
back to each image's own pixels.

Taught in ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .boxes import resize_boxes


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """The factor that makes the shorter side `min_size`, unless the longer side would exceed `max_size`."""
    return min(min_size / min(height, width), max_size / max(height, width))


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The (H', W') an image of (height, width) is resized to, as torchvision's transform does."""
    scale = resize_scale(height, width, min_size, max_size)
    return math.floor(height * scale), math.floor(width * scale)


def check_resizable(images: Sequence[Tensor], min_size: int, max_size: int, name: str = "images") -> None:
    """ValueError naming the image whose resize would leave a side of zero pixels (a very thin strip)."""
    for i, image in enumerate(images):
        height, width = image.shape[-2:]
        if min(resized_size(height, width, min_size, max_size)) < 1:
            longest = max_size * min(height, width) / max(height, width)
            raise ValueError(
                f"{name}[{i}] has size {height}x{width} (H x W): resized to at most {max_size} pixels on its longer "
                f"side, its shorter side becomes {longest:.2f} pixels; expected a shorter side of at least "
                f"{math.ceil(max(height, width) / max_size)} pixels (longer / shorter side at most {max_size})")


def resize_image(image: Tensor, min_size: int, max_size: int) -> Tensor:
    """(3, H, W) -> (3, H', W') with the shorter side min_size (longer side at most max_size)."""
    height, width = image.shape[-2:]
    scale = resize_scale(height, width, min_size, max_size)
    if resized_size(height, width, min_size, max_size) == (height, width):
        return image  # the size would not change: bilinear resampling at scale 1 is the identity
    return F.interpolate(image[None], scale_factor=scale, mode="bilinear",
                         recompute_scale_factor=True, align_corners=False)[0]


def normalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    mean_t = torch.as_tensor(mean, dtype=image.dtype, device=image.device)
    std_t = torch.as_tensor(std, dtype=image.dtype, device=image.device)
    return (image - mean_t[:, None, None]) / std_t[:, None, None]


def pad_batch(images: list[Tensor], size_divisible: int = 32) -> Tensor:
    """Zero-pad images of different sizes into one (B, 3, H, W) batch, H and W multiples of size_divisible."""
    height = max(image.shape[-2] for image in images)
    width = max(image.shape[-1] for image in images)
    height = int(math.ceil(height / size_divisible) * size_divisible)
    width = int(math.ceil(width / size_divisible) * size_divisible)
    batch = images[0].new_zeros((len(images), 3, height, width))
    for i, image in enumerate(images):
        batch[i, :, : image.shape[-2], : image.shape[-1]].copy_(image)
    return batch


def preprocess(images: list[Tensor], targets: list[dict] | None = None, *, min_size: int = 800,
               max_size: int = 1333, image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225),
               size_divisible: int = 32) -> tuple[Tensor, list[tuple[int, int]], list[dict] | None]:
    """Images (and their targets) -> (batch (B, 3, H, W), resized sizes [(H_i, W_i)], resized targets).

    Images must be floating point in [0, 1] (as torchvision's transform requires): an integer image would
    be normalised to nonsense.
    """
    for i, image in enumerate(images):
        if not image.is_floating_point():
            raise ValueError(f"images[{i}]: expected a floating-point image in [0, 1], got dtype {image.dtype}; "
                             "convert it with image.float() / 255")
    check_resizable(images, min_size, max_size)
    resized, sizes, new_targets = [], [], []
    for i, image in enumerate(images):
        image = normalize(image, image_mean, image_std)
        original = tuple(image.shape[-2:])
        image = resize_image(image, min_size, max_size)
        resized.append(image)
        sizes.append(tuple(image.shape[-2:]))
        if targets is not None:
            target = dict(targets[i])
            if sizes[-1] != original:
                target["boxes"] = resize_boxes(target["boxes"], original, sizes[-1])
            new_targets.append(target)
    return pad_batch(resized, size_divisible), sizes, new_targets if targets is not None else None


def postprocess_boxes(detections: list[dict], image_sizes: list[tuple[int, int]],
                      original_sizes: list[tuple[int, int]]) -> list[dict]:
    """Map each image's detected boxes from the resized image back to its original pixels."""
    out = []
    for detection, size, original in zip(detections, image_sizes, original_sizes):
        detection = dict(detection)
        if tuple(size) != tuple(original):
            detection["boxes"] = resize_boxes(detection["boxes"], size, original)
        out.append(detection)
    return out
