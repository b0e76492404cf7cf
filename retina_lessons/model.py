"""RetinaNet assembled: backbone -> feature pyramid -> two subnets, plus anchors.

This module only wires the pieces of the other modules together:

- ``forward(batch)`` is pure: a normalised, padded batch (B, 3, H, W) in, raw head outputs
  ``cls_logits (B, N, K)`` and ``box_deltas (B, N, 4)`` out, the same in training and evaluation;
- ``loss(images, targets)`` is torchvision's training contract (preprocess, match, focal + box loss);
- ``detect(images)`` is torchvision's evaluation contract (preprocess, decode, NMS, map back);
- ``from_torchvision(tv_model)`` copies every weight and setting of a torchvision RetinaNet.

Taught in ``notebooks/03_subnets.ipynb`` (assembly) and ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .anchors import AnchorGenerator, feature_sizes
from .backbone import ResNetTaps
from .boxes import upcast
from .config import RetinaNetConfig
from .fpn import FeaturePyramid
from .heads import BoxHead, ClassificationHead
from .losses import box_loss, classification_loss
from .matching import match_anchors, pad_ground_truth
from .postprocess import detections_from_outputs
from .transform import check_resizable, postprocess_boxes, preprocess
from .validation import check_images, check_targets


class RetinaNet(nn.Module):
    """A one-stage dense detector (Lin et al. 2017), built from a `RetinaNetConfig`."""

    def __init__(self, config: RetinaNetConfig | None = None) -> None:
        super().__init__()
        config = config or RetinaNetConfig()
        self.config = config
        self.backbone = ResNetTaps(config.backbone, config.backbone_norm, config.trainable_layers,
                                   config.backbone_width)
        self.fpn = FeaturePyramid(self.backbone.out_channels, config.fpn_channels, config.p6_from)
        A = config.num_anchors
        self.cls_head = ClassificationHead(config.fpn_channels, A, config.num_classes, config.head_convs,
                                           config.head_norm, config.prior_prob)
        self.box_head = BoxHead(config.fpn_channels, A, config.head_convs, config.head_norm)
        self.anchor_generator = AnchorGenerator(config.anchor_sizes, config.anchor_scales, config.anchor_ratios,
                                                config.anchor_convention)
        # Channels-last is the layout oneDNN's CPU convolutions prefer (and CUDA's tensor cores):
        # the same numbers, computed 15-20% faster than in the default layout.
        self.to(memory_format=torch.channels_last)

    # ----- the network ------------------------------------------------------------------------
    def features(self, batch: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> [P3, P4, P5, P6, P7]."""
        return self.fpn(self.backbone(batch))

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) normalised, padded batch -> cls_logits (B, N, K), box_deltas (B, N, 4)."""
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"batch: expected shape (B, 3, H, W), got {tuple(batch.shape)}")
        pyramid = self.features(batch.contiguous(memory_format=torch.channels_last))
        return self.cls_head(pyramid), self.box_head(pyramid)

    def anchors(self, padded_size: tuple[int, int], dtype=torch.float32, device=None) -> Tensor:
        """The (N, 4) anchors of a batch padded to `padded_size` (H, W), in the order of `forward`."""
        return self.anchor_generator(padded_size, dtype=dtype, device=device)

    def num_anchors_per_level(self, padded_size: tuple[int, int]) -> list[int]:
        A = self.config.num_anchors
        return [h * w * A for h, w in feature_sizes(padded_size, self.anchor_generator.num_levels)]

    # ----- the two stages around it ------------------------------------------------------------
    def preprocess(self, images: list[Tensor], targets: list[dict] | None = None):
        """Resize, normalise and pad as configured -> (batch, image_sizes, targets)."""
        c = self.config
        return preprocess(images, targets, min_size=c.min_size, max_size=c.max_size, image_mean=c.image_mean,
                          image_std=c.image_std, size_divisible=c.size_divisible)

    def compute_loss(self, cls_logits: Tensor, box_deltas: Tensor, anchors_xyxy: Tensor,
                     targets: list[dict]) -> dict[str, Tensor]:
        """Head outputs of a batch and its (preprocessed) targets -> {"classification", "bbox_regression"}."""
        c = self.config
        gt_boxes, gt_labels, gt_valid = pad_ground_truth([t["boxes"] for t in targets],
                                                         [t["labels"] for t in targets])
        matched_gt_idx = match_anchors(anchors_xyxy, gt_boxes, gt_valid, c.fg_iou, c.bg_iou,
                                       c.allow_low_quality_matches)  # (B, N)
        return {
            "classification": classification_loss(cls_logits, matched_gt_idx, gt_labels, alpha=c.focal_alpha,
                                                   gamma=c.focal_gamma, normalization=c.loss_normalization),
            "bbox_regression": box_loss(box_deltas, anchors_xyxy, matched_gt_idx, gt_boxes, loss_type=c.box_loss,
                                        beta=c.smooth_l1_beta, weights=c.box_weights, clamp=c.box_delta_clamp,
                                        normalization=c.loss_normalization),
        }

    def loss(self, images: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        """Images (3, H, W) in [0, 1] and targets (`boxes` xyxy, `labels`) -> the two losses.

        Checked first (see :mod:`retina_lessons.validation`): images of another floating dtype are
        converted to the model's; boxes and labels from NumPy or of any real or integer dtype are cast;
        a box crossing its image's border is clipped to it, one wholly outside is refused.
        """
        images = check_images(images, dtype=self._dtype())
        check_resizable(images, self.config.min_size, self.config.max_size)
        targets = check_targets(targets, len(images), self.config.num_classes,
                                image_sizes=[tuple(image.shape[-2:]) for image in images], dtype=images[0].dtype)
        batch, _, targets = self.preprocess(images, targets)
        cls_logits, box_deltas = self(batch)
        anchors = self.anchors(batch.shape[-2:], batch.dtype, batch.device)
        return self.compute_loss(cls_logits, box_deltas, anchors, targets)

    def postprocess(self, cls_logits: Tensor, box_deltas: Tensor, padded_size: tuple[int, int],
                    image_sizes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Head outputs -> detections in the resized images' pixels."""
        c = self.config
        cls_logits, box_deltas = upcast(cls_logits), upcast(box_deltas)  # autocast's half precision -> float32
        anchors = self.anchors(padded_size, cls_logits.dtype, cls_logits.device)
        return detections_from_outputs(
            cls_logits, box_deltas, anchors, self.num_anchors_per_level(padded_size), image_sizes,
            score_thresh=c.score_thresh, topk_candidates=c.topk_candidates, nms_thresh=c.nms_thresh,
            detections_per_img=c.detections_per_img, box_weights=c.box_weights, box_delta_clamp=c.box_delta_clamp)

    @torch.no_grad()
    def detect(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Images (3, H, W) in [0, 1] of any sizes -> per image `boxes` (xyxy, own pixels), `scores`, `labels`.

        Images of another floating dtype are converted to the model's.
        """
        images = check_images(images, dtype=self._dtype())
        check_resizable(images, self.config.min_size, self.config.max_size)
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        batch, image_sizes, _ = self.preprocess(images)
        cls_logits, box_deltas = self(batch)
        detections = self.postprocess(cls_logits, box_deltas, batch.shape[-2:], image_sizes)
        return postprocess_boxes(detections, image_sizes, original_sizes)

    # ----- torchvision interoperability --------------------------------------------------------
    @classmethod
    def from_torchvision(cls, tv_model: nn.Module) -> RetinaNet:
        """An equivalent RetinaNet from torchvision's `retinanet_resnet50_fpn` / `_v2` (any num_classes)."""
        from .torchvision_compat import config_from_torchvision, state_dict_from_torchvision

        model = cls(config_from_torchvision(tv_model))
        model.load_state_dict(state_dict_from_torchvision(tv_model.state_dict()))
        return model.to(next(tv_model.parameters()).device)
