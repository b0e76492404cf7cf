"""Anchors: A = scales x ratios boxes at every location of every pyramid level.

Paper, Section 4 ("Anchors"): on P3..P7 the anchors have areas 32^2 .. 512^2; at each level three
aspect ratios {1:2, 1:1, 2:1} and three scales {2^0, 2^(1/3), 2^(2/3)}, so A = 9 anchors per location,
covering 32 to 813 pixels.

Two conventions are implemented:

- ``"torchvision"`` (reproduces ``torchvision.models.detection.AnchorGenerator`` exactly): sizes
  truncated to integers (``int(32 * 2 ** (1/3)) = 40``), base anchors rounded to whole pixels,
  anchor centres at ``(x * stride, y * stride)`` (the cell's top-left corner) and the stride taken
  as ``image_size // grid_size`` of the padded batch.
- ``"centered"``: exact sizes, no rounding, centres at the middle of each cell
  (``(x + 0.5) * stride``) with stride ``2 ** level``.

Order, as the heads produce their outputs: level by level, then location (row y, column x), then the
A anchors (ratio-major, then scale). Taught in ``notebooks/04_anchors.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

FIRST_LEVEL = 3  # P3 has stride 2**3 = 8


def level_sizes(base_size: float, scales: Sequence[float], convention: str = "torchvision") -> list[float]:
    """The anchor sizes (square roots of areas) of one level: base_size times each scale."""
    if convention == "torchvision":
        return [float(int(base_size * scale)) for scale in scales]  # torchvision truncates
    return [base_size * scale for scale in scales]


def base_anchors(sizes: Sequence[float], ratios: Sequence[float], round_to_pixels: bool = True,
                 dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """The A anchors of one level centred at (0, 0): (len(ratios) * len(sizes), 4) xyxy.

    A ratio r = h / w keeps the area: h = size * sqrt(r), w = size / sqrt(r).
    """
    sizes_t = torch.as_tensor(sizes, dtype=dtype, device=device)
    ratios_t = torch.as_tensor(ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(ratios_t)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * sizes_t[None, :]).view(-1)  # (A,) ratio-major, then size
    hs = (h_ratios[:, None] * sizes_t[None, :]).view(-1)
    anchors = torch.stack([-ws, -hs, ws, hs], dim=1) / 2
    return anchors.round() if round_to_pixels else anchors


def grid_anchors(base: Tensor, grid_size: tuple[int, int], stride: tuple[float, float],
                 offset: float = 0.0) -> Tensor:
    """Every base anchor at every location of an H x W grid: (H * W * A, 4), row-major, then anchor."""
    grid_h, grid_w = grid_size
    stride_h, stride_w = stride
    shifts_x = (torch.arange(grid_w, dtype=torch.int32, device=base.device) + offset) * stride_w
    shifts_y = (torch.arange(grid_h, dtype=torch.int32, device=base.device) + offset) * stride_h
    shift_y, shift_x = torch.meshgrid(shifts_y.to(base.dtype), shifts_x.to(base.dtype), indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)  # (H*W, 4)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # (H*W*A, 4)


def feature_sizes(image_size: tuple[int, int], num_levels: int = 5) -> list[tuple[int, int]]:
    """Grid sizes of P3.. for a (padded) image: every stride-2 layer maps n to ceil(n / 2)."""
    height, width = image_size
    sizes = []
    for level in range(FIRST_LEVEL, FIRST_LEVEL + num_levels):
        factor = 2**level
        sizes.append((math.ceil(height / factor), math.ceil(width / factor)))
    return sizes


class AnchorGenerator:
    """All anchors of an image, level after level; cached per (image size, grid sizes, dtype, device)."""

    def __init__(self, sizes: Sequence[float] = (32, 64, 128, 256, 512),
                 scales: Sequence[float] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3)),
                 ratios: Sequence[float] = (0.5, 1.0, 2.0), convention: str = "torchvision") -> None:
        if convention not in ("torchvision", "centered"):
            raise ValueError(f"convention={convention!r}: expected 'torchvision' or 'centered'")
        if len(sizes) == 0 or min(sizes) <= 0:
            raise ValueError(f"sizes={tuple(sizes)}: expected one positive base size per level")
        if len(scales) == 0 or min(scales) <= 0 or len(ratios) == 0 or min(ratios) <= 0:
            raise ValueError(f"scales={tuple(scales)}, ratios={tuple(ratios)}: expected positive values")
        self.sizes = tuple(sizes)
        self.scales = tuple(scales)
        self.ratios = tuple(ratios)
        self.convention = convention
        self._cache: dict[tuple, Tensor] = {}

    @property
    def num_anchors(self) -> int:
        """A: anchors per location."""
        return len(self.scales) * len(self.ratios)

    @property
    def num_levels(self) -> int:
        return len(self.sizes)

    def level_base_anchors(self, level_index: int, dtype=torch.float32, device=None) -> Tensor:
        sizes = level_sizes(self.sizes[level_index], self.scales, self.convention)
        return base_anchors(sizes, self.ratios, self.convention == "torchvision", dtype, device)

    def strides(self, image_size: tuple[int, int], grid_sizes: Sequence[tuple[int, int]]) -> list[tuple[float, float]]:
        if self.convention == "torchvision":  # as torchvision: integer division of the padded size
            return [(image_size[0] // h, image_size[1] // w) for h, w in grid_sizes]
        return [(2 ** (FIRST_LEVEL + i),) * 2 for i in range(len(grid_sizes))]

    def per_level(self, image_size: tuple[int, int], grid_sizes: Sequence[tuple[int, int]] | None = None,
                  dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> list[Tensor]:
        """One (H_l * W_l * A, 4) tensor per level for a padded batch of `image_size` (H, W)."""
        if grid_sizes is None:
            grid_sizes = feature_sizes(image_size, self.num_levels)
        grid_sizes = [tuple(int(v) for v in g) for g in grid_sizes]
        if len(grid_sizes) != self.num_levels:
            raise ValueError(f"grid_sizes: expected {self.num_levels} levels, got {len(grid_sizes)}")
        offset = 0.0 if self.convention == "torchvision" else 0.5
        strides = self.strides(image_size, grid_sizes)
        return [
            grid_anchors(self.level_base_anchors(i, dtype, device), grid, stride, offset)
            for i, (grid, stride) in enumerate(zip(grid_sizes, strides))
        ]

    def __call__(self, image_size: tuple[int, int], grid_sizes: Sequence[tuple[int, int]] | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
        """All anchors (N, 4) xyxy for a padded batch of `image_size` (H, W), cached."""
        image_size = (int(image_size[0]), int(image_size[1]))
        if grid_sizes is None:
            grid_sizes = feature_sizes(image_size, self.num_levels)
        key = (image_size, tuple(tuple(int(v) for v in g) for g in grid_sizes), dtype, str(device))
        if key not in self._cache:
            self._cache[key] = torch.cat(self.per_level(image_size, grid_sizes, dtype, device))
        return self._cache[key]
