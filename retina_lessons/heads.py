"""The two subnets: classification (K sigmoid scores per anchor) and box regression (4 deltas).

Paper, Section 4 ("Classification Subnet", "Box Regression Subnet"): each subnet is a small FCN shared across pyramid levels: four 3x3 convolutions
with C channels and ReLU, then a 3x3 convolution with A*K (classification) or A*4 (boxes) outputs.
The classification output uses one sigmoid per class (no background class). Initialisation
(Section 4.1): weights ~ N(0, 0.01), biases 0, except the final classification bias,
b = -log((1 - pi) / pi) with pi = 0.01, so every anchor starts with foreground probability ~0.01 and
the ~100k easy negatives do not swamp the first iterations. torchvision v2 adds GroupNorm to the
towers (its convolutions then have no bias).

Taught in ``notebooks/03_subnets.ipynb``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import GROUP_NORM_GROUPS, PRIOR_PROB

INIT_STD = 0.01


def prior_bias(prior_prob: float = PRIOR_PROB) -> float:
    """The classification bias that makes sigmoid(bias) = prior_prob."""
    return -math.log((1 - prior_prob) / prior_prob)


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm that also accepts a group holding a single value.

    With one channel per group, a 1 x 1 map and one image (P7 of a 128-pixel image through a
    32-channel head, at inference) every group has one value: normalised, it is 0, so the output is
    the bias. nn.GroupNorm refuses that case ("Expected more than 1 value per channel"); the
    underlying op computes it. Same parameters, same state dict, same values everywhere else.
    """

    def forward(self, input: Tensor) -> Tensor:
        return torch.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)


def conv_tower(channels: int, num_convs: int = 4, norm: str | None = None) -> nn.Sequential:
    """num_convs blocks of [3x3 conv, (GroupNorm), ReLU], all with `channels` channels."""
    blocks = []
    for _ in range(num_convs):
        layers = [nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=norm is None)]
        if norm == "group":
            layers.append(GroupNorm(GROUP_NORM_GROUPS, channels))
        layers.append(nn.ReLU(inplace=True))
        blocks.append(nn.Sequential(*layers))
    return nn.Sequential(*blocks)


def flatten_level(output: Tensor, num_values: int) -> Tensor:
    """(B, A * num_values, H, W) -> (B, H * W * A, num_values): location-major, then anchor."""
    B, _, H, W = output.shape
    output = output.view(B, -1, num_values, H, W)  # (B, A, V, H, W)
    output = output.permute(0, 3, 4, 1, 2)  # (B, H, W, A, V)
    return output.reshape(B, -1, num_values)  # (B, H*W*A, V)


class _Subnet(nn.Module):
    def __init__(self, channels: int, num_anchors: int, num_values: int, num_convs: int, norm: str | None,
                 final_bias: float) -> None:
        super().__init__()
        if norm not in (None, "group"):
            raise ValueError(f"norm={norm!r}: expected None or 'group'")
        self.tower = conv_tower(channels, num_convs, norm)
        self.predictor = nn.Conv2d(channels, num_anchors * num_values, kernel_size=3, padding=1)
        self.num_values = num_values
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=INIT_STD)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        nn.init.constant_(self.predictor.bias, final_bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        """Shared across levels: [P3..P7] -> (B, N, num_values), levels concatenated."""
        return torch.cat([flatten_level(self.predictor(self.tower(p)), self.num_values) for p in features], dim=1)


class ClassificationHead(_Subnet):
    """[P3..P7] -> cls_logits (B, N, K)."""

    def __init__(self, channels: int, num_anchors: int, num_classes: int, num_convs: int = 4,
                 norm: str | None = None, prior_prob: float = PRIOR_PROB) -> None:
        super().__init__(channels, num_anchors, num_classes, num_convs, norm, prior_bias(prior_prob))


class BoxHead(_Subnet):
    """[P3..P7] -> box_deltas (B, N, 4)."""

    def __init__(self, channels: int, num_anchors: int, num_convs: int = 4, norm: str | None = None) -> None:
        super().__init__(channels, num_anchors, 4, num_convs, norm, 0.0)
