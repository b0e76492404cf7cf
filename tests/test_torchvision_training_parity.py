"""Training as torchvision trains: which parameters learn, and one optimisation step of the v2 model.

torchvision builds ``retinanet_resnet50_fpn`` (v1) with FrozenBatchNorm2d when pretrained weights
are loaded, and ``retinanet_resnet50_fpn_v2`` with plain, trainable BatchNorm2d in every case. The
pretrained builds are reproduced here without downloading anything: the same calls torchvision's
builders make when ``weights_backbone`` is given (norm layer, ``_resnet_fpn_extractor`` with the
trainable stages, the heads).
"""

from functools import partial

import pytest
import torch
from torch import nn
from torchvision.models.detection import retinanet_resnet50_fpn_v2
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.retinanet import RetinaNet as TorchvisionRetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead, _default_anchorgen
from torchvision.models.resnet import resnet50
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from retina_lessons import TORCHVISION_V1, TORCHVISION_V2, RetinaNet
from retina_lessons.torchvision_compat import config_from_torchvision

NUM_CLASSES = 4


def pretrained_build(version: str, trainable_layers: int) -> nn.Module:
    """torchvision's RetinaNet as its builder makes it with pretrained backbone weights (random here)."""
    if version == "v1":
        backbone = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
        backbone = _resnet_fpn_extractor(backbone, trainable_layers, returned_layers=[2, 3, 4],
                                         extra_blocks=LastLevelP6P7(256, 256))
        return TorchvisionRetinaNet(backbone, NUM_CLASSES)
    backbone = resnet50(weights=None)  # plain BatchNorm2d, pretrained or not
    backbone = _resnet_fpn_extractor(backbone, trainable_layers, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(2048, 256))
    anchor_generator = _default_anchorgen()
    head = RetinaNetHead(backbone.out_channels, anchor_generator.num_anchors_per_location()[0], NUM_CLASSES,
                         norm_layer=partial(nn.GroupNorm, 32))
    head.regression_head._loss_type = "giou"
    return TorchvisionRetinaNet(backbone, NUM_CLASSES, anchor_generator=anchor_generator, head=head)


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("trainable_layers", range(6))
@pytest.mark.parametrize("version, preset", [("v1", TORCHVISION_V1), ("v2", TORCHVISION_V2)])
def test_trainable_parameters_equal_torchvisions(version, preset, trainable_layers):
    with torch.device("meta"):  # shapes and flags only: no memory, no random initialisation
        tv = pretrained_build(version, trainable_layers)
        ours = RetinaNet(preset.replace(num_classes=NUM_CLASSES, trainable_layers=trainable_layers))
    assert trainable(ours) == trainable(tv)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())
    norm = {"v1": FrozenBatchNorm2d, "v2": nn.BatchNorm2d}[version]
    assert isinstance(tv.backbone.body.bn1, norm)
    assert ours.config.backbone_norm == {"v1": "frozen_bn", "v2": "bn"}[version]
    # the same config, but for torchvision's default image size and the smooth-L1 beta its L1 / GIoU loss ignores
    read = config_from_torchvision(tv)
    assert read == ours.config.replace(min_size=800, max_size=1333, smooth_l1_beta=read.smooth_l1_beta)


def test_a_v2_training_step_equals_torchvisions():
    """Same weights in: the same losses in training mode (batch statistics), then after one SGD step the
    same weights and the same BatchNorm running statistics, frozen stages included."""
    torch.manual_seed(0)
    tv = retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=NUM_CLASSES, min_size=160,
                                   max_size=200, trainable_backbone_layers=None)
    with torch.no_grad():
        tv.head.classification_head.cls_logits.weight.normal_(0, 0.05)
    tv = tv.double()
    ours = RetinaNet.from_torchvision(tv).double()
    assert ours.config.backbone_norm == "bn" and ours.config.trainable_layers == 5
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 150, 170, generator=generator, dtype=torch.float64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 20, 90, 120], [40, 30, 160, 140]], dtype=torch.float64),
                "labels": torch.tensor([1, 3])},
               {"boxes": torch.tensor([[5.0, 5, 60, 50]], dtype=torch.float64), "labels": torch.tensor([0])}]
    tv.train()
    ours.train()
    tv_opt = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    our_opt = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    tv_losses, our_losses = tv(images, targets), ours.loss(images, targets)
    for name in our_losses:
        torch.testing.assert_close(our_losses[name], tv_losses[name], rtol=1e-6, atol=0)
    sum(tv_losses.values()).backward()
    sum(our_losses.values()).backward()
    tv_opt.step()
    our_opt.step()
    expected = RetinaNet.from_torchvision(tv).double().state_dict()
    got = ours.state_dict()
    moved = 0
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):  # a step counter: not copied, changes no output
            continue
        torch.testing.assert_close(got[key], value, rtol=1e-6, atol=1e-9, msg=lambda m, k=key: f"{k}: {m}")
    for key in got:
        if "running_mean" in key:  # batch statistics were taken in every stage, frozen or not
            moved += int(not torch.equal(got[key], torch.zeros_like(got[key])))
    assert moved > 50
