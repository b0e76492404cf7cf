"""Matching against torchvision's Matcher, for batches with different numbers of boxes."""

import pytest
import torch
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou as tv_box_iou

from retina_lessons.anchors import AnchorGenerator
from retina_lessons.boxes import box_iou
from retina_lessons.matching import BACKGROUND, IGNORE, match_anchors, pad_ground_truth


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
