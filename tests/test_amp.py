"""Mixed precision: the losses under torch.autocast (CPU bfloat16) against torchvision's under the same autocast.

Both models hold the same weights (`to_torchvision`), so their heads give the same bfloat16 outputs. Our
losses upcast those outputs to float32; torchvision's focal loss rounds p = sigmoid(x) to bfloat16 inside
(1 - p_t) ** gamma and decodes GIoU boxes from bfloat16 anchors. Measured on these inputs: classification
within 0.35 % of torchvision's (L1 box loss identical, GIoU within 0.13 %); and equal to torchvision's loss
of the same head outputs in float32 to 1e-6, which is what ours computes.
"""

import pytest
import torch

from retina_lessons import RetinaNet, get_config
from retina_lessons.torchvision_compat import to_torchvision
from retina_lessons.training import TrainConfig, fit, mixed_precision

BF16_RTOL = 5e-3  # torchvision's bfloat16 rounding inside its loss (measured: up to 3.5e-3)
SMALL = {  # a torchvision-v1-like detector small enough for a test: ResNet-18, 128-px images, L1 box loss
    "classroom": get_config("classroom"),
    "torchvision_v1": get_config("torchvision_v1", backbone="resnet18", backbone_norm="bn", trainable_layers=5,
                                 num_classes=3, fpn_channels=64, min_size=128, max_size=128),
}


# Steps this small gain nothing from a second thread (and lose a lot on a busy machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch():
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 128, 128, generator=generator) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 20, 90, 120], [40, 30, 120, 110]]), "labels": torch.tensor([1, 2])},
               {"boxes": torch.tensor([[5.0, 5, 60, 50]]), "labels": torch.tensor([0])}]
    return images, targets


@pytest.fixture(scope="module", params=sorted(SMALL))
def pair(request):
    torch.manual_seed(0)
    ours = RetinaNet(SMALL[request.param])
    with torch.no_grad():  # spread the scores so the modulating factor matters
        ours.cls_head.predictor.weight.normal_(0, 0.05)
    return ours.train(), to_torchvision(ours).train()


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_losses_under_bf16_autocast_equal_torchvisions(pair):
    ours, tv = pair
    images, targets = batch()
    with bf16():
        expected = tv(images, targets)
        got = ours.loss(images, targets)
    for name in expected:
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], expected[name], rtol=BF16_RTOL, atol=0)


def test_losses_of_bf16_heads_are_torchvisions_in_float32(pair):
    """What ours computes exactly: torchvision's loss of the same (bfloat16) head outputs, upcast."""
    ours, tv = pair
    images, targets = batch()
    with bf16():
        padded, _, resized_targets = ours.preprocess(images, targets)
        cls_logits, box_deltas = ours(padded)
        assert cls_logits.dtype == torch.bfloat16  # autocast is on: the comparison is not vacuous
        anchors = ours.anchors(padded.shape[-2:], padded.dtype)
        got = ours.compute_loss(cls_logits, box_deltas, anchors, resized_targets)
        expected = tv.compute_loss(resized_targets, {"cls_logits": cls_logits.float(),
                                                     "bbox_regression": box_deltas.float()}, [anchors] * 2)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=0)


def test_gradients_under_bf16_are_finite(pair):
    ours, _ = pair
    ours.zero_grad()
    images, targets = batch()
    with bf16():
        losses = ours.loss(images, targets)
    sum(losses.values()).backward()
    grads = [p.grad for p in ours.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_saturated_logits_keep_the_focal_loss_finite_in_bf16():
    """Logits of +-300 (p rounds to exactly 0 or 1 in bfloat16): the log-space form stays finite."""
    from retina_lessons.losses import classification_loss

    cls_logits = torch.tensor([[[300.0, -300.0], [-300.0, 300.0]]], dtype=torch.bfloat16, requires_grad=True)
    matched = torch.tensor([[0, -1]])
    loss = classification_loss(cls_logits, matched, torch.tensor([[1]]), gamma=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(cls_logits.grad).all()


def test_classroom_training_steps_under_bf16_give_finite_weights():
    """At the classroom's 128 pixels. (At 64 pixels P6 is 1x1, and torch 2.15's CPU bfloat16 weight gradient of
    a stride-2 convolution on a 1x1 map is NaN, in torchvision's RetinaNet as in ours.)"""
    from retina_lessons.synthetic import ShapesDataset

    dataset = ShapesDataset(8, image_size=128, seed=5)
    torch.manual_seed(0)
    model = RetinaNet(get_config("classroom", backbone_width=0.125, head_convs=1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, dataset, TrainConfig(steps=3, batch_size=4, optimizer="adamw", lr=1e-3, warmup_steps=1,
                                              milestones=(), clip_grad_norm=10.0), progress=False, amp="bf16")
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert all(torch.isfinite(v.float()).all() for v in model.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fp16_is_refused_on_the_cpu_and_unknown_amp_named():
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device.*amp='bf16'"):
        mixed_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="amp='half'"):
        mixed_precision("half", torch.device("cpu"))
