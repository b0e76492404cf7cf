"""The pyramid and subnet diagrams show the shapes they are given, the right P6 source, and stay readable."""

import itertools

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Annotation

from retina_lessons import diagrams

GRIDS = [(120, 100), (60, 50), (30, 25), (15, 13), (8, 7)]  # the photo's 960 x 800 batch
SMALL_GRIDS = [(48, 40), (24, 20), (12, 10), (6, 5), (3, 3)]  # the 384 x 320 batch of lesson 03


@pytest.fixture
def ax():
    fig, ax = plt.subplots(figsize=(9, 5.6))
    yield ax
    plt.close(fig)


def texts(ax):
    return [t for t in ax.texts if not isinstance(t, Annotation)]


def all_text(ax):
    return "\n".join(t.get_text() for t in texts(ax))


def arrows(ax):
    return {t.get_gid(): t for t in ax.texts if isinstance(t, Annotation)}


def frames(ax):
    # The drawn area of every box (its frame) and every note, in display pixels.
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    result = []
    for t in texts(ax):
        artist = t.get_bbox_patch() if t.get_bbox_patch() is not None else t
        result.append((t.get_text(), artist.get_window_extent(renderer)))
    return result


def test_fpn_draws_on_the_given_axes_and_labels_every_level_with_its_shape(ax):
    assert diagrams.draw_fpn((128, 256, 512), 256, GRIDS, ax=ax) is ax
    drawn = all_text(ax)
    for level, (height, width) in zip(range(3, 8), GRIDS):
        assert f"P{level}\n256 × {height} × {width}" in drawn
    for level, channels, (height, width) in zip((3, 4, 5), (128, 256, 512), GRIDS):
        assert f"C{level}\n{channels} × {height} × {width}" in drawn
    assert "M4 = L4 + up(M5)\n256 × 60 × 50" in drawn


def test_fpn_shapes_follow_the_arguments(ax):
    diagrams.draw_fpn((512, 1024, 2048), 64, SMALL_GRIDS, ax=ax)
    drawn = all_text(ax)
    assert "C5\n2048 × 12 × 10" in drawn and "P7\n64 × 3 × 3" in drawn
    assert "256 ×" not in drawn


@pytest.mark.parametrize(("p6_from", "source", "other"), [("c5", "C5", "P5"), ("p5", "P5", "C5")])
def test_p6_arrow_starts_at_the_chosen_map(ax, p6_from, source, other):
    diagrams.draw_fpn((128, 256, 512), 256, GRIDS, p6_from=p6_from, ax=ax)
    gids = set(arrows(ax))
    assert f"arrow {source}->P6" in gids and f"arrow {other}->P6" not in gids
    assert {"arrow P6->P7", "arrow M5->M4", "arrow M4->M3", "arrow C3->M3", "arrow M3->P3"} <= gids
    assert f"P6 from {source}" in ax.get_title()


def test_subnets_label_every_level_and_the_outputs(ax):
    assert diagrams.draw_subnets(256, 9, 80, SMALL_GRIDS, ax=ax) is ax
    drawn = all_text(ax)
    for level, (height, width) in zip(range(3, 8), SMALL_GRIDS):
        assert f"P{level}  256 × {height} × {width}" in drawn
    assert "720 × H × W" in drawn and "36 × H × W" in drawn  # K·A and 4·A output channels
    assert "4 × (3×3 conv, 256, ReLU)" in drawn
    assert "(B, 23,031, 80)" in drawn and "(B, 23,031, 4)" in drawn  # N = 9 x (48·40 + ... + 3·3)
    assert {"arrow P3->shared", "arrow P7->shared", "arrow class tower->class predictor",
            "arrow box predictor->box"} <= set(arrows(ax))


def test_subnet_numbers_follow_the_arguments(ax):
    diagrams.draw_subnets(64, 3, 2, SMALL_GRIDS, num_convs=2, ax=ax)
    drawn = all_text(ax)
    assert "2 × (3×3 conv, 64, ReLU)" in drawn and "6 × H × W" in drawn and "12 × H × W" in drawn
    assert f"(B, {3 * sum(h * w for h, w in SMALL_GRIDS):,}, 2)" in drawn


@pytest.mark.parametrize("draw", ["fpn_c5", "fpn_p5", "subnets"])
def test_no_text_overlaps_and_every_arrow_is_visible(draw):
    if draw == "subnets":
        ax = diagrams.draw_subnets(256, 9, 80, SMALL_GRIDS)
    else:
        ax = diagrams.draw_fpn((128, 256, 512), 256, GRIDS, p6_from=draw[-2:])
    try:
        placed = frames(ax)
        for (text_a, a), (text_b, b) in itertools.combinations(placed, 2):
            assert not a.overlaps(b), (text_a, text_b)
        renderer = ax.figure.canvas.get_renderer()
        for gid, arrow in arrows(ax).items():
            extent = arrow.arrow_patch.get_window_extent(renderer)
            assert max(extent.width, extent.height) > 20, gid  # at least 20 pixels long
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_channels": (128, 256)}, r"in_channels=\(128, 256\): expected the channels of C3, C4, C5"),
    ({"out_channels": 0}, r"out_channels=0: expected an integer >= 1"),
    ({"grid_sizes": GRIDS[:4]}, r"grid_sizes=.*: expected five \(H, W\) pairs"),
    ({"grid_sizes": [(120, 100, 1)] * 5}, r"grid_sizes=.*: expected five \(H, W\) pairs"),
    ({"grid_sizes": [(0, 100)] * 5}, r"grid_sizes height=0: expected an integer >= 1"),
    ({"p6_from": "P5"}, r"p6_from='P5': expected 'c5' \(the paper\) or 'p5' \(torchvision v1\)"),
])
def test_fpn_rejects_bad_arguments(ax, kwargs, message):
    arguments = {"in_channels": (128, 256, 512), "out_channels": 256, "grid_sizes": GRIDS, "ax": ax} | kwargs
    with pytest.raises(ValueError, match=message):
        diagrams.draw_fpn(**arguments)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_classes": 0}, r"num_classes=0: expected an integer >= 1"),
    ({"num_anchors": 2.5}, r"num_anchors=2.5: expected an integer >= 1"),
    ({"channels": True}, r"channels=True: expected an integer >= 1"),
    ({"num_convs": -1}, r"num_convs=-1: expected an integer >= 1"),
    ({"grid_sizes": []}, r"grid_sizes=\[\]: expected five \(H, W\) pairs"),
])
def test_subnets_reject_bad_arguments(ax, kwargs, message):
    arguments = {"channels": 256, "num_anchors": 9, "num_classes": 80, "grid_sizes": SMALL_GRIDS, "ax": ax} | kwargs
    with pytest.raises(ValueError, match=message):
        diagrams.draw_subnets(**arguments)
