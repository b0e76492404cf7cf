"""Matching against torchvision's Matcher, for batches with different numbers of boxes."""

import pytest
import torch
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou as tv_box_iou

from retina_lessons.anchors import AnchorGenerator
from retina_lessons.boxes import box_iou
from retina_lessons.matching import (
    BACKGROUND,
    IGNORE,
    NO_BOX_IOU,
    anchor_overlaps,
    assign_by_iou,
    match_anchors,
    overlaps_from_iou,
    pad_ground_truth,
)


def random_boxes(num, size=200, generator=None):
    xy = torch.rand(num, 2, generator=generator) * size * 0.8
    wh = 4 + torch.rand(num, 2, generator=generator) * size * 0.5
    return torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)


@pytest.mark.parametrize("low_quality", [True, False])
def test_batch_matching_equals_torchvision_per_image(low_quality):
    generator = torch.Generator().manual_seed(3)
    anchors = AnchorGenerator(sizes=(16, 32, 64, 128, 256))((224, 224))
    gt = [random_boxes(n, 224, generator) for n in (5, 1, 0, 12)]
    labels = [torch.zeros(len(b), dtype=torch.int64) for b in gt]
    boxes, _, valid = pad_ground_truth(gt, labels)
    matched = match_anchors(anchors, boxes, valid, allow_low_quality_matches=low_quality)
    assert matched.shape == (4, anchors.shape[0])
    matcher = Matcher(0.5, 0.4, allow_low_quality_matches=low_quality)
    for i, b in enumerate(gt):
        expected = matcher(tv_box_iou(b, anchors)) if len(b) else torch.full_like(matched[i], BACKGROUND)
        assert torch.equal(matched[i], expected)
    assert (matched[2] == BACKGROUND).all()  # an image with no boxes: all background


def test_thresholds_and_ignored_band():
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 10, 24], [50, 50, 60, 60]])
    gt = torch.tensor([[0.0, 0, 10, 10]])  # IoUs: 1.0, 0.5, 10/24 = 0.417, 0
    matched = match_anchors(anchors, gt, allow_low_quality_matches=False)
    assert matched.tolist() == [0, 0, IGNORE, BACKGROUND]


def test_low_quality_match_gives_an_object_its_best_anchor():
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]])
    gt = torch.tensor([[0.0, 0, 4, 4]])  # IoU 0.16 with the first anchor: below every threshold
    assert match_anchors(anchors, gt, allow_low_quality_matches=False).tolist() == [BACKGROUND, BACKGROUND]
    assert match_anchors(anchors, gt, allow_low_quality_matches=True).tolist() == [0, BACKGROUND]


def test_no_boxes_anywhere():
    anchors = AnchorGenerator()((64, 64))
    boxes, labels, valid = pad_ground_truth([torch.zeros(0, 4), torch.zeros(0, 4)],
                                            [torch.zeros(0, dtype=torch.int64)] * 2)
    assert boxes.shape == (2, 0, 4)
    assert (match_anchors(anchors, boxes, valid) == BACKGROUND).all()


def test_box_iou_equals_torchvision_and_broadcasts():
    generator = torch.Generator().manual_seed(0)
    a, b = random_boxes(7, generator=generator), random_boxes(11, generator=generator)
    torch.testing.assert_close(box_iou(a, b), tv_box_iou(a, b), rtol=0, atol=0)
    batch = torch.stack([a, a.flip(0)])  # (2, 7, 4)
    torch.testing.assert_close(box_iou(batch, b)[1], tv_box_iou(a.flip(0), b))


def test_a_box_that_overlaps_no_anchor_gets_no_low_quality_match():
    anchors = torch.tensor([[0.0, 0, 10, 10], [10, 0, 20, 10]])
    gt = torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]])  # the second box overlaps nothing
    assert match_anchors(anchors, gt).tolist() == [0, BACKGROUND]
    # torchvision's Matcher would promote every anchor "tied" at IoU 0 with the second box
    assert Matcher(0.5, 0.4, True)(tv_box_iou(gt, anchors)).tolist() == [0, 0]


def test_iou_exactly_at_each_threshold():
    # IoU exactly 0.5 is foreground (>=), exactly 0.4 is ignored (>= BG_IOU), just below 0.4 background.
    anchors = torch.tensor([[0.0, 0, 10, 20], [0, 0, 10, 25], [0, 0, 10, 25.5]])
    gt = torch.tensor([[0.0, 0, 10, 10]])  # IoUs 100/200, 100/250, 100/255
    iou = box_iou(gt, anchors)[0]
    assert iou[0] == torch.tensor(0.5) and iou[1] == torch.tensor(0.4) and iou[2] < 0.4
    assert match_anchors(anchors, gt, allow_low_quality_matches=False).tolist() == [0, IGNORE, BACKGROUND]
    assert match_anchors(anchors, gt, fg_iou=0.4, bg_iou=0.4, allow_low_quality_matches=False).tolist() == [
        0, 0, BACKGROUND]


def test_ties_take_the_first_box_and_every_tied_best_anchor():
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    # Box 0 and box 1 overlap anchor 0 equally (IoU 0.5); box 2 overlaps anchors 1 and 2 equally (IoU 1/3).
    gt = torch.tensor([[0.0, 0, 10, 20], [0, -10, 10, 10], [25, 0, 45, 10]])
    assert match_anchors(anchors, gt).tolist() == [0, 2, 2]
    assert match_anchors(anchors, gt, allow_low_quality_matches=False).tolist() == [0, BACKGROUND, BACKGROUND]


def test_match_anchors_is_overlaps_then_thresholds():
    generator = torch.Generator().manual_seed(3)
    anchors = AnchorGenerator((16, 32, 64, 128, 256))((128, 96))
    boxes, labels, valid = pad_ground_truth([random_boxes(5, 96, generator), random_boxes(2, 96, generator),
                                             torch.zeros(0, 4)], [torch.zeros(5, dtype=torch.int64),
                                             torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)])
    overlaps = anchor_overlaps(anchors, boxes, valid)
    assert overlaps.best_iou.shape == overlaps.best_gt_idx.shape == overlaps.is_best_anchor.shape == (3, len(anchors))
    assert (overlaps.best_iou[2] == NO_BOX_IOU).all() and not overlaps.is_best_anchor[2].any()
    for fg, bg, low in [(0.5, 0.4, True), (0.6, 0.3, False), (0.5, 0.5, True), (1.0, 0.0, False)]:
        assert torch.equal(assign_by_iou(overlaps, fg, bg, low),
                           match_anchors(anchors, boxes, valid, fg_iou=fg, bg_iou=bg, allow_low_quality_matches=low))
    one = overlaps_from_iou(box_iou(boxes[1, :2], anchors))  # one image, (M, N)
    assert torch.equal(assign_by_iou(one), match_anchors(anchors, boxes[1, :2]))


@pytest.mark.parametrize("fg_iou, bg_iou, words", [
    (0.4, 0.5, "bg_iou=0.5 > fg_iou=0.4"), (1.5, 0.4, "fg_iou=1.5: expected an IoU in [0, 1]"),
    (0.5, -0.1, "bg_iou=-0.1"), (float("nan"), 0.4, "fg_iou=nan"), (True, 0.4, "fg_iou=True"),
])
def test_bad_thresholds_are_named(fg_iou, bg_iou, words):
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        match_anchors(anchors, anchors, fg_iou=fg_iou, bg_iou=bg_iou)
