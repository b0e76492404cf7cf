"""Losses: per-image vs per-batch normalisation, box loss types, ignored anchors."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_focal

from retina_lessons.box_coding import encode_boxes
from retina_lessons.focal_loss import sigmoid_focal_loss
from retina_lessons.losses import box_loss, classification_loss, classification_targets
from retina_lessons.matching import BACKGROUND, IGNORE


@pytest.fixture
def example():
    generator = torch.Generator().manual_seed(0)
    cls_logits = torch.randn(2, 6, 3, generator=generator)
    matched = torch.tensor([[0, BACKGROUND, IGNORE, 1, BACKGROUND, 0], [BACKGROUND] * 5 + [IGNORE]])
    gt_labels = torch.tensor([[2, 0], [0, 0]])
    return cls_logits, matched, gt_labels


def test_targets_are_one_hot_on_foreground_only(example):
    _, matched, gt_labels = example
    targets = classification_targets(matched, gt_labels, 3)
    assert targets[0, 0].tolist() == [0, 0, 1] and targets[0, 3].tolist() == [1, 0, 0]
    assert targets[0, 1].sum() == 0 and targets[1].sum() == 0


def test_classification_loss_normalisations(example):
    cls_logits, matched, gt_labels = example
    targets = classification_targets(matched, gt_labels, 3)
    sums = []
    for i in range(2):
        valid = matched[i] != IGNORE
        sums.append(tv_focal(cls_logits[i][valid], targets[i][valid], reduction="sum"))
    per_image = classification_loss(cls_logits, matched, gt_labels)
    torch.testing.assert_close(per_image, (sums[0] / 3 + sums[1] / 1) / 2)
    per_batch = classification_loss(cls_logits, matched, gt_labels, normalization="per_batch")
    torch.testing.assert_close(per_batch, (sums[0] + sums[1]) / 3)


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (0.5, 0.0), (-1, 0.5), (0.75, 5.0)])
def test_classification_loss_equals_the_focal_loss_of_one_hot_targets(example, alpha, gamma):
    cls_logits, matched, gt_labels = example
    cls_logits = cls_logits * 40  # saturated logits too
    cls_logits.requires_grad_(True)
    targets = classification_targets(matched, gt_labels, 3)
    valid = (matched != IGNORE)[..., None]
    expected = (sigmoid_focal_loss(cls_logits, targets, alpha=alpha, gamma=gamma) * valid).sum((1, 2))
    loss = classification_loss(cls_logits, matched, gt_labels, alpha=alpha, gamma=gamma)
    torch.testing.assert_close(loss, (expected[0] / 3 + expected[1] / 1) / 2)
    loss.backward()
    assert torch.isfinite(cls_logits.grad).all()


@pytest.mark.parametrize("loss_type", ["l1", "smooth_l1", "giou"])
def test_box_loss_uses_foreground_anchors_only(loss_type):
    anchors = torch.tensor([[0.0, 0, 10, 10], [10, 10, 30, 30], [5, 5, 25, 15]])
    gt_boxes = torch.tensor([[[1.0, 1, 11, 12], [0, 0, 1, 1]]])  # second row: padding
    matched = torch.tensor([[0, BACKGROUND, IGNORE]])
    deltas = torch.zeros(1, 3, 4, requires_grad=True)
    loss = box_loss(deltas, anchors, matched, gt_boxes, loss_type=loss_type, beta=0.11)
    loss.backward()
    assert loss > 0
    assert deltas.grad[0, 1:].abs().sum() == 0  # no gradient to background or ignored anchors
    if loss_type == "l1":
        torch.testing.assert_close(loss, encode_boxes(gt_boxes[0, :1], anchors[:1]).abs().sum())
    if loss_type == "smooth_l1":
        target = encode_boxes(gt_boxes[0, :1], anchors[:1])
        torch.testing.assert_close(loss, F.smooth_l1_loss(torch.zeros(1, 4), target, reduction="sum", beta=0.11))


def test_no_foreground_gives_zero_box_loss_and_finite_gradients():
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    deltas = torch.zeros(2, 1, 4, requires_grad=True)
    loss = box_loss(deltas, anchors, torch.full((2, 1), BACKGROUND), torch.zeros(2, 0, 4))
    loss.backward()
    assert loss == 0 and torch.isfinite(deltas.grad).all()


def test_unknown_options_raise(example):
    cls_logits, matched, gt_labels = example
    with pytest.raises(ValueError, match="normalization"):
        classification_loss(cls_logits, matched, gt_labels, normalization="per_anchor")
    with pytest.raises(ValueError, match="loss_type"):
        box_loss(torch.zeros(1, 1, 4), torch.tensor([[0.0, 0, 1, 1]]), torch.zeros(1, 1, dtype=torch.int64),
                 torch.tensor([[[0.0, 0, 1, 1]]]), loss_type="l2")


def test_giou_box_loss_decodes_with_the_box_coder_weights():
    """GIoU compares decoded boxes: decoding must use the same weights as encoding (here 10, 10, 5, 5)."""
    from torchvision.ops import generalized_box_iou_loss

    from retina_lessons.box_coding import STD_WEIGHTS, decode_boxes

    anchors = torch.tensor([[0.0, 0, 10, 10], [10, 10, 30, 30]])
    gt_boxes = torch.tensor([[[1.0, 1, 11, 12], [12.0, 8, 28, 33]]])
    matched = torch.tensor([[0, 1]])
    deltas = torch.tensor([[[0.5, -0.3, 0.2, 0.1], [-0.2, 0.4, -0.1, 0.3]]])
    loss = box_loss(deltas, anchors, matched, gt_boxes, loss_type="giou", weights=STD_WEIGHTS)
    decoded = decode_boxes(deltas[0], anchors, STD_WEIGHTS)
    expected = generalized_box_iou_loss(decoded, gt_boxes[0], reduction="sum", eps=1e-7) / 2
    torch.testing.assert_close(loss, expected)
    unit = box_loss(deltas, anchors, matched, gt_boxes, loss_type="giou")
    assert not torch.allclose(loss, unit)  # the weights change the decoded boxes


@pytest.mark.parametrize("loss_type", ["l1", "smooth_l1", "giou"])
def test_box_loss_normalisations(loss_type):
    anchors = torch.tensor([[0.0, 0, 10, 10], [10, 10, 30, 30], [5, 5, 25, 15]])
    gt_boxes = torch.tensor([[[1.0, 1, 11, 12], [9.0, 11, 31, 28]], [[4.0, 6, 26, 14], [0, 0, 1, 1]]])
    matched = torch.tensor([[0, 1, BACKGROUND], [BACKGROUND, BACKGROUND, 0]])  # 2 and 1 foreground anchors
    deltas = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(2)) * 0.1
    sums = [box_loss(deltas[i : i + 1], anchors, matched[i : i + 1], gt_boxes[i : i + 1], loss_type=loss_type)
            * int((matched[i] >= 0).sum()) for i in range(2)]  # per image: the sum over its foreground
    per_image = box_loss(deltas, anchors, matched, gt_boxes, loss_type=loss_type)
    per_batch = box_loss(deltas, anchors, matched, gt_boxes, loss_type=loss_type, normalization="per_batch")
    torch.testing.assert_close(per_image, (sums[0] / 2 + sums[1] / 1) / 2)
    torch.testing.assert_close(per_batch, (sums[0] + sums[1]) / 3)
