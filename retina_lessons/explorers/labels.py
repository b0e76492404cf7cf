"""Text labels on a picture of boxes: where each goes so none covers another, and how it is drawn.

A label names a box (``circle 0.93``) at one of its corners, just outside it. Boxes of one object
often nearly coincide (a duplicate detection, a wrong class on the same object), and so would
their labels: :func:`stack_labels` moves each label that would cover an earlier one by whole
lines, so that the earlier (more important) labels stay put and the others stack beside them.

- :class:`Label`: a label's anchor, side, text and colours, in image pixels;
- :func:`stack_labels`: the layout; :func:`text_size`: a font's line height and character width
  in an axes' image pixels;
- :func:`draw_labels`: matplotlib text artists, for static pictures;
- :class:`LabelPainter`: the same labels painted with Pillow onto rendered pixels, for an explorer
  that redraws them on every slider move.

Used by the predictions explorer (:mod:`retina_lessons.explorers.predictions`, lesson 08) and the
anchor explorer's ground-truth names (:mod:`retina_lessons.explorers.anchors`, lesson 05).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

LINE_SPACING = 1.45  # a label's height, in font sizes (the text and its coloured margin)
CHAR_WIDTH = 0.62  # the mean width of a DejaVu Sans character, in font sizes


class Label(NamedTuple):
    """A box's text label: anchored at (x, y) in image pixels, above (va "bottom") or below (va "top")."""

    x: float
    y: float
    va: str
    text: str
    colour: str  # the box's colour, filling the label's background
    text_colour: str = "white"  # "black" on a light `colour`


def stack_labels(labels: Sequence[Label], line_height: float, char_width: float, image_height: float,
                 max_moves: int = 4) -> list[Label]:
    """Move each label that overlaps an earlier one by whole lines, away from its box (then towards it).

    `line_height` and `char_width` (see :func:`text_size`) give each label's extent in image
    pixels; a label stays within [0, image_height] and keeps its place if no `max_moves` lines
    either way are free.
    """
    placed: list[tuple[float, float, float, float]] = []  # (x1, y1, x2, y2) in image pixels
    out = []

    def extent(label: Label, y: float) -> tuple[float, float, float, float]:
        top = y - line_height if label.va == "bottom" else y
        return label.x, top, label.x + char_width * len(label.text), top + line_height

    def free(box) -> bool:
        return all(box[2] <= p[0] or p[2] <= box[0] or box[3] <= p[1] or p[3] <= box[1] for p in placed)

    for label in labels:
        away = -1.0 if label.va == "bottom" else 1.0  # up for a label above its box, down for one below
        tries = [label.y + away * k * line_height for k in range(max_moves + 1)]
        tries += [label.y - away * k * line_height for k in range(1, max_moves + 1)]
        for y in tries:
            box = extent(label, y)
            if box[1] >= 0 and box[3] <= image_height and free(box):
                label = label._replace(y=y)
                break
        placed.append(extent(label, label.y))
        out.append(label)
    return out


def text_size(ax, image_height: float, fontsize: float) -> tuple[float, float]:
    """(line height, character width) of labels of `fontsize` points, in image pixels of `ax`."""
    pixels_per_unit = ax.get_window_extent().height / image_height
    em = fontsize * ax.figure.dpi / 72  # screen pixels
    return LINE_SPACING * em / pixels_per_unit, CHAR_WIDTH * em / pixels_per_unit


def draw_labels(ax, labels: Sequence[Label], fontsize: float = 7.5) -> list:
    """Matplotlib text artists for `labels` (for static pictures; an explorer paints them with Pillow).

    The first label is drawn on top of the others.
    """
    return [ax.text(label.x, label.y, label.text, fontsize=fontsize, va=label.va, ha="left",
                    color=label.text_colour, zorder=7 + 1 / (1 + rank), clip_on=True,
                    bbox={"facecolor": label.colour, "pad": 1.0, "lw": 0, "alpha": 0.9})
            for rank, label in enumerate(labels)]


class LabelPainter:
    """Draws `Label`s straight onto rendered pixels with Pillow, in matplotlib's DejaVu Sans.

    Matplotlib lays out and rasterises every glyph of every text on each draw (a few ms per
    label); Pillow's FreeType text costs a fraction of that, which keeps a slider move with
    dozens of labels within an explorer's time budget.
    """

    def __init__(self, fontsize: float, dpi: float) -> None:
        from matplotlib import font_manager
        from PIL import ImageFont

        self.font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), max(6, round(fontsize * dpi / 72)))

    def paint(self, picture, labels: Sequence[Label], to_pixels, clip: tuple[float, float, float, float]) -> None:
        """Draw onto the PIL image `picture`; `to_pixels` maps (N, 2) image coordinates to pixel (col, row).

        Labels entirely outside `clip` (left, top, right, bottom in pixels) are left out; one that
        runs past the right edge is moved left to end there.
        """
        from PIL import ImageDraw

        if not labels:
            return
        draw = ImageDraw.Draw(picture)
        points = to_pixels(np.array([(label.x, label.y) for label in labels], dtype=float))
        left, top, right, bottom = clip
        for label, (col, row) in reversed(list(zip(labels, points))):  # the first label ends on top
            anchor = "ld" if label.va == "bottom" else "la"
            x1, y1, x2, y2 = draw.textbbox((col, row), label.text, font=self.font, anchor=anchor)
            shift_x = min(0.0, right - x2 - 1)  # keep the label inside the axes
            if x1 + shift_x > right or y2 < top or y1 > bottom:
                continue
            draw.rectangle((x1 + shift_x - 1, y1 - 1, x2 + shift_x + 1, y2 + 1), fill=label.colour)
            draw.text((col + shift_x, row), label.text, font=self.font, fill=label.text_colour, anchor=anchor)

    def paint_in_axes(self, picture, ax, labels: Sequence[Label]) -> None:
        """Paint `labels`, placed in `ax`'s data coordinates, onto `picture`, the figure of `ax` rendered."""
        fig_height = picture.height

        def to_pixels(points):  # data coordinates -> (column, row) from the figure's top-left corner
            display = ax.transData.transform(points)
            return np.stack([display[:, 0], fig_height - display[:, 1]], axis=1)

        x0, y0, x1, y1 = ax.bbox.extents
        self.paint(picture, labels, to_pixels, (x0, fig_height - y1, x1, fig_height - y0))

    def paint_status(self, picture, text: str, centre_x: float, bottom_row: float) -> None:
        """One line of black text centred at `centre_x`, its descenders on `bottom_row` (pixels)."""
        from PIL import ImageDraw

        ImageDraw.Draw(picture).text((centre_x, bottom_row), text, font=self.font, fill="black", anchor="md")
