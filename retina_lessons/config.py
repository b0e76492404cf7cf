"""One configuration for the whole detector, and the presets the lessons use.

Components take plain arguments; only the builder, ``RetinaNet(config)``, reads a config.
The presets:

- ``PAPER``: Lin et al. 2017 (80 COCO classes, P6 from C5, smooth L1 box loss, each box's best anchors
  foreground by the RPN assignment rule), with Detectron's code where the paper says nothing or less:
  the smooth L1 beta 0.11, anchors centred in their cell, 100 detections per image, and the loss
  normalised by the foreground anchors of the whole batch (Detectron sums them over a GPU's images; the
  paper's text normalises each image's loss by its own count, as ``"per_image"`` does).
- ``TORCHVISION_V1`` / ``TORCHVISION_V2``: ``retinanet_resnet50_fpn`` and ``retinanet_resnet50_fpn_v2``,
  reproduced exactly (P6 from P5 / C5, L1 / GIoU box loss, GroupNorm heads in v2, torchvision's anchor
  rounding, 300 detections per image; the backbone's BatchNorm frozen in v1, as it is built with
  pretrained weights, and trained in v2, which torchvision builds with plain BatchNorm2d in every case).
- ``CLASSROOM``: this project's small detector that trains from scratch on the synthetic shapes on a
  2-core CPU (about a minute on a quiet 2-core machine; lesson 07 prints the time on yours and explains
  every choice).

Taught in ``notebooks/00_overview.ipynb`` and used by every lesson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .validation import check_int, check_iou_thresholds, check_number, check_numbers

# The paper's constants (Sections 3.3, 4 and 4.1) and the implementations' (labelled), named once.
PRIOR_PROB = 0.01  # pi: initial foreground probability of every anchor
FG_IOU = 0.5  # anchors with IoU >= FG_IOU are foreground ...
BG_IOU = 0.4  # ... IoU < BG_IOU background, in between ignored
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
NO_ALPHA = -1  # focal_alpha that switches the alpha weighting off (torchvision's convention)
SMOOTH_L1_BETA = 0.11  # Detectron's BBOX_REG_BETA for RetinaNet's smooth L1 box loss (not in the paper)
# The largest log-scale change a decoded box may make: Detectron's and torchvision's bbox_xform_clip (not in
# the paper).
BOX_DELTA_CLAMP = math.log(1000.0 / 16)
GROUP_NORM_GROUPS = 32  # GroupNorm groups in the heads (torchvision v2) and GroupNorm backbones
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's input normalisation (ImageNet statistics, RGB in [0, 1])
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
NUM_LEVELS = 5  # pyramid levels P3-P7, one anchor size each


@dataclass(frozen=True)
class RetinaNetConfig:
    """Every choice that defines a RetinaNet.

    The defaults are torchvision's ``retinanet_resnet50_fpn`` (91 COCO category ids, L1 box loss, 300
    detections per image) except ``p6_from``, the paper's C5; the presets below set the rest.
    """

    num_classes: int = 91  # K: sigmoid outputs per anchor, no background class
    # --- backbone (Section 4, "Feature Pyramid Network Backbone") ---
    backbone: str = "resnet50"  # one of BACKBONES
    backbone_norm: str = "frozen_bn"  # "frozen_bn" (pretrained), "bn" or "group" (from scratch)
    trainable_layers: int = 3  # stages trained, counted from the top: 0 (none) .. 5 (all); 3 is torchvision's
    backbone_width: float = 1.0  # channel multiplier of every ResNet stage; < 1: narrower, from scratch only
    # --- feature pyramid ---
    fpn_channels: int = 256  # channels of every P level
    p6_from: str = "c5"  # "c5" (paper, torchvision v2) or "p5" (torchvision v1)
    # --- heads ---
    head_convs: int = 4  # 3x3 conv + ReLU layers in each subnet's tower
    head_norm: str | None = None  # None, or "group" (GroupNorm with 32 groups, torchvision v2)
    prior_prob: float = PRIOR_PROB
    # --- anchors (Section 4, "Anchors") ---
    anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512)  # base size on P3..P7
    anchor_scales: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    anchor_convention: str = "torchvision"  # "torchvision" (integer sizes, rounded, corner-aligned) or "centered"
    # --- matching (Section 4) ---
    fg_iou: float = FG_IOU
    bg_iou: float = BG_IOU
    allow_low_quality_matches: bool = True  # give each ground-truth box its best anchor(s)
    # --- box coding ---
    # (wx, wy, ww, wh): torchvision's RetinaNet uses 1s; (10, 10, 5, 5) is the Fast R-CNN heads' convention
    box_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    box_delta_clamp: float = BOX_DELTA_CLAMP
    # --- losses ---
    focal_alpha: float = FOCAL_ALPHA
    focal_gamma: float = FOCAL_GAMMA
    box_loss: str = "l1"  # "l1", "smooth_l1" or "giou"
    smooth_l1_beta: float = SMOOTH_L1_BETA
    # "per_image" (torchvision, and the paper's wording) or "per_batch" (Detectron's code), see losses.py
    loss_normalization: str = "per_image"
    # --- preprocessing ---
    min_size: int = 800  # shorter image side after resizing (the paper's largest scale, Table 1e) ...
    max_size: int = 1333  # ... unless the longer side would exceed this (Detectron's and torchvision's)
    size_divisible: int = 32  # batches are zero-padded to a multiple of this
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    # --- inference (Section 4.1, "Inference") ---
    score_thresh: float = 0.05
    topk_candidates: int = 1000  # per level, before NMS
    nms_thresh: float = 0.5
    detections_per_img: int = 300  # torchvision's; Detectron's (and COCO's evaluation limit): 100

    def __post_init__(self) -> None:
        """Every field checked at construction, naming the field, its value and what is expected."""
        choices = {
            "backbone": BACKBONES,
            "backbone_norm": ("frozen_bn", "bn", "group"),
            "p6_from": ("c5", "p5"),
            "head_norm": (None, "group"),
            "anchor_convention": ("torchvision", "centered"),
            "box_loss": ("l1", "smooth_l1", "giou"),
            "loss_normalization": ("per_image", "per_batch"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected one of {allowed}")
        check_int("num_classes", self.num_classes, 1)
        check_int("trainable_layers", self.trainable_layers, 0, 5)
        check_number("backbone_width", self.backbone_width, 0.0, 1.0, "a channel multiplier in (0, 1]",
                      low_open=True)
        check_int("fpn_channels", self.fpn_channels, 1)
        if self.head_norm == "group" and self.fpn_channels % GROUP_NORM_GROUPS:
            raise ValueError(f"fpn_channels={self.fpn_channels}: expected a multiple of {GROUP_NORM_GROUPS} "
                             f"with head_norm='group' (GroupNorm with {GROUP_NORM_GROUPS} groups)")
        check_int("head_convs", self.head_convs, 0)
        check_number("prior_prob", self.prior_prob, 0.0, 1.0, "a probability in (0, 1)", low_open=True,
                      high_open=True)
        check_numbers("anchor_sizes", self.anchor_sizes, NUM_LEVELS,
                       f"one positive size per pyramid level P3-P7 ({NUM_LEVELS})")
        check_numbers("anchor_scales", self.anchor_scales, None, "at least one positive scale")
        check_numbers("anchor_ratios", self.anchor_ratios, None, "at least one positive height / width ratio")
        check_iou_thresholds(self.fg_iou, self.bg_iou)
        if not isinstance(self.allow_low_quality_matches, bool):
            raise ValueError(f"allow_low_quality_matches={self.allow_low_quality_matches!r}: expected True or False")
        check_numbers("box_weights", self.box_weights, 4, "four positive weights (wx, wy, ww, wh)")
        check_number("box_delta_clamp", self.box_delta_clamp, 0.0, math.inf, "a positive log-scale limit",
                      low_open=True, high_open=True)
        if self.focal_alpha != NO_ALPHA:
            check_number("focal_alpha", self.focal_alpha, 0.0, 1.0,
                          f"alpha in [0, 1], or {NO_ALPHA} for no weighting")
        check_number("focal_gamma", self.focal_gamma, 0.0, math.inf, "a finite gamma >= 0", high_open=True)
        check_number("smooth_l1_beta", self.smooth_l1_beta, 0.0, math.inf, "a finite beta >= 0", high_open=True)
        check_int("min_size", self.min_size, 1)
        check_int("max_size", self.max_size, 1)
        check_int("size_divisible", self.size_divisible, 1)
        check_numbers("image_mean", self.image_mean, 3, "three finite channel means", positive=False)
        check_numbers("image_std", self.image_std, 3, "three positive channel standard deviations")
        check_number("score_thresh", self.score_thresh, 0.0, 1.0, "a score in [0, 1)", high_open=True)
        check_int("topk_candidates", self.topk_candidates, 1)
        check_number("nms_thresh", self.nms_thresh, 0.0, 1.0, "an IoU in [0, 1]")
        check_int("detections_per_img", self.detections_per_img, 1)

    @property
    def num_anchors(self) -> int:
        """A: anchors per location."""
        return len(self.anchor_scales) * len(self.anchor_ratios)

    def replace(self, **changes) -> RetinaNetConfig:
        """A copy with some fields changed (the config itself is frozen)."""
        return replace(self, **changes)


TORCHVISION_V1 = RetinaNetConfig(p6_from="p5")
# v1 loads its ImageNet backbone with FrozenBatchNorm2d; v2 keeps plain, trainable BatchNorm2d even when pretrained.
TORCHVISION_V2 = RetinaNetConfig(p6_from="c5", head_norm="group", box_loss="giou", backbone_norm="bn")
PAPER = RetinaNetConfig(
    num_classes=80,
    p6_from="c5",
    anchor_convention="centered",
    # allow_low_quality_matches stays on: the paper assigns anchors with "the assignment rule from RPN",
    # which gives each box its best anchors. (Detectron's roi_data/retinanet.py labels them foreground
    # but then sends any anchor below 0.4 IoU back to background; torchvision and this library keep
    # a box's best anchors whatever their IoU, lesson 05 shows the one exception.)
    box_loss="smooth_l1",
    loss_normalization="per_batch",
    detections_per_img=100,
)
# Trains from scratch on the synthetic shapes (128-pixel images) on 2 CPU cores: about a minute on a quiet
# 2-core machine. notebooks/07_training.ipynb prints the time on yours and explains each choice.
CLASSROOM = RetinaNetConfig(
    num_classes=3,
    backbone="resnet18",
    backbone_norm="bn",  # batch statistics: no pretrained weights to freeze
    trainable_layers=5,
    backbone_width=0.25,  # 16-128 channels instead of 64-512: the step time is what limits training
    fpn_channels=32,
    head_convs=2,
    head_norm="group",  # GroupNorm in the subnets (as torchvision v2): learned faster from scratch in the design runs
    anchor_sizes=(16, 32, 64, 128, 256),  # 16-406 px with the scales; the objects are 12-100 pixels
    anchor_ratios=(1.0,),  # the shapes' boxes are nearly square: 3 anchors per location instead of 9
    box_loss="giou",
    min_size=128,
    max_size=128,
    detections_per_img=100,
)

PRESETS = {
    "paper": PAPER,
    "torchvision_v1": TORCHVISION_V1,
    "torchvision_v2": TORCHVISION_V2,
    "classroom": CLASSROOM,
}


def get_config(name: str, **changes) -> RetinaNetConfig:
    """A preset by name (`paper`, `torchvision_v1`, `torchvision_v2`, `classroom`), optionally changed."""
    if name not in PRESETS:
        raise ValueError(f"name={name!r}: expected one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes)
