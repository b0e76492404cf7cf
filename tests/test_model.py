"""RetinaNet as a whole: same weights in as torchvision's RetinaNet, same detections and losses out."""

import pytest
import torch
from torchvision.models.detection import retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2

from retina_lessons import CLASSROOM, RetinaNet, get_config

NUM_CLASSES = 5
IMAGES_HW = [(241, 333), (300, 199), (97, 130)]  # odd sizes, different aspect ratios


def randomised(builder):
    """A torchvision RetinaNet with non-trivial random weights and BatchNorm statistics.

    The default initialisation gives every anchor a score of ~0.01 (below the 0.05 threshold), which
    would leave nothing to compare; the heads are re-drawn so that hundreds of boxes survive.
    """
    torch.manual_seed(0)
    tv = builder(weights=None, weights_backbone=None, num_classes=NUM_CLASSES, min_size=224, max_size=320)
    v2 = builder is retinanet_resnet50_fpn_v2
    with torch.no_grad():
        for module in tv.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
        tv.head.classification_head.cls_logits.bias.fill_(-1.5)
        tv.head.classification_head.cls_logits.weight.normal_(0, 0.05 if v2 else 0.002)
        tv.head.regression_head.bbox_reg.weight.normal_(0, 0.02)
    return tv.eval()


def frozen_train_mode(tv):
    """torchvision's training forward with its BatchNorms in inference mode (what FrozenBatchNorm does)."""
    tv.train()
    for module in tv.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    return tv


@pytest.fixture(scope="module", params=[retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2], ids=["v1", "v2"])
def pair(request):
    """torchvision's model and ours, in float64: rounding differences of float32 (~1e-7) could
    otherwise reorder two nearly tied scores and change which of two boxes survives NMS."""
    tv = randomised(request.param)
    return tv.double(), RetinaNet.from_torchvision(tv).double().eval()


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(3, h, w, generator=generator, dtype=torch.float64) for h, w in IMAGES_HW]


def test_from_torchvision_reads_every_setting(pair):
    tv, ours = pair
    c = ours.config
    assert c.num_classes == NUM_CLASSES and c.backbone == "resnet50"
    assert c.p6_from == ("p5" if tv.backbone.fpn.extra_blocks.use_P5 else "c5")
    assert c.box_loss == tv.head.regression_head._loss_type
    assert (c.min_size, c.max_size, c.detections_per_img) == (224, 320, 300)
    assert c.head_norm == ("group" if c.box_loss == "giou" else None)
    assert c.backbone_norm == "bn"  # built without weights, both use plain BatchNorm2d (v2 does with them too)
    assert sum(p.numel() for p in ours.parameters()) + sum(
        b.numel() for n, b in ours.named_buffers() if not n.endswith("num_batches_tracked")
    ) == sum(v.numel() for k, v in tv.state_dict().items() if not k.endswith("num_batches_tracked"))


def test_head_outputs_match(pair, images):
    tv, ours = pair
    image_list, _ = tv.transform(images)
    batch, sizes, _ = ours.preprocess(images)
    torch.testing.assert_close(batch, image_list.tensors, rtol=0, atol=0)
    assert sizes == [tuple(s) for s in image_list.image_sizes]
    with torch.no_grad():
        expected = tv.head(list(tv.backbone(batch).values()))
        cls_logits, box_deltas = ours(batch)
    torch.testing.assert_close(cls_logits, expected["cls_logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(box_deltas, expected["bbox_regression"], rtol=1e-4, atol=1e-4)


def test_detections_match(pair, images):
    tv, ours = pair
    with torch.no_grad():
        expected = tv(images)
    got = ours.detect(images)
    for exp, det in zip(expected, got):
        assert len(exp["boxes"]) > 50  # the comparison is not vacuous
        assert torch.equal(det["labels"], exp["labels"])
        torch.testing.assert_close(det["boxes"], exp["boxes"], rtol=0, atol=0.01)
        torch.testing.assert_close(det["scores"], exp["scores"], rtol=0, atol=1e-4)


def test_losses_match_including_an_image_without_boxes(pair, images):
    tv, ours = pair
    targets = [
        {"boxes": torch.tensor([[10.0, 20, 100, 150], [50, 60, 200, 230], [5, 5, 30, 18]], dtype=torch.float64),
         "labels": torch.tensor([1, 3, 0])},
        {"boxes": torch.zeros(0, 4, dtype=torch.float64), "labels": torch.zeros(0, dtype=torch.int64)},
        {"boxes": torch.tensor([[0.0, 0, 129, 96]], dtype=torch.float64), "labels": torch.tensor([4])},
    ]
    expected = frozen_train_mode(tv)(images, targets)
    tv.eval()
    got = ours.loss(images, targets)
    assert set(got) == {"classification", "bbox_regression"}
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=0)


def test_loss_backward_gives_finite_gradients_to_trainable_parameters():
    model = RetinaNet(CLASSROOM)
    images = [torch.rand(3, 128, 128), torch.rand(3, 128, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 10, 60, 70]]), "labels": torch.tensor([2])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = model.loss(images, targets)
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_forward_is_the_same_in_train_and_eval_mode():
    model = RetinaNet(get_config("torchvision_v1", backbone="resnet18", num_classes=3))
    batch = torch.randn(1, 3, 64, 96)
    out_eval = model.eval()(batch)
    out_train = model.train()(batch)
    for a, b in zip(out_eval, out_train):
        torch.testing.assert_close(a, b)


def test_anchors_follow_the_feature_maps():
    model = RetinaNet(get_config("paper", backbone="resnet18"))
    batch = torch.randn(2, 3, 160, 224)
    cls_logits, box_deltas = model(batch)
    anchors = model.anchors(batch.shape[-2:])
    assert cls_logits.shape == (2, anchors.shape[0], 80)
    assert box_deltas.shape == (2, anchors.shape[0], 4)
    sizes = [p.shape[-2:] for p in model.features(batch)]
    assert sum(h * w * 9 for h, w in sizes) == anchors.shape[0] == sum(model.num_anchors_per_level((160, 224)))


def test_detect_on_images_without_detections_returns_empty_results():
    model = RetinaNet(CLASSROOM).eval()  # the prior keeps every score near 0.01 < 0.05
    detections = model.detect([torch.rand(3, 100, 130), torch.rand(3, 128, 128)])
    for det in detections:
        assert det["boxes"].shape == (0, 4) and det["scores"].shape == (0,) and det["labels"].shape == (0,)


@pytest.mark.parametrize(
    "images, targets, match",
    [
        ([], None, "images"),
        (torch.rand(1, 3, 64, 64), None, "images"),
        ([torch.rand(64, 64)], None, r"images\[0\]"),
        ([torch.rand(1, 64, 64)], None, r"images\[0\]"),
        ([torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)], None, "floating"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[30.0, 10, 20, 40]]), "labels": torch.tensor([0])}],
         r"targets\[0\]\['boxes'\]\[0\].*x1 < x2"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[10.0, 10, 20, 40]]), "labels": torch.tensor([3])}],
         r"targets\[0\]\['labels'\]\[0\] = 3.*\[0, 3\)"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[10.0, 10, 20, 40]]), "labels": torch.tensor([-1])}],
         "labels"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([10.0, 10, 20, 40]), "labels": torch.tensor([0])}],
         r"\(M, 4\)"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[10.0, 10, 20, float("nan")]]),
                                    "labels": torch.tensor([0])}], "finite"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[10.0, 10, 20, 40]])}], "labels"),
        ([torch.rand(3, 64, 64)], [], "one target per image"),
        ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[10.0, 10, 20, 40]]),
                                    "labels": torch.tensor([0, 1])}], "one label per box"),
    ],
)
def test_bad_input_raises_a_clear_value_error(images, targets, match):
    model = RetinaNet(CLASSROOM)
    with pytest.raises(ValueError, match=match):
        if targets is None:
            model.detect(images)
        else:
            model.loss(images, targets)


def test_bad_batch_for_forward_raises():
    with pytest.raises(ValueError, match="batch"):
        RetinaNet(CLASSROOM)(torch.rand(3, 64, 64))


@pytest.mark.parametrize("preset", ["classroom", "torchvision_v2"])
def test_to_torchvision_round_trip_gives_the_same_detections_and_losses(preset):
    from retina_lessons.torchvision_compat import to_torchvision

    config = get_config(preset) if preset == "classroom" else get_config(
        preset, backbone="resnet18", num_classes=4, min_size=160, max_size=200)
    model = RetinaNet(config).eval()
    with torch.no_grad():
        model.cls_head.predictor.bias.fill_(-1.0)
        model.cls_head.predictor.weight.normal_(0, 0.05)
    tv = to_torchvision(model).eval()
    images = [torch.rand(3, 128, 128), torch.rand(3, 120, 100)]
    with torch.no_grad():
        expected, got = tv(images), model.detect(images)
    for e, g in zip(expected, got):
        assert len(e["boxes"]) > 10
        assert torch.equal(e["labels"], g["labels"])
        torch.testing.assert_close(g["boxes"], e["boxes"], rtol=0, atol=0.01)
    targets = [{"boxes": torch.tensor([[10.0, 10, 60, 70]]), "labels": torch.tensor([2])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    expected = frozen_train_mode(tv)(images, targets)
    got = model.loss(images, targets)
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=0)


def test_to_torchvision_refuses_what_torchvision_cannot_express():
    from retina_lessons.torchvision_compat import to_torchvision

    with pytest.raises(ValueError, match="anchor_convention"):
        to_torchvision(RetinaNet(get_config("paper", backbone="resnet18")))
