"""Tests for retina_lessons.explorers.labels: the stacking layout, matplotlib and Pillow drawing."""

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from retina_lessons.explorers.labels import (
    Label,
    LabelPainter,
    draw_labels,
    stack_labels,
    text_size,
)

LINE, CHAR = 5.0, 2.0


def extent(label: Label) -> tuple[float, float, float, float]:
    top = label.y - LINE if label.va == "bottom" else label.y
    return label.x, top, label.x + CHAR * len(label.text), top + LINE


def overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def test_labels_that_would_cover_each_other_stack_by_whole_lines():
    labels = [Label(10.0, 30.0, "bottom", "circle 0.90", "green"), Label(11.0, 31.0, "bottom", "square 0.80", "red"),
              Label(12.0, 30.0, "bottom", "circle 0.70", "red"), Label(80.0, 30.0, "bottom", "far away", "red")]
    stacked = stack_labels(labels, LINE, CHAR, image_height=100.0)
    assert stacked[0] == labels[0] and stacked[3] == labels[3]  # the first and a free one stay put
    assert [s.y for s in stacked[1:3]] == [21.0, 15.0]  # up by whole lines until free: 2, then 3
    for i, a in enumerate(stacked):
        for b in stacked[i + 1 :]:
            assert not overlap(extent(a), extent(b)), (a, b)


def test_a_label_at_the_image_edge_moves_towards_its_box_and_stays_inside():
    # Above a box at the top of the image there is no room: the second label goes down instead.
    labels = [Label(0.0, 5.0, "bottom", "first", "green"), Label(0.0, 5.0, "bottom", "second", "red")]
    stacked = stack_labels(labels, LINE, CHAR, image_height=40.0)
    assert stacked[1].y == 10.0 and all(0 <= extent(s)[1] and extent(s)[3] <= 40.0 for s in stacked)
    # With no free line within max_moves, a label keeps its place.
    crowded = [Label(0.0, 20.0, "top", "x" * 5, "red")] * 3
    assert stack_labels(crowded, LINE, CHAR, image_height=25.0, max_moves=0)[2].y == 20.0


def test_text_size_scales_with_the_axes():
    ax = Figure(figsize=(4, 4), dpi=100).add_axes((0, 0, 1, 1))
    line, char = text_size(ax, image_height=100.0, fontsize=10.0)
    bigger_image = text_size(ax, image_height=200.0, fontsize=10.0)
    assert np.allclose(bigger_image, (2 * line, 2 * char)) and line > char > 0


def test_draw_labels_puts_the_first_label_on_top():
    ax = Figure().add_subplot()
    texts = draw_labels(ax, [Label(1.0, 2.0, "top", "missed circle", "#F0E442", "black"),
                             Label(1.0, 2.0, "bottom", "circle 0.50", "#009E73")])
    assert [t.get_text() for t in texts] == ["missed circle", "circle 0.50"]
    assert texts[0].get_zorder() > texts[1].get_zorder() and texts[0].get_color() == "black"


def test_painter_fills_each_label_with_its_colour_and_skips_labels_outside():
    picture = Image.new("RGB", (100, 60), "white")
    painter = LabelPainter(fontsize=8.0, dpi=100)
    labels = [Label(10.0, 10.0, "top", "circle", "#009E73"), Label(500.0, 500.0, "top", "outside", "#D55E00")]
    painter.paint(picture, labels, lambda points: points, clip=(0, 0, 100, 60))
    pixels = np.asarray(picture)
    assert (pixels == (0x00, 0x9E, 0x73)).all(-1).sum() > 50  # the green background of the first label
    assert not (pixels == (0xD5, 0x5E, 0x00)).all(-1).any()  # the second one is off the picture
