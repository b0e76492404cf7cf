"""Reading a torchvision RetinaNet: its settings as a `RetinaNetConfig`, its weights under our names.

Used by `RetinaNet.from_torchvision`. The mapping is written out so a reader can see, line by line,
which torchvision module each of ours corresponds to. The backbone's normalisation is read as it is:
``retinanet_resnet50_fpn`` (v1) uses ``FrozenBatchNorm2d`` when pretrained weights are loaded and plain
``BatchNorm2d`` without them; ``retinanet_resnet50_fpn_v2`` always uses plain ``BatchNorm2d``, pretrained
or not. Frozen becomes ``backbone_norm="frozen_bn"``, plain ``"bn"`` (trained, with batch statistics in
training mode, exactly as torchvision's).

Taught in ``notebooks/03_subnets.ipynb``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck
from torchvision.ops import FrozenBatchNorm2d

from .backbone import TRAINABLE_ORDER
from .config import RetinaNetConfig

BLOCKS_TO_RESNET = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}
TV_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))  # what `_default_anchorgen` multiplies each base size by

# torchvision state-dict prefix -> ours (longest prefixes first).
PREFIXES = (
    ("backbone.fpn.extra_blocks.p6.", "fpn.p6."),
    ("backbone.fpn.extra_blocks.p7.", "fpn.p7."),
    ("head.classification_head.cls_logits.", "cls_head.predictor."),
    ("head.classification_head.conv.", "cls_head.tower."),
    ("head.regression_head.bbox_reg.", "box_head.predictor."),
    ("head.regression_head.conv.", "box_head.tower."),
    ("backbone.body.", "backbone."),
)


def _map_key(key: str) -> str:
    for tv_prefix, our_prefix in PREFIXES:
        if key.startswith(tv_prefix):
            return our_prefix + key[len(tv_prefix):]
    for tv_name, our_name in (("inner_blocks", "lateral"), ("layer_blocks", "output")):
        prefix = f"backbone.fpn.{tv_name}."
        if key.startswith(prefix):  # backbone.fpn.inner_blocks.{i}.0.weight -> fpn.lateral.{i}.weight
            level, _, rest = key[len(prefix):].split(".", 2)
            return f"fpn.{our_name}.{level}.{rest}"
    raise ValueError(f"state_dict key {key!r}: not part of a torchvision RetinaNet")


def state_dict_from_torchvision(tv_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision RetinaNet state dict under our module names."""
    return {_map_key(key): value for key, value in tv_state.items() if not key.endswith("num_batches_tracked")}


def config_from_torchvision(tv_model: nn.Module) -> RetinaNetConfig:
    """Every setting of a torchvision RetinaNet that changes its outputs or losses, as a config."""
    body, fpn, head = tv_model.backbone.body, tv_model.backbone.fpn, tv_model.head
    blocks = tuple(len(getattr(body, f"layer{i}")) for i in range(1, 5))
    key = (blocks, isinstance(body.layer1[0], Bottleneck))
    if key not in BLOCKS_TO_RESNET:
        raise ValueError(f"tv_model: backbone with blocks {blocks} is not a torchvision ResNet")
    if isinstance(body.bn1, nn.GroupNorm):
        raise ValueError("tv_model: GroupNorm backbones are not torchvision RetinaNets")

    gen = tv_model.anchor_generator
    base_sizes = tuple(sizes[0] for sizes in gen.sizes)
    expected = tuple(tuple(int(b * s) for s in TV_SCALES) for b in base_sizes)
    if tuple(tuple(s) for s in gen.sizes) != expected:
        raise ValueError(f"tv_model.anchor_generator.sizes={gen.sizes}: expected base * {{2^0, 2^1/3, 2^2/3}}")
    ratios = tuple(gen.aspect_ratios[0])
    if any(tuple(r) != ratios for r in gen.aspect_ratios):
        raise ValueError("tv_model.anchor_generator.aspect_ratios: expected the same ratios on every level")

    cls_convs = [m for m in head.classification_head.conv.modules() if isinstance(m, nn.Conv2d)]
    has_group_norm = any(isinstance(m, nn.GroupNorm) for m in head.classification_head.modules())
    trainable = sum(any(p.requires_grad for p in getattr(body, part).parameters()) for part in TRAINABLE_ORDER)
    transform = tv_model.transform
    return RetinaNetConfig(
        num_classes=head.classification_head.num_classes,
        backbone=BLOCKS_TO_RESNET[key],
        backbone_norm="frozen_bn" if isinstance(body.bn1, FrozenBatchNorm2d) else "bn",
        trainable_layers=trainable,
        fpn_channels=tv_model.backbone.out_channels,
        p6_from="p5" if fpn.extra_blocks.use_P5 else "c5",
        head_convs=len(cls_convs),
        head_norm="group" if has_group_norm else None,
        anchor_sizes=base_sizes,
        anchor_scales=TV_SCALES,
        anchor_ratios=ratios,
        anchor_convention="torchvision",
        fg_iou=tv_model.proposal_matcher.high_threshold,
        bg_iou=tv_model.proposal_matcher.low_threshold,
        allow_low_quality_matches=tv_model.proposal_matcher.allow_low_quality_matches,
        box_weights=tuple(tv_model.box_coder.weights),
        box_delta_clamp=tv_model.box_coder.bbox_xform_clip,
        box_loss=head.regression_head._loss_type,
        smooth_l1_beta=1.0,  # torchvision's _box_loss default
        loss_normalization="per_image",
        min_size=transform.min_size[-1],
        max_size=transform.max_size,
        size_divisible=transform.size_divisible,
        image_mean=tuple(transform.image_mean),
        image_std=tuple(transform.image_std),
        score_thresh=tv_model.score_thresh,
        topk_candidates=tv_model.topk_candidates,
        nms_thresh=tv_model.nms_thresh,
        detections_per_img=tv_model.detections_per_img,
    )




class _TorchvisionBackbone(nn.Module):
    """Our ResNet taps under torchvision's FeaturePyramidNetwork: the backbone torchvision's RetinaNet expects."""

    def __init__(self, body: nn.Module, fpn_channels: int, p6_from: str) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        self.body = body
        extra = LastLevelP6P7(body.out_channels[-1] if p6_from == "c5" else fpn_channels, fpn_channels)
        self.fpn = FeaturePyramidNetwork(list(body.out_channels), fpn_channels, extra_blocks=extra)
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor):
        return self.fpn(dict(zip(("0", "1", "2"), self.body(x))))


def to_torchvision(model: nn.Module) -> nn.Module:
    """torchvision's `RetinaNet` with the same configuration and a copy of `model`'s weights.

    Used to measure both implementations side by side (``benchmarks/``) and in tests. Settings that
    torchvision cannot express (the centred anchor convention, per-batch normalisation, no low-quality
    matches, other focal-loss parameters) raise a ValueError.
    """
    import copy
    from functools import partial

    from torchvision.models.detection import RetinaNet as TorchvisionRetinaNet
    from torchvision.models.detection._utils import BoxCoder
    from torchvision.models.detection.anchor_utils import (
        AnchorGenerator as TorchvisionAnchorGenerator,
    )
    from torchvision.models.detection.retinanet import RetinaNetHead

    c = model.config
    unsupported = {
        "anchor_convention": (c.anchor_convention, "torchvision"),
        "loss_normalization": (c.loss_normalization, "per_image"),
        "allow_low_quality_matches": (c.allow_low_quality_matches, True),
        "focal_alpha": (c.focal_alpha, 0.25),
        "focal_gamma": (c.focal_gamma, 2.0),
    }
    for name, (value, needed) in unsupported.items():
        if value != needed:
            raise ValueError(f"config.{name}={value!r}: torchvision's RetinaNet supports only {needed!r}")
    if c.box_loss == "smooth_l1" and c.smooth_l1_beta != 1.0:
        raise ValueError(f"config.smooth_l1_beta={c.smooth_l1_beta}: torchvision's RetinaNet uses beta=1.0")

    backbone = _TorchvisionBackbone(copy.deepcopy(model.backbone), c.fpn_channels, c.p6_from)
    sizes = tuple(tuple(int(b * s) for s in c.anchor_scales) for b in c.anchor_sizes)
    anchor_generator = TorchvisionAnchorGenerator(sizes, (tuple(c.anchor_ratios),) * len(sizes))
    norm = partial(nn.GroupNorm, 32) if c.head_norm == "group" else None
    head = RetinaNetHead(c.fpn_channels, c.num_anchors, c.num_classes, norm_layer=norm)
    head.classification_head.conv = head.classification_head.conv[: c.head_convs]
    head.regression_head.conv = head.regression_head.conv[: c.head_convs]
    head.regression_head._loss_type = c.box_loss
    head.regression_head.box_coder = BoxCoder(c.box_weights, c.box_delta_clamp)
    tv = TorchvisionRetinaNet(
        backbone, c.num_classes, min_size=c.min_size, max_size=c.max_size, image_mean=list(c.image_mean),
        image_std=list(c.image_std), anchor_generator=anchor_generator, head=head, score_thresh=c.score_thresh,
        nms_thresh=c.nms_thresh, detections_per_img=c.detections_per_img, fg_iou_thresh=c.fg_iou,
        bg_iou_thresh=c.bg_iou, topk_candidates=c.topk_candidates)
    tv.box_coder = BoxCoder(c.box_weights, c.box_delta_clamp)
    tv.transform.size_divisible = c.size_divisible
    ours_to_tv = {_map_key(k): k for k in tv.state_dict() if not k.endswith("num_batches_tracked")}
    # BatchNorm's step counters (a "bn" backbone) change no output; the copied backbone keeps its own
    tv.load_state_dict({ours_to_tv[k]: v for k, v in model.state_dict().items()
                        if not k.endswith("num_batches_tracked")}, strict=False)
    missing = set(ours_to_tv) - set(model.state_dict())
    if missing:
        raise ValueError(f"model: weights without a torchvision counterpart: {sorted(missing)[:5]}")
    return tv.to(next(model.parameters()).device)
