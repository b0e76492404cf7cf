"""Block diagrams of the feature pyramid and of the two subnets, drawn from the real numbers.

The paper's Figure 3 draws RetinaNet as (a) a ResNet, (b) a feature pyramid on top of it and
(c, d) a class subnet and a box subnet attached to every pyramid level, with shapes such as
"W x H x 256" and "W x H x KA". These functions draw the same pictures with the shapes of a
concrete run: the notebook passes the channels and grid sizes it computed from its own tensors, so
the picture and the code cannot disagree. Shapes are written as channels x H x W, the order of the
lessons' (B, C, H, W) tensors.

- :func:`draw_fpn`: C3-C5 -> 1 x 1 laterals -> top-down upsample-and-add -> 3 x 3 output
  convolutions -> P3-P5; P6 from C5 (the paper) or from P5 (torchvision's v1 model), P7 from
  ReLU(P6). Taught in ``notebooks/02_feature_pyramid.ipynb``.
- :func:`draw_subnets`: every level P3-P7 into the same two subnets, four 3 x 3 convolutions with
  ReLU, then a 3 x 3 predictor with K·A (class, sigmoid) or 4·A (box) outputs, flattened to one row
  per anchor. Taught in ``notebooks/03_subnets.ipynb``.

Both are plain functions of their numbers that draw on a matplotlib ``Axes`` (a new figure when none
is given) and return it. Every box is a text artist with ``gid="box <name>"`` and every arrow an
annotation with ``gid="arrow <from>-><to>"``, so a test can find what was drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.text import Text

from .validation import check_int

LEVELS = (3, 4, 5, 6, 7)  # P3 ... P7
P6_SOURCES = {"c5": "C5", "p5": "P5"}  # the library's p6_from -> the map P6 is computed from

_BACKBONE_COLOUR = "#F4CCCC"
_PYRAMID_COLOUR = "#CFE2F3"
_MERGE_COLOUR = "#FFF2CC"
_CLASS_COLOUR = "#D9EAD3"
_BOX_COLOUR = "#EAD1DC"
_FONT = 8


def _check_grid_sizes(grid_sizes: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    sizes = [tuple(size) for size in grid_sizes]
    if len(sizes) != len(LEVELS) or any(len(size) != 2 for size in sizes):
        raise ValueError(f"grid_sizes={grid_sizes!r}: expected five (H, W) pairs, P3 to P7")
    for height, width in sizes:
        check_int("grid_sizes height", height, 1)
        check_int("grid_sizes width", width, 1)
    return sizes


def shape_label(channels: int, grid_size: Sequence[int]) -> str:
    """``"256 × 120 × 100"``: channels × H × W, as the diagrams write a feature map's shape."""
    height, width = grid_size
    return f"{channels} × {height} × {width}"


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _box(ax: Axes, x: float, y: float, text: str, name: str, colour: str, **kwargs) -> Text:
    return ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, gid=f"box {name}",
                   bbox={"boxstyle": "round,pad=0.35", "facecolor": colour, "edgecolor": "black"}, **kwargs)


def _arrow(ax: Axes, source: Text, target: Text, source_name: str, target_name: str,
           start: tuple[float, float] = (1.0, 0.5), end: tuple[float, float] = (0.0, 0.5),
           connectionstyle: str = "arc3", colour: str = "black") -> None:
    # From a point of the source box to a point of the target box, in fractions of each box's frame.
    # The frames (bbox patches) are placed when their texts are drawn, before the arrows (added later).
    arrow = ax.annotate("", xy=end, xycoords=target.get_bbox_patch(), xytext=start,
                        textcoords=source.get_bbox_patch(),
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2, "shrinkA": 0,
                                    "shrinkB": 0, "connectionstyle": connectionstyle})
    arrow.set_gid(f"arrow {source_name}->{target_name}")


def _note(ax: Axes, x: float, y: float, text: str, **kwargs) -> Text:
    kwargs.setdefault("color", "0.2")
    return ax.text(x, y, text, fontsize=_FONT - 0.5, gid="note", **kwargs)


def draw_fpn(in_channels: Sequence[int], out_channels: int, grid_sizes: Sequence[Sequence[int]],
             p6_from: str = "c5", ax: Axes | None = None) -> Axes:
    """Draw the feature pyramid (paper, Figure 3b) with the shapes of one run.

    Args:
        in_channels: the channels of C3, C4, C5 (e.g. (128, 256, 512) for ResNet-18).
        out_channels: C, the channels of every pyramid level (256 in the paper).
        grid_sizes: the (H, W) of P3, ..., P7 (C3-C5 have the grids of P3-P5).
        p6_from: ``"c5"`` (the paper, torchvision's v2) or ``"p5"`` (torchvision's v1): where the
            P6 arrow starts.
        ax: the axes to draw on; a new 9 x 5.6 inch figure when None.

    Returns:
        The axes, turned off, with one box per tensor and one arrow per operation.
    """
    in_channels = tuple(in_channels)
    if len(in_channels) != 3:
        raise ValueError(f"in_channels={in_channels!r}: expected the channels of C3, C4, C5 (three numbers)")
    for channels in in_channels:
        check_int("in_channels", channels, 1)
    check_int("out_channels", out_channels, 1)
    sizes = _check_grid_sizes(grid_sizes)
    if p6_from not in P6_SOURCES:
        raise ValueError(f"p6_from={p6_from!r}: expected 'c5' (the paper) or 'p5' (torchvision v1)")

    ax = _new_axes(ax, (9, 5.6))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 9.4)
    ax.set_axis_off()
    x_c, x_m, x_p = 1.3, 5.4, 9.9  # columns: backbone taps, merged maps, pyramid levels
    rows = {3: 0.8, 4: 2.7, 5: 4.6, 6: 6.5, 7: 8.4}
    boxes = {}
    for index, level in enumerate((3, 4, 5)):
        y = rows[level]
        boxes[f"C{level}"] = _box(ax, x_c, y, f"C{level}\n{shape_label(in_channels[index], sizes[index])}",
                                  f"C{level}", _BACKBONE_COLOUR)
        merged = f"M{level} = L{level}" if level == 5 else f"M{level} = L{level} + up(M{level + 1})"
        boxes[f"M{level}"] = _box(ax, x_m, y, f"{merged}\n{shape_label(out_channels, sizes[index])}",
                                  f"M{level}", _MERGE_COLOUR)
        boxes[f"P{level}"] = _box(ax, x_p, y, f"P{level}\n{shape_label(out_channels, sizes[index])}",
                                  f"P{level}", _PYRAMID_COLOUR)
        _arrow(ax, boxes[f"C{level}"], boxes[f"M{level}"], f"C{level}", f"M{level}")
        _note(ax, (x_c + x_m) / 2, y + 0.12, f"1×1 conv → L{level}", ha="center", va="bottom")
        _arrow(ax, boxes[f"M{level}"], boxes[f"P{level}"], f"M{level}", f"P{level}")
        _note(ax, (x_m + x_p) / 2 + 0.35, y + 0.12, "3×3 conv", ha="center", va="bottom")
    for level in (4, 3):  # the top-down pathway
        _arrow(ax, boxes[f"M{level + 1}"], boxes[f"M{level}"], f"M{level + 1}", f"M{level}",
               start=(0.5, 0.0), end=(0.5, 1.0), colour="#B45F06")
        _note(ax, x_m + 0.12, (rows[level] + rows[level + 1]) / 2,
              f"upsample (nearest)\nto L{level}'s size", ha="left", va="center", color="#B45F06")
    for index, level in ((3, 6), (4, 7)):
        boxes[f"P{level}"] = _box(ax, x_p, rows[level], f"P{level}\n{shape_label(out_channels, sizes[index])}",
                                  f"P{level}", _PYRAMID_COLOUR)

    source = P6_SOURCES[p6_from]
    if source == "C5":  # up from C5, then right to P6, above the rows of the pyramid
        _arrow(ax, boxes["C5"], boxes["P6"], "C5", "P6", start=(0.5, 1.0), end=(0.0, 0.5),
               connectionstyle="angle,angleA=90,angleB=0,rad=0")
        _note(ax, (x_c + x_p) / 2, rows[6] + 0.12, "3×3 conv, stride 2 (paper: P6 from C5)", ha="center", va="bottom")
    else:
        _arrow(ax, boxes["P5"], boxes["P6"], "P5", "P6", start=(0.5, 1.0), end=(0.5, 0.0))
        _note(ax, x_p - 1.0, (rows[5] + rows[6]) / 2, "3×3 conv, stride 2\n(torchvision v1:\nP6 from P5)",
              ha="right", va="center")
    _arrow(ax, boxes["P6"], boxes["P7"], "P6", "P7", start=(0.5, 1.0), end=(0.5, 0.0))
    _note(ax, x_p - 1.0, (rows[6] + rows[7]) / 2, "ReLU, then\n3×3 conv, stride 2", ha="right", va="center")
    ax.set_title(f"Feature pyramid: C3-C5 → P3-P7, shapes channels × H × W (P6 from {source})", fontsize=10)
    return ax


def draw_subnets(channels: int, num_anchors: int, num_classes: int, grid_sizes: Sequence[Sequence[int]],
                 num_convs: int = 4, ax: Axes | None = None) -> Axes:
    """Draw the two subnets (paper, Figure 3c and 3d), shared by every pyramid level.

    Args:
        channels: C, the channels of the pyramid and of every tower convolution (256 in the paper).
        num_anchors: A, anchors per location (9 in the paper).
        num_classes: K, classes (80 for COCO).
        grid_sizes: the (H, W) of P3, ..., P7; they set the number of anchors N = A · sum(H · W).
        num_convs: the 3 x 3 convolutions of each tower (4 in the paper).
        ax: the axes to draw on; a new 9.5 x 4.6 inch figure when None.

    Returns:
        The axes, turned off.
    """
    for name, value in (("channels", channels), ("num_anchors", num_anchors), ("num_classes", num_classes),
                        ("num_convs", num_convs)):
        check_int(name, value, 1)
    sizes = _check_grid_sizes(grid_sizes)
    num_rows = num_anchors * sum(height * width for height, width in sizes)  # N

    ax = _new_axes(ax, (9.5, 4.6))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 6.2)
    ax.set_axis_off()
    boxes = {}
    for index, level in enumerate(LEVELS):
        y = 5.2 - 1.1 * index
        boxes[f"P{level}"] = _box(ax, 1.1, y, f"P{level}  {shape_label(channels, sizes[index])}",
                                  f"P{level}", _PYRAMID_COLOUR)
    shared = _box(ax, 3.5, 3.0, "every level,\nsame weights", "shared", "white")
    for level in LEVELS:
        _arrow(ax, boxes[f"P{level}"], shared, f"P{level}", "shared", colour="0.45")

    rows = {"class": (4.7, _CLASS_COLOUR), "box": (1.3, _BOX_COLOUR)}
    outputs = {"class": num_classes * num_anchors, "box": 4 * num_anchors}
    for head, (y, colour) in rows.items():
        tower = _box(ax, 6.0, y, f"{num_convs} × (3×3 conv, {channels}, ReLU)\n{channels} × H × W",
                     f"{head} tower", colour)
        what = f"K·A = {num_classes}·{num_anchors}" if head == "class" else f"4·A = 4·{num_anchors}"
        predictor = _box(ax, 8.7, y, f"3×3 conv, {what}\n{outputs[head]} × H × W", f"{head} predictor", colour)
        if head == "class":
            final = _box(ax, 11.5, y, f"cls_logits (B, N, K)\n= (B, {num_rows:,}, {num_classes})\n"
                         "sigmoid: K·A probabilities", "cls_logits", colour)
        else:
            final = _box(ax, 11.5, y, f"box_deltas (B, N, 4)\n= (B, {num_rows:,}, 4)", "box_deltas", colour)
        start = (1.0, 0.75) if head == "class" else (1.0, 0.25)
        _arrow(ax, shared, tower, "shared", f"{head} tower", start=start)
        _arrow(ax, tower, predictor, f"{head} tower", f"{head} predictor")
        _arrow(ax, predictor, final, f"{head} predictor", head)
        _note(ax, 8.7, y - 0.55, f"{head} subnet", ha="center", va="top", fontweight="bold")
    _note(ax, 10.1, 3.0, f"each level flattened to (B, H·W·A, ·),\nP3 first: N = {num_anchors} × Σ H·W = "
          f"{num_rows:,}", ha="center", va="center")
    ax.set_title("Class and box subnets on every pyramid level, shapes channels × H × W", fontsize=10)
    return ax
