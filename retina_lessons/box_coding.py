"""Box coding: a ground-truth box as four deltas relative to its anchor, and back.

For an anchor with centre (x_a, y_a) and size (w_a, h_a) and a box (x, y, w, h), the regression
targets are (Fast R-CNN's parameterisation, used by the paper, Section 4 "Box Regression"):

    t_x = w_x (x - x_a) / w_a      t_y = w_y (y - y_a) / h_a
    t_w = w_w log(w / w_a)         t_h = w_h log(h / h_a)

with weights (w_x, w_y, w_w, w_h): (1, 1, 1, 1) in torchvision's RetinaNet; (10, 10, 5, 5) is the
"std (0.1, 0.1, 0.2, 0.2)" convention of other detectors, which scales the targets up. Decoding clamps
t_w, t_h at log(1000 / 16) so exp() cannot blow up a box. Same arithmetic as torchvision's BoxCoder.

Taught in ``notebooks/05_matching_and_box_coding.ipynb``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .boxes import upcast
from .config import BOX_DELTA_CLAMP

TORCHVISION_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
STD_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # the (0.1, 0.1, 0.2, 0.2) standard-deviation convention


def _centres_and_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    ctr_x = boxes[..., 0] + 0.5 * widths
    ctr_y = boxes[..., 1] + 0.5 * heights
    return ctr_x, ctr_y, widths, heights


def encode_boxes(gt_boxes: Tensor, anchors_xyxy: Tensor, weights=TORCHVISION_WEIGHTS) -> Tensor:
    """(..., 4) ground-truth boxes and their anchors -> (..., 4) deltas (t_x, t_y, t_w, t_h)."""
    wx, wy, ww, wh = weights
    anchor_x, anchor_y, anchor_w, anchor_h = _centres_and_sizes(anchors_xyxy)
    gt_x, gt_y, gt_w, gt_h = _centres_and_sizes(gt_boxes)
    return torch.stack(
        (
            wx * (gt_x - anchor_x) / anchor_w,
            wy * (gt_y - anchor_y) / anchor_h,
            ww * torch.log(gt_w / anchor_w),
            wh * torch.log(gt_h / anchor_h),
        ),
        dim=-1,
    )


def decode_boxes(box_deltas: Tensor, anchors_xyxy: Tensor, weights=TORCHVISION_WEIGHTS,
                 clamp: float = BOX_DELTA_CLAMP) -> Tensor:
    """(..., 4) deltas and their anchors -> (..., 4) xyxy boxes; the inverse of `encode_boxes`."""
    wx, wy, ww, wh = weights
    box_deltas = upcast(box_deltas)  # half precision (autocast) decodes in float32: anchors need its range
    anchor_x, anchor_y, anchor_w, anchor_h = _centres_and_sizes(anchors_xyxy.to(box_deltas.dtype))
    dx = box_deltas[..., 0] / wx
    dy = box_deltas[..., 1] / wy
    dw = (box_deltas[..., 2] / ww).clamp(max=clamp)
    dh = (box_deltas[..., 3] / wh).clamp(max=clamp)
    pred_x = dx * anchor_w + anchor_x
    pred_y = dy * anchor_h + anchor_y
    half_w = 0.5 * (torch.exp(dw) * anchor_w)
    half_h = 0.5 * (torch.exp(dh) * anchor_h)
    return torch.stack((pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h), dim=-1)
