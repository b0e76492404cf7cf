"""Tests for retina_lessons.explorers.anchors: states, counts, colours, drawing and the controls."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from retina_lessons.anchors import AnchorGenerator, feature_sizes
from retina_lessons.config import BG_IOU, FG_IOU
from retina_lessons.explorers.anchors import (
    ALL,
    SHAPES_CONFIG,
    STATE_COLOURS,
    AnchorExplorer,
    ExplorerImage,
    anchor_states,
    draw_anchor_state,
    explorer_image,
    state_colours,
)
from retina_lessons.explorers.canvas import box_outlines
from retina_lessons.matching import (
    BACKGROUND,
    IGNORE,
    anchor_overlaps,
    assign_by_iou,
    match_anchors,
)

matplotlib.use("Agg")

# Five anchors against one ground-truth box equal to the first, IoUs worked out by hand.
HAND_ANCHORS = torch.tensor([
    [0.0, 0.0, 10.0, 10.0],  # the box itself: IoU 1 -> positive
    [5.0, 0.0, 15.0, 10.0],  # overlap 5 x 10 = 50, union 150: IoU 1/3 -> negative
    [20.0, 20.0, 30.0, 30.0],  # no overlap: IoU 0 -> negative
    [0.0, 0.0, 10.0, 12.5],  # overlap 100, union 125: IoU 0.8 -> positive
    [0.0, 0.0, 10.0, 22.0],  # overlap 100, union 220: IoU 0.4545 -> ignored
])
HAND_GT = torch.tensor([[0.0, 0.0, 10.0, 10.0]])


def test_anchor_states_by_hand():
    matched, counts = anchor_states(HAND_ANCHORS, HAND_GT)
    assert matched.tolist() == [0, BACKGROUND, BACKGROUND, 0, IGNORE]
    assert counts == {"positive": 2, "ignored": 1, "negative": 2, "low_quality": 0}


def test_anchor_states_thresholds_move_anchors_between_states():
    # Raise fg to 0.9: the 0.8 anchor drops into the ignored band; lower bg to 0.3: 1/3 is ignored.
    matched, counts = anchor_states(HAND_ANCHORS, HAND_GT, fg_iou=0.9, bg_iou=0.3)
    assert matched.tolist() == [0, IGNORE, BACKGROUND, IGNORE, IGNORE]
    assert counts["positive"] == 1 and counts["ignored"] == 3 and counts["negative"] == 1


@pytest.mark.parametrize("low_quality", [True, False])
@pytest.mark.parametrize("fg_iou, bg_iou", [(FG_IOU, BG_IOU), (0.6, 0.3), (0.5, 0.5)])
def test_anchor_states_equal_match_anchors(low_quality, fg_iou, bg_iou):
    anchors = AnchorGenerator((16, 32, 64, 128, 256))((128, 128))
    xy = torch.rand(6, 2) * 100
    gt_boxes = torch.cat([xy, xy + 8 + torch.rand(6, 2) * 60], dim=1)
    matched, counts = anchor_states(anchors, gt_boxes, fg_iou, bg_iou, low_quality)
    expected = match_anchors(anchors, gt_boxes, fg_iou=fg_iou, bg_iou=bg_iou,
                             allow_low_quality_matches=low_quality)
    assert torch.equal(matched, expected)
    assert counts["positive"] == int((expected >= 0).sum())
    assert counts["ignored"] == int((expected == IGNORE).sum())
    assert counts["negative"] == int((expected == BACKGROUND).sum())
    assert sum(counts[s] for s in ("positive", "ignored", "negative")) == len(anchors)


def test_low_quality_match_gives_a_small_box_its_best_anchor():
    anchors = torch.tensor([[0.0, 0.0, 32.0, 32.0], [32.0, 0.0, 64.0, 32.0]])
    gt_boxes = torch.tensor([[2.0, 2.0, 14.0, 14.0]])  # 12 x 12 inside the first: IoU 144 / 1024
    without, counts_without = anchor_states(anchors, gt_boxes, allow_low_quality_matches=False)
    with_lq, counts_with = anchor_states(anchors, gt_boxes, allow_low_quality_matches=True)
    assert without.tolist() == [BACKGROUND, BACKGROUND]
    assert with_lq.tolist() == [0, BACKGROUND]
    assert counts_without["positive"] == 0 and counts_with["positive"] == 1
    assert counts_with["low_quality"] == 1


def test_image_without_boxes_is_all_negative():
    anchors = AnchorGenerator((16, 32, 64, 128, 256))((64, 64))
    matched, counts = anchor_states(anchors, torch.zeros((0, 4)))
    assert (matched == BACKGROUND).all()
    assert counts == {"positive": 0, "ignored": 0, "negative": len(anchors), "low_quality": 0}


def test_states_from_precomputed_overlaps_are_the_same():
    overlaps = anchor_overlaps(HAND_ANCHORS, HAND_GT)
    assert torch.equal(assign_by_iou(overlaps), anchor_states(HAND_ANCHORS, HAND_GT)[0])
    assert torch.equal(anchor_states(HAND_ANCHORS, HAND_GT, overlaps=overlaps)[0],
                       anchor_states(HAND_ANCHORS, HAND_GT)[0])
    with pytest.raises(ValueError, match="overlaps"):
        anchor_states(HAND_ANCHORS, HAND_GT, overlaps=anchor_overlaps(HAND_ANCHORS[:2], HAND_GT))


# Boxes that test the edges of the rule, against the anchor [0, 0, 10, 10] and friends.
EDGE_ANCHORS = torch.tensor([
    [0.0, 0.0, 10.0, 10.0],
    [0.0, 10.0, 10.0, 20.0],  # the first moved down by its height
    [40.0, 40.0, 50.0, 50.0],
    [60.0, 0.0, 70.0, 10.0],
])
EDGE_CASES = {
    # IoU exactly FG_IOU: 100 / 200 (positive), and exactly BG_IOU: 100 / 250 (ignored, not negative).
    "at the thresholds": torch.tensor([[0.0, 0.0, 10.0, 20.0], [40.0, 40.0, 50.0, 65.0]]),
    # Beyond every anchor: no anchor overlaps it, so it gets no low-quality match either.
    "overlapping no anchor": torch.tensor([[500.0, 500.0, 520.0, 530.0]]),
    # Two boxes equally good for one anchor, and one box with two tied best anchors.
    "ties": torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, -10.0, 10.0, 10.0], [55.0, 0.0, 75.0, 10.0]]),
    "no boxes": torch.zeros((0, 4)),
}


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize("low_quality", [True, False])
@pytest.mark.parametrize("fg_iou, bg_iou", [(FG_IOU, BG_IOU), (0.5, 0.5), (0.3, 0.1), (1.0, 0.0)])
def test_anchor_states_equal_match_anchors_at_the_edges(case, low_quality, fg_iou, bg_iou):
    gt_boxes = EDGE_CASES[case]
    matched, counts = anchor_states(EDGE_ANCHORS, gt_boxes, fg_iou, bg_iou, low_quality)
    expected = match_anchors(EDGE_ANCHORS, gt_boxes, fg_iou=fg_iou, bg_iou=bg_iou,
                             allow_low_quality_matches=low_quality)
    assert torch.equal(matched, expected)
    assert counts["positive"] + counts["ignored"] + counts["negative"] == len(EDGE_ANCHORS)


def test_edge_cases_by_hand():
    at_thresholds, _ = anchor_states(EDGE_ANCHORS, EDGE_CASES["at the thresholds"], allow_low_quality_matches=False)
    assert at_thresholds.tolist() == [0, 0, IGNORE, BACKGROUND]  # 0.5 and 0.5 positive; 0.4 ignored
    nowhere, counts = anchor_states(EDGE_ANCHORS, EDGE_CASES["overlapping no anchor"])
    assert nowhere.tolist() == [BACKGROUND] * 4 and counts["positive"] == 0
    ties, _ = anchor_states(EDGE_ANCHORS, EDGE_CASES["ties"])
    # Anchor 0 is tied between boxes 0 and 1 (IoU 0.5 each) and takes the first; box 2 (IoU 1/3 with
    # anchor 3 and 0 elsewhere) keeps its best anchor as a low-quality match.
    assert ties.tolist() == [0, 0, BACKGROUND, 2]


def _explorer_on(gt_boxes: torch.Tensor, image_size=(96, 160)) -> AnchorExplorer:
    image = torch.rand(3, *image_size)
    example = ExplorerImage("edge case", image, gt_boxes, image_size, SHAPES_CONFIG.anchor_sizes,
                            SHAPES_CONFIG.anchor_scales, SHAPES_CONFIG.anchor_ratios)
    return AnchorExplorer([example], dpi=40)


@pytest.mark.parametrize("case", ["overlapping no anchor", "at the thresholds", "ties", "no boxes"])
def test_explorer_colours_are_trainings_assignment(case):
    """The explorer's counts per level and over the image are match_anchors's, for the library's anchors."""
    gt_boxes = EDGE_CASES[case] * 4  # the same shapes at the scale of the classroom anchors
    explorer = _explorer_on(gt_boxes)
    example = explorer.examples[0]
    generator = AnchorGenerator(example.anchor_sizes, example.anchor_scales, example.anchor_ratios)
    per_level = generator.per_level(example.padded_size, feature_sizes(example.padded_size, generator.num_levels))
    for fg_iou, bg_iou, low_quality in [(FG_IOU, BG_IOU, True), (0.5, 0.5, False), (0.7, 0.2, True)]:
        for level in range(3, 3 + len(per_level)):
            explorer.update(level=level, fg_iou=fg_iou, bg_iou=bg_iou, low_quality=low_quality)
            expected = match_anchors(torch.cat(per_level), gt_boxes, fg_iou=fg_iou, bg_iou=bg_iou,
                                     allow_low_quality_matches=low_quality)
            assert explorer.image_counts["positive"] == int((expected >= 0).sum())
            assert explorer.image_counts["ignored"] == int((expected == IGNORE).sum())
            assert explorer.image_counts["negative"] == int((expected == BACKGROUND).sum())
            start = sum(len(a) for a in per_level[: level - 3])
            in_level = expected[start : start + len(per_level[level - 3])]
            assert explorer.level_counts["positive"] == int((in_level >= 0).sum())
            assert explorer.level_counts["ignored"] == int((in_level == IGNORE).sum())


def test_a_box_beyond_every_anchor_makes_no_anchor_positive():
    """The bug the explorer once had: its own matcher turned every anchor positive for such a box."""
    explorer = _explorer_on(torch.tensor([[400.0, 400.0, 420.0, 440.0]]))
    explorer.update(level=3)
    assert explorer.image_counts["positive"] == 0
    assert explorer.image_counts["negative"] == sum(explorer.image_counts[s] for s in ("positive", "ignored", "negative"))


@pytest.mark.parametrize("fg_iou, bg_iou", [(0.4, 0.5), (1.5, 0.4), (0.5, -0.1)])
def test_bad_thresholds_raise(fg_iou, bg_iou):
    with pytest.raises(ValueError, match="iou"):
        anchor_states(HAND_ANCHORS, HAND_GT, fg_iou, bg_iou)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="anchors_xyxy"):
        anchor_states(HAND_ANCHORS[:, :3], HAND_GT)
    with pytest.raises(ValueError, match="gt_boxes"):
        anchor_states(HAND_ANCHORS, HAND_GT[0])


def test_state_colours():
    colours = state_colours(np.array([0, 3, IGNORE, BACKGROUND]))
    assert colours.shape == (4, 4)
    np.testing.assert_allclose(colours[0], to_rgba(STATE_COLOURS["positive"]))
    np.testing.assert_allclose(colours[1], to_rgba(STATE_COLOURS["positive"]))
    np.testing.assert_allclose(colours[2], to_rgba(STATE_COLOURS["ignored"]))
    np.testing.assert_allclose(colours[3], to_rgba(STATE_COLOURS["negative"]))


def test_draw_anchor_state_colours_each_outline_by_state():
    fig = Figure()
    ax = fig.add_subplot()
    counts = draw_anchor_state(ax, HAND_ANCHORS, HAND_GT)
    assert counts["positive"] == 2
    anchor_lines = [c for c in ax.collections if len(c.get_segments()) == len(HAND_ANCHORS)]
    assert len(anchor_lines) == 1
    colours = anchor_lines[0].get_colors()
    expected = ["positive", "negative", "negative", "positive", "ignored"]
    for colour, state in zip(colours, expected, strict=True):
        np.testing.assert_allclose(colour, to_rgba(STATE_COLOURS[state]))


def test_draw_anchor_state_show_keeps_the_states_of_all_anchors():
    # Anchor 1 alone is far from the box; among all anchors the box's best is anchor 0 (IoU 1), so
    # drawing only anchor 1 must show it negative, not as the box's low-quality match.
    fig = Figure()
    ax = fig.add_subplot()
    show = torch.tensor([False, True, False, False, False])
    counts = draw_anchor_state(ax, HAND_ANCHORS, HAND_GT, show=show)
    assert counts == {"positive": 0, "ignored": 0, "negative": 1, "low_quality": 0}
    assert len(ax.collections[-2].get_segments()) == 1  # one outline drawn (the other collection: low-quality)
    with pytest.raises(ValueError, match="show"):
        draw_anchor_state(ax, HAND_ANCHORS, HAND_GT, show=torch.ones(3, dtype=torch.bool))


def known_example() -> tuple[ExplorerImage, torch.Tensor]:
    """A 128 x 128 image (the classroom size) whose one ground-truth box is exactly the P3 anchor at cell (2, 3), ratio 1:1, scale 2^0."""
    generator = AnchorGenerator(SHAPES_CONFIG.anchor_sizes)
    grids = feature_sizes((128, 128))
    p3 = generator.per_level((128, 128), grids)[0].view(grids[0][0], grids[0][1], 3, 3, 4)  # (H, W, R, S, 4)
    box = p3[3, 2, 1, 0]  # y = 3, x = 2, ratio 1:1, scale 2^0: a 16 x 16 box centred at (16, 24)
    example = explorer_image("known", torch.zeros(3, 128, 128), box[None], SHAPES_CONFIG, ["square"])
    return example, box


@pytest.fixture(scope="module")
def known_explorer():
    example, _ = known_example()
    return AnchorExplorer([example, *[explorer_image("empty", torch.ones(3, 128, 128), torch.zeros(0, 4),
                                                     SHAPES_CONFIG)]])


def test_explorer_known_case_counts_and_colours(known_explorer):
    _, box = known_example()
    counts = known_explorer.update(image=0, level=3, scale=0, ratio=1, location=(2, 3))
    assert counts == {"positive": 1, "ignored": 0, "negative": 0, "low_quality": 0}
    assert known_explorer.rows == [{"ratio": "1:1", "scale": "2^0", "width": 16.0, "height": 16.0,
                                    "best_iou": 1.0, "state": "positive"}]
    segments = known_explorer.artists.boxes.get_segments()
    assert len(segments) == 1
    np.testing.assert_allclose(segments[0], box_outlines(box[None].numpy())[0])
    np.testing.assert_allclose(known_explorer.artists.boxes.get_colors()[0], to_rgba(STATE_COLOURS["positive"]))
    x, y = known_explorer.artists.location.get_data()
    assert (x[0], y[0]) == (16.0, 24.0)


def test_explorer_counts_equal_match_anchors(known_explorer):
    _, box = known_example()
    anchors = AnchorGenerator(SHAPES_CONFIG.anchor_sizes)((128, 128))
    for fg_iou, bg_iou, low_quality in [(0.5, 0.4, True), (0.3, 0.1, False), (0.7, 0.7, True)]:
        known_explorer.update(image=0, level=3, scale=ALL, ratio=ALL, location=ALL, fg_iou=fg_iou,
                              bg_iou=bg_iou, low_quality=low_quality)
        matched = match_anchors(anchors, box[None], fg_iou=fg_iou, bg_iou=bg_iou,
                                allow_low_quality_matches=low_quality)
        counts = known_explorer.image_counts
        assert counts["positive"] == int((matched >= 0).sum())
        assert counts["ignored"] == int((matched == IGNORE).sum())
        assert counts["negative"] == int((matched == BACKGROUND).sum())
        num_p3 = 16 * 16 * 9
        assert sum(known_explorer.counts[s] for s in ("positive", "ignored", "negative")) == num_p3
    known_explorer.update(fg_iou=FG_IOU, bg_iou=BG_IOU, low_quality=True)


def test_explorer_image_without_boxes(known_explorer):
    counts = known_explorer.update(image=1, level=4, location=ALL, scale=ALL, ratio=ALL)
    assert counts["positive"] == 0 and counts["ignored"] == 0 and counts["negative"] == 8 * 8 * 9
    assert len(known_explorer.artists.boxes.get_segments()) == 0  # nothing but negative centres
    known_explorer.update(image=0, level=3)


def test_update_changes_the_picture(known_explorer):
    known_explorer.update(image=0, level=3, location=ALL, scale=ALL, ratio=ALL)
    before = known_explorer.render()
    segments_before = [s.copy() for s in known_explorer.artists.boxes.get_segments()]
    assert before[:8] == b"\x89PNG\r\n\x1a\n"
    known_explorer.update(level=4)
    after = known_explorer.render()
    assert after != before
    assert len(known_explorer.artists.boxes.get_segments()) != len(segments_before) or any(
        not np.array_equal(a, b) for a, b in zip(known_explorer.artists.boxes.get_segments(), segments_before))
    known_explorer.update(fg_iou=0.2, bg_iou=0.1)  # thresholds alone recolour the anchors
    assert known_explorer.render() != after
    known_explorer.update(level=3, fg_iou=FG_IOU, bg_iou=BG_IOU)
    assert known_explorer.render() == before  # same parameters, same picture


@pytest.mark.parametrize("params", [
    {"level": 2}, {"level": 8}, {"level": 3.5}, {"scale": 3}, {"scale": "x"}, {"ratio": -1},
    {"fg_iou": 0.3, "bg_iou": 0.4}, {"fg_iou": 1.2}, {"bg_iou": -0.1}, {"location": (16, 0)},
    {"location": (0, -1)}, {"location": "middle"}, {"image": 5}, {"image": "nope"},
    {"convention": "corner"}, {"low_quality": "yes"}, {"zoom": 2},
])
def test_bad_parameters_raise_value_error(known_explorer, params):
    before = dict(known_explorer.params)
    with pytest.raises(ValueError):
        known_explorer.update(**params)
    assert known_explorer.params == before  # a refused update changes nothing


def test_centered_convention_moves_the_centres(known_explorer):
    known_explorer.update(image=0, level=3, scale=0, ratio=1, location=(0, 0), convention="torchvision")
    assert known_explorer.artists.location.get_data()[0][0] == 0.0
    known_explorer.update(convention="centered")
    assert known_explorer.artists.location.get_data()[0][0] == 4.0  # half of stride 8
    known_explorer.update(convention="torchvision", location=ALL, scale=ALL, ratio=ALL)


def test_widget_controls_drive_the_picture(known_explorer):
    ipywidgets = pytest.importorskip("ipywidgets")
    box = known_explorer.widget()
    assert isinstance(box, ipywidgets.HBox)
    picture, controls = box.children
    assert isinstance(picture, ipywidgets.Image) and picture.value == known_explorer.render()
    by_name = {c.description: c for c in controls.children if hasattr(c, "description") and c.description}
    before = picture.value
    by_name["level"].value = 4
    assert known_explorer.params["level"] == 4 and picture.value != before
    by_name["bg IoU <"].value = 0.9  # above fg: refused with a message, the picture stays
    assert "bg_iou" in controls.children[-1].value and known_explorer.params["bg_iou"] == BG_IOU
    by_name["bg IoU <"].value = BG_IOU
    by_name["all locations"].value = False
    assert known_explorer.params["location"] != ALL
    by_name["all locations"].value = True
    by_name["level"].value = 3


def test_default_explorer_on_the_photo():
    explorer = AnchorExplorer()
    assert explorer.examples[0].image_size == (937, 800)
    counts = explorer.update(level=5)
    assert counts["positive"] > 0 and counts["negative"] > counts["positive"]
    # every annotated box has at least one positive anchor somewhere (low-quality matching on)
    prep = explorer.prepared(0, "torchvision")
    best_gt_idx, is_best = prep.overlaps.best_gt_idx, prep.overlaps.is_best_anchor
    assert set(best_gt_idx[is_best].tolist()) == set(range(len(explorer.examples[0].gt_boxes)))
    assert explorer.render()[:4] == b"\x89PNG"
