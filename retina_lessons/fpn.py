"""The Feature Pyramid Network: P3..P5 from C3..C5 by a top-down pathway, plus P6 and P7.

Paper, Section 4 ("Feature Pyramid Network Backbone") and its footnote: P3-P5 are computed from C3-C5 with lateral 1x1 convolutions and a
top-down pathway (nearest-neighbour upsampling and addition), each merged map smoothed by a 3x3
convolution; P6 is a 3x3 stride-2 convolution on C5, and P7 applies ReLU then a 3x3 stride-2
convolution on P6. torchvision v1 computes P6 from P5 instead (``p6_from="p5"``).

Taught in ``notebooks/02_feature_pyramid.ipynb``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def top_down_merge(laterals: list[Tensor]) -> list[Tensor]:
    """Merge lateral maps [L3, L4, L5] top-down: M5 = L5, M_l = L_l + upsample(M_{l+1}) to L_l's size."""
    merged = [laterals[-1]]
    for lateral in reversed(laterals[:-1]):
        upsampled = F.interpolate(merged[0], size=lateral.shape[-2:], mode="nearest")  # exact size, odd too
        merged.insert(0, lateral + upsampled)
    return merged


class FeaturePyramid(nn.Module):
    """[C3, C4, C5] -> [P3, P4, P5, P6, P7], every level with `out_channels` channels."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int = 256, p6_from: str = "c5") -> None:
        super().__init__()
        if p6_from not in ("c5", "p5"):
            raise ValueError(f"p6_from={p6_from!r}: expected 'c5' (paper) or 'p5' (torchvision v1)")
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, kernel_size=1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
                                    for _ in in_channels)
        self.p6_from = p6_from
        self.p6 = nn.Conv2d(in_channels[-1] if p6_from == "c5" else out_channels, out_channels, 3, stride=2, padding=1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
        self.out_channels = out_channels
        for conv in self.modules():  # torchvision's initialisation
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_uniform_(conv.weight, a=1)
                nn.init.zeros_(conv.bias)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        c5 = features[-1]
        laterals = [conv(c) for conv, c in zip(self.lateral, features)]
        merged = top_down_merge(laterals)
        p3, p4, p5 = (conv(m) for conv, m in zip(self.output, merged))
        p6 = self.p6(c5 if self.p6_from == "c5" else p5)
        p7 = self.p7(F.relu(p6))
        return [p3, p4, p5, p6, p7]
