"""Every field of every preset changes what the model computes, as a direct call to the piece would.

The model's `compute_loss` and `postprocess` read the config; each is compared with the concept
modules called by hand with that preset's fields, so a field that is read wrongly, or not passed on
(e.g. the paper's per-batch normalisation to the box loss), fails here.
"""

import dataclasses

import pytest
import torch

from retina_lessons import RetinaNet, get_config
from retina_lessons.config import PRESETS
from retina_lessons.losses import box_loss, classification_loss
from retina_lessons.matching import match_anchors, pad_ground_truth
from retina_lessons.postprocess import detections_from_outputs

SMALL = {"backbone": "resnet18", "num_classes": 3, "min_size": 96, "max_size": 128}


def small(preset: str, **changes):
    config = get_config(preset, **SMALL, **changes)
    if preset != "classroom":
        config = config.replace(backbone_width=0.25, fpn_channels=32)
    torch.manual_seed(0)
    return RetinaNet(config).eval()


def outputs(model):
    B, K = 2, model.config.num_classes
    generator = torch.Generator().manual_seed(1)
    anchors = model.anchors((96, 128))
    N = anchors.shape[0]
    cls_logits = torch.randn(B, N, K, generator=generator) - 1.0  # (B, N, K)
    box_deltas = torch.randn(B, N, 4, generator=generator) * 0.2  # (B, N, 4)
    targets = [{"boxes": torch.tensor([[10.0, 12, 50, 60], [60, 20, 120, 90]]), "labels": torch.tensor([0, 2])},
               # a box smaller than every anchor: only a low-quality match gives it a positive anchor
               {"boxes": torch.tensor([[5.0, 5, 30, 40], [100, 70, 106, 76]]), "labels": torch.tensor([1, 0])}]
    return cls_logits, box_deltas, anchors, targets


@pytest.mark.parametrize("preset", PRESETS)
def test_compute_loss_passes_every_field_on(preset):
    model = small(preset)
    c = model.config
    cls_logits, box_deltas, anchors, targets = outputs(model)
    gt_boxes, gt_labels, gt_valid = pad_ground_truth([t["boxes"] for t in targets], [t["labels"] for t in targets])
    matched = match_anchors(anchors, gt_boxes, gt_valid, c.fg_iou, c.bg_iou, c.allow_low_quality_matches)
    expected = {
        "classification": classification_loss(cls_logits, matched, gt_labels, alpha=c.focal_alpha,
                                              gamma=c.focal_gamma, normalization=c.loss_normalization),
        "bbox_regression": box_loss(box_deltas, anchors, matched, gt_boxes, loss_type=c.box_loss,
                                    beta=c.smooth_l1_beta, weights=c.box_weights, clamp=c.box_delta_clamp,
                                    normalization=c.loss_normalization),
    }
    got = model.compute_loss(cls_logits, box_deltas, anchors, targets)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)


# Fields whose change must change the losses (with the values to change them to).
LOSS_FIELDS = {
    "fg_iou": 0.6, "bg_iou": 0.3, "allow_low_quality_matches": None, "focal_alpha": 0.5, "focal_gamma": 1.0,
    "box_weights": (10.0, 10.0, 5.0, 5.0), "loss_normalization": None, "box_loss": None,
}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("field", LOSS_FIELDS)
def test_each_loss_field_changes_the_loss(preset, field):
    base = small(preset)
    value = LOSS_FIELDS[field]
    current = getattr(base.config, field)
    if value is None:  # a choice: take another one
        value = {"allow_low_quality_matches": not current,
                 "loss_normalization": "per_batch" if current == "per_image" else "per_image",
                 "box_loss": "smooth_l1" if current != "smooth_l1" else "l1"}[field]
    changed = small(preset, **{field: value})
    cls_logits, box_deltas, anchors, targets = outputs(base)
    before = base.compute_loss(cls_logits, box_deltas, anchors, targets)
    after = changed.compute_loss(cls_logits, box_deltas, anchors, targets)
    assert any(not torch.equal(before[k], after[k]) for k in before), f"{preset}: {field}={value!r} changed nothing"


@pytest.mark.parametrize("preset", PRESETS)
def test_postprocess_passes_every_field_on(preset):
    model = small(preset, score_thresh=0.2, topk_candidates=50, nms_thresh=0.4, detections_per_img=20)
    c = model.config
    cls_logits, box_deltas, anchors, _ = outputs(model)
    sizes = [(96, 128), (90, 120)]
    expected = detections_from_outputs(cls_logits, box_deltas, anchors, model.num_anchors_per_level((96, 128)), sizes,
                                       score_thresh=c.score_thresh, topk_candidates=c.topk_candidates,
                                       nms_thresh=c.nms_thresh, detections_per_img=c.detections_per_img,
                                       box_weights=c.box_weights, box_delta_clamp=c.box_delta_clamp)
    got = model.postprocess(cls_logits, box_deltas, (96, 128), sizes)
    for e, g in zip(expected, got):
        assert 0 < len(g["scores"]) <= 20
        for key in e:
            assert torch.equal(e[key], g[key])
    for field, value in {"score_thresh": 0.85, "topk_candidates": 5, "nms_thresh": 0.2, "detections_per_img": 3,
                         "box_weights": (10.0, 10.0, 5.0, 5.0), "box_delta_clamp": 0.1}.items():
        other = dataclasses.replace(c, **{field: value})
        model.config = other
        changed = model.postprocess(cls_logits, box_deltas, (96, 128), sizes)
        model.config = c
        same = all(a[key].shape == b[key].shape and torch.equal(a[key], b[key])
                   for a, b in zip(got, changed) for key in a)
        assert not same, f"{preset}: {field}={value!r} changed nothing"
