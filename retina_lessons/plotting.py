"""Drawing helpers shared by the lessons: images, boxes and feature maps, with labelled axes.

Every function is a plain function of its arguments (no widgets, no global state), draws on the
matplotlib ``Axes`` it is given and returns what it drew, so a notebook cell or an explorer's slider
can call it and a test can check it. Coordinates are image pixels throughout: a feature map of stride
s is drawn over ``[0, W * s] x [0, H * s]``, so maps of different levels line up with the photo.

First used in ``notebooks/01_resnet_taps.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor


def to_display(image: Tensor) -> np.ndarray:
    """A float image (3, H, W) in [0, 1] -> an (H, W, 3) NumPy array for ``imshow`` (clipped to [0, 1])."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected shape (3, H, W), got {tuple(image.shape)}")
    return image.detach().to("cpu", torch.float32).clamp(0, 1).permute(1, 2, 0).numpy()


def show_image(ax: Axes, image: Tensor, title: str | None = None, size: tuple[int, int] | None = None) -> Axes:
    """Draw a (3, H, W) image in pixel coordinates, axes labelled in pixels.

    With ``size=(H', W')`` the image is drawn stretched over [0, W'] x [0, H']: the coordinates of the image
    resized to that size (e.g. as the detector sees it), without resampling it.
    """
    height, width = size if size is not None else image.shape[-2:]
    ax.imshow(to_display(image), extent=(0, width, height, 0))
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    if title is not None:
        ax.set_title(title)
    return ax


def draw_boxes(ax: Axes, boxes: Tensor, labels: Sequence[str] | None = None, color: str = "yellow",
               linewidth: float = 2.0, fontsize: float = 8.0) -> list[Rectangle]:
    """Draw (M, 4) xyxy boxes (pixels) as rectangles, with an optional text label at each top-left corner."""
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes: expected shape (M, 4) in xyxy, got {tuple(boxes.shape)}")
    if labels is not None and len(labels) != boxes.shape[0]:
        raise ValueError(f"labels: expected {boxes.shape[0]} labels, one per box, got {len(labels)}")
    patches = []
    for i, (x1, y1, x2, y2) in enumerate(boxes.detach().cpu().tolist()):
        rect = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=linewidth)
        ax.add_patch(rect)
        patches.append(rect)
        if labels is not None:
            ax.text(x1, y1, labels[i], color="black", fontsize=fontsize, va="bottom",
                    bbox={"facecolor": color, "edgecolor": "none", "pad": 1.0})
    return patches


DETECTION_COLOURS = ("#56B4E9", "#E69F00", "#CC79A7", "#009E73", "#F0E442", "#0072B2", "#D55E00")  # Okabe-Ito


def draw_detections(ax: Axes, boxes: Tensor, scores: Tensor, labels: Tensor, class_names: Sequence[str],
                    colors: Sequence[str] = DETECTION_COLOURS, linewidth: float = 2.0,
                    fontsize: float = 8.0) -> list[Rectangle]:
    """Draw detections (D, 4) xyxy with a colour per class and a "name score" label, e.g. "circle 0.93".

    ``labels`` (D,) index ``class_names``; class k gets ``colors[k % len(colors)]``. Returns the rectangles.
    """
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f"boxes, scores, labels: expected one of each per detection, got {len(boxes)}, "
                         f"{len(scores)}, {len(labels)}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(class_names):
        raise ValueError(f"labels: expected class indices in [0, {len(class_names)}), got {labels.tolist()}")
    patches = []
    for k in sorted(set(labels.tolist())):
        is_k = labels == k
        texts = [f"{class_names[k]} {s:.2f}" for s in scores[is_k].tolist()]
        patches += draw_boxes(ax, boxes[is_k].reshape(-1, 4), texts, color=colors[k % len(colors)],
                              linewidth=linewidth, fontsize=fontsize)
    return patches


def normalize_map(feature_map: Tensor) -> Tensor:
    """Scale one (H, W) map to [0, 1] by its own minimum and maximum (a constant map becomes all zeros)."""
    if feature_map.dim() != 2:
        raise ValueError(f"feature_map: expected shape (H, W), got {tuple(feature_map.shape)}")
    feature_map = feature_map.detach().to("cpu", torch.float32)
    low, high = feature_map.min(), feature_map.max()
    if high - low <= 0:
        return torch.zeros_like(feature_map)
    return (feature_map - low) / (high - low)


def show_map(ax: Axes, feature_map: Tensor, stride: float, cmap: str = "viridis", alpha: float = 1.0,
             title: str | None = None):
    """Draw one (H, W) map in image pixels: cell (y, x) covers [x * stride, (x + 1) * stride) and likewise in y.

    The map is min-max normalised first (`normalize_map`), so only its pattern is shown, not its scale.
    Returns the ``AxesImage``.
    """
    H, W = feature_map.shape[-2:]
    shown = ax.imshow(normalize_map(feature_map).numpy(), cmap=cmap, alpha=alpha, interpolation="nearest",
                      extent=(0, W * stride, H * stride, 0), vmin=0.0, vmax=1.0)
    ax.set_xlabel("x (image pixels)")
    ax.set_ylabel("y (image pixels)")
    if title is not None:
        ax.set_title(title)
    return shown


def feature_map_grid(maps: Sequence[Tensor], strides: Sequence[float], names: Sequence[str],
                     channels: Sequence[int] | Sequence[Sequence[int]] = (0, 1, 2),
                     panel_size: float = 2.6) -> Figure:
    """A figure with one column per level and one row per channel, every panel in image pixels.

    Args:
        maps: one (C, H, W) or (1, C, H, W) tensor per level.
        strides: the stride of each level (image pixels per map cell).
        names: a column title per level, e.g. "C3".
        channels: the channel indices drawn, one row each: the same for every level, or one list per level
            (of equal lengths). Each panel is labelled with its channel.
    """
    if not len(maps) == len(strides) == len(names):
        raise ValueError(f"maps, strides, names: expected equal lengths, got {len(maps)}, {len(strides)}, {len(names)}")
    maps = [m[0] if m.dim() == 4 else m for m in maps]
    per_level = [list(channels)] * len(maps) if isinstance(channels[0], int) else [list(c) for c in channels]
    if len(per_level) != len(maps) or len({len(c) for c in per_level}) != 1:
        raise ValueError(f"channels: expected one list of indices, or one list per level of equal lengths, got {channels}")
    num_rows = len(per_level[0])
    fig, axes = plt.subplots(num_rows, len(maps), figsize=(panel_size * len(maps), panel_size * num_rows),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    for col, (fmap, stride, name, level_channels) in enumerate(zip(maps, strides, names, per_level)):
        C, H, W = fmap.shape
        for row, channel in enumerate(level_channels):
            ax = axes[row, col]
            show_map(ax, fmap[channel], stride)
            ax.text(0.03, 0.97, f"channel {channel}", transform=ax.transAxes, va="top", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})
            if row == 0:
                ax.set_title(f"{name}: {H} x {W}, stride {stride:g}")
            if col != 0:
                ax.set_ylabel("")
            if row != num_rows - 1:
                ax.set_xlabel("")
    return fig
