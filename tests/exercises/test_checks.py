"""The exercise checkers accept correct answers, reject the usual wrong ones, and never raise.

Each checker must accept its reference, torchvision's version where there is one, and a
hand-written student-style solution; and reject mistakes students really make, naming the
case that caught the mistake. The references themselves are compared with torchvision and
pycocotools at the end.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator

from retina_lessons.exercises import checks

CLIP = math.log(1000.0 / 16)


# --------------------------------------------------------------------------- helpers


def _pairwise_overlap(boxes1, boxes2):
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    return rb - lt  # (N, M, 2), negative where the boxes do not overlap


def _area(boxes, plus_one=0.0):
    return (boxes[:, 2] - boxes[:, 0] + plus_one) * (boxes[:, 3] - boxes[:, 1] + plus_one)


def _centres_sizes(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def _naive_nms(boxes, scores, iou_threshold, *, sort=True, suppress=None):
    """Loop NMS; ``suppress(iou, threshold)`` decides which boxes to drop."""
    suppress = suppress or (lambda iou, t: iou > t)
    order = scores.argsort(descending=True) if sort else torch.arange(len(scores))
    iou = torchvision.ops.box_iou(boxes, boxes)
    removed = torch.zeros(len(scores), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if removed[i]:
            continue
        keep.append(i)
        removed |= suppress(iou[i], iou_threshold)
    return torch.tensor(keep, dtype=torch.int64)


def _loop_anchors(
    feature_size,
    stride,
    sizes,
    aspect_ratios,
    *,
    offset=0.0,
    rounding=True,
    size_major=False,
    swap_xy=False,
    anchor_major=False,
    ratio_inverted=False,
):
    """Student-style anchors with loops; keyword flags switch on typical mistakes."""
    base = []
    pairs = (
        [(r, s) for s in sizes for r in aspect_ratios]
        if size_major
        else [(r, s) for r in aspect_ratios for s in sizes]
    )
    for ratio, size in pairs:
        h_ratio = math.sqrt(ratio)
        if ratio_inverted:
            h_ratio = 1 / h_ratio
        w, h = size / h_ratio, size * h_ratio
        box = torch.tensor([-w, -h, w, h]) / 2
        base.append(box.round() if rounding else box)
    base = torch.stack(base)  # (A, 4)
    H, W = feature_size
    centres = [((x + offset) * stride, (y + offset) * stride) for y in range(H) for x in range(W)]
    if swap_xy:
        centres = [(y * stride, x * stride) for y in range(H) for x in range(W)]
    shifts = torch.tensor([[cx, cy, cx, cy] for cx, cy in centres], dtype=torch.float32)
    if anchor_major:
        return (base[:, None, :] + shifts[None, :, :]).reshape(-1, 4)  # (A*H*W, 4)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # (H*W*A, 4)


def _np_ap(recall, precision, *, envelope=True, side="left", thresholds=None, zero_fill=True):
    recall = recall.numpy()
    precision = precision.numpy().copy()
    if envelope:
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    thresholds = np.linspace(0, 1, 101) if thresholds is None else thresholds
    inds = np.searchsorted(recall, thresholds, side=side)
    valid = inds < len(recall)
    sampled = precision[inds[valid]]
    if zero_fill:
        return float(np.concatenate([sampled, np.zeros((~valid).sum())]).mean())
    return float(sampled.mean()) if len(sampled) else 0.0


# --------------------------------------------------------------------------- box IoU


def iou_student(boxes1, boxes2):
    wh = _pairwise_overlap(boxes1, boxes2).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    return inter / (_area(boxes1)[:, None] + _area(boxes2)[None, :] - inter)


def iou_no_clamp(boxes1, boxes2):
    wh = _pairwise_overlap(boxes1, boxes2)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (_area(boxes1)[:, None] + _area(boxes2)[None, :] - inter)


def iou_union_keeps_intersection(boxes1, boxes2):
    wh = _pairwise_overlap(boxes1, boxes2).clamp(min=0)
    return wh[..., 0] * wh[..., 1] / (_area(boxes1)[:, None] + _area(boxes2)[None, :])


def iou_plus_one(boxes1, boxes2):
    wh = (_pairwise_overlap(boxes1, boxes2) + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (_area(boxes1, 1.0)[:, None] + _area(boxes2, 1.0)[None, :] - inter)


def iou_transposed(boxes1, boxes2):
    return iou_student(boxes2, boxes1)  # (M, N)


def iou_diagonal_only(boxes1, boxes2):
    n = min(len(boxes1), len(boxes2))
    lt = torch.max(boxes1[:n, :2], boxes2[:n, :2])
    rb = torch.min(boxes1[:n, 2:], boxes2[:n, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    return inter / (_area(boxes1[:n]) + _area(boxes2[:n]) - inter)  # (min(N, M),)


def iou_clamps_coordinates(boxes1, boxes2):
    return iou_student(boxes1.clamp(min=0), boxes2.clamp(min=0))


def iou_float32_loop(boxes1, boxes2):
    out = torch.zeros(len(boxes1), len(boxes2))
    for i in range(len(boxes1)):
        for j in range(len(boxes2)):
            out[i, j] = iou_student(boxes1[i : i + 1], boxes2[j : j + 1])[0, 0]
    return out


# --------------------------------------------------------------------------- focal loss


def focal_student(logits, targets, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    log_p_t = -ce
    alpha_t = torch.where(targets == 1, alpha, 1 - alpha)
    return alpha_t * (-torch.expm1(log_p_t)).clamp(min=0) ** gamma * ce


def focal_torchvision(logits, targets, alpha=0.25, gamma=2.0):
    return torchvision.ops.sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="none")


def _focal_parts(logits, targets):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return p, ce, p_t


def focal_no_alpha(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    return (1 - p_t) ** gamma * ce


def focal_alpha_on_both(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    return alpha * (1 - p_t) ** gamma * ce


def focal_alpha_swapped(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    alpha_t = (1 - alpha) * targets + alpha * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_log_of_probabilities(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_clamped_probabilities(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    ce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_gamma_on_p_t(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * p_t**gamma * ce


def focal_mean(logits, targets, alpha=0.25, gamma=2.0):
    return focal_torchvision(logits, targets, alpha, gamma).mean()


def focal_gamma_fixed(logits, targets, alpha=0.25, gamma=2.0):
    return focal_torchvision(logits, targets, alpha, 2.0)


# --------------------------------------------------------------------------- NMS


def nms_student(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold)


def nms_input_order(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, sort=False)


def nms_greater_equal(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, suppress=lambda iou, t: iou >= t)


def nms_inverted(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold, suppress=lambda iou, t: iou < t)


def nms_boolean_mask(boxes, scores, iou_threshold):
    mask = torch.zeros(len(scores), dtype=torch.bool)
    mask[_naive_nms(boxes, scores, iou_threshold)] = True
    return mask


def nms_sorted_positions(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    kept = _naive_nms(boxes[order], scores[order], iou_threshold)
    return kept  # positions in the sorted order, not indices into boxes


def nms_removed_boxes_suppress(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    iou = torchvision.ops.box_iou(boxes, boxes)
    keep = [
        i
        for rank, i in enumerate(order.tolist())
        if not (iou[i, order[:rank]] > iou_threshold).any()
    ]
    return torch.tensor(keep, dtype=torch.int64)


def nms_index_order(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold).sort().values


def nms_int32(boxes, scores, iou_threshold):
    return _naive_nms(boxes, scores, iou_threshold).to(torch.int32)


# --------------------------------------------------------------------------- anchors


def anchors_torchvision(feature_size, stride, sizes, aspect_ratios):
    generator = AnchorGenerator((tuple(sizes),), (tuple(aspect_ratios),))
    stride_t = torch.tensor(stride, dtype=torch.int64)
    return generator.grid_anchors([list(feature_size)], [[stride_t, stride_t]])[0]


def anchors_student(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios)


def anchors_half_stride(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, offset=0.5)


def anchors_not_rounded(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, rounding=False)


def anchors_size_major(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, size_major=True)


def anchors_xy_swapped(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, swap_xy=True)


def anchors_anchor_major(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, anchor_major=True)


def anchors_ratio_inverted(feature_size, stride, sizes, aspect_ratios):
    return _loop_anchors(feature_size, stride, sizes, aspect_ratios, ratio_inverted=True)


# --------------------------------------------------------------------------- box coding


def encode_torchvision(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights).encode_single(gt_boxes, anchors)


def encode_student(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    wx, wy, ww, wh = weights
    gx, gy, gw, gh = _centres_sizes(gt_boxes)
    ax, ay, aw, ah = _centres_sizes(anchors)
    return torch.stack(
        [
            wx * (gx - ax) / aw,
            wy * (gy - ay) / ah,
            ww * torch.log(gw / aw),
            wh * torch.log(gh / ah),
        ],
        dim=1,
    )


def encode_log_inverted(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    deltas = encode_student(gt_boxes, anchors, weights)
    return torch.cat([deltas[:, :2], -deltas[:, 2:]], dim=1)


def encode_centre_without_half(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    def corner_plus_size(boxes):
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        return boxes[:, 0] + w, boxes[:, 1] + h, w, h

    gx, gy, gw, gh = corner_plus_size(gt_boxes)
    ax, ay, aw, ah = corner_plus_size(anchors)
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)], 1)


def encode_weights_divided(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return encode_student(gt_boxes, anchors) / torch.tensor(weights)


def encode_arguments_swapped(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return encode_student(anchors, gt_boxes, weights)


def encode_sum_of_corners(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    gx, gy = gt_boxes[:, 0] + gt_boxes[:, 2], gt_boxes[:, 1] + gt_boxes[:, 3]
    ax, ay = anchors[:, 0] + anchors[:, 2], anchors[:, 1] + anchors[:, 3]
    deltas = encode_student(gt_boxes, anchors, weights)
    _, _, aw, ah = _centres_sizes(anchors)
    return torch.cat([torch.stack([(gx - ax) / aw, (gy - ay) / ah], 1), deltas[:, 2:]], dim=1)


def encode_always_float32(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return encode_student(gt_boxes.float(), anchors.float(), weights)


def decode_torchvision(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights, bbox_xform_clip=CLIP).decode_single(box_deltas, anchors)


def _decode(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), clamp=(None, CLIP), corners=True):
    deltas = box_deltas / torch.as_tensor(weights, dtype=box_deltas.dtype)
    ax, ay, aw, ah = _centres_sizes(anchors)
    dwh = deltas[:, 2:].clamp(*clamp) if clamp else deltas[:, 2:]
    cx, cy = ax + deltas[:, 0] * aw, ay + deltas[:, 1] * ah
    w, h = aw * torch.exp(dwh[:, 0]), ah * torch.exp(dwh[:, 1])
    if not corners:
        return torch.stack([cx, cy, w, h], dim=1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def decode_student(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(box_deltas, anchors, weights)


def decode_no_clamp(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(box_deltas, anchors, weights, clamp=None)


def decode_clamps_both_sides(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(box_deltas, anchors, weights, clamp=(-CLIP, CLIP))


def decode_weights_multiplied(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(box_deltas * torch.tensor(weights) ** 2, anchors, weights)


def decode_returns_cxcywh(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return _decode(box_deltas, anchors, weights, corners=False)


def decode_without_exp(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    ax, ay, aw, ah = _centres_sizes(anchors)
    cx, cy = ax + box_deltas[:, 0] * aw, ay + box_deltas[:, 1] * ah
    w, h = aw * box_deltas[:, 2], ah * box_deltas[:, 3]
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def decode_full_size_offsets(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    cx, cy, w, h = _decode(box_deltas, anchors, weights, corners=False).unbind(1)
    return torch.stack([cx - w, cy - h, cx + w, cy + h], dim=1)


# --------------------------------------------------------------------------- FPN


def _up(x, like, mode="nearest"):
    return F.interpolate(x, size=like.shape[-2:], mode=mode)


def fpn_student(lateral_c3, lateral_c4, lateral_c5):
    merged = [lateral_c5]
    for lateral in (lateral_c4, lateral_c3):
        merged.insert(0, lateral + _up(merged[0], lateral))
    return merged


def fpn_torchvision(lateral_c3, lateral_c4, lateral_c5):
    """torchvision's FeaturePyramidNetwork with identity 1x1 and 3x3 convs."""
    channels = lateral_c3.shape[1]
    fpn = torchvision.ops.FeaturePyramidNetwork([channels] * 3, channels)
    eye = torch.eye(channels)
    with torch.no_grad():
        for block in fpn.inner_blocks:
            block[0].weight.copy_(eye[:, :, None, None])
            block[0].bias.zero_()
        for block in fpn.layer_blocks:
            block[0].weight.zero_()
            block[0].weight[:, :, 1, 1] = eye
            block[0].bias.zero_()
        out = fpn({"c3": lateral_c3, "c4": lateral_c4, "c5": lateral_c5})
    return list(out.values())


def fpn_bilinear(lateral_c3, lateral_c4, lateral_c5):
    m4 = lateral_c4 + _up(lateral_c5, lateral_c4, mode="bilinear")
    return [lateral_c3 + _up(m4, lateral_c3, mode="bilinear"), m4, lateral_c5]


def fpn_scale_factor_2(lateral_c3, lateral_c4, lateral_c5):
    m4 = lateral_c4 + F.interpolate(lateral_c5, scale_factor=2, mode="nearest")
    return [lateral_c3 + F.interpolate(m4, scale_factor=2, mode="nearest"), m4, lateral_c5]


def fpn_adds_lateral_not_merged(lateral_c3, lateral_c4, lateral_c5):
    m4 = lateral_c4 + _up(lateral_c5, lateral_c4)
    return [lateral_c3 + _up(lateral_c4, lateral_c3), m4, lateral_c5]


def fpn_coarsest_first(lateral_c3, lateral_c4, lateral_c5):
    return fpn_student(lateral_c3, lateral_c4, lateral_c5)[::-1]


def fpn_in_place(lateral_c3, lateral_c4, lateral_c5):
    lateral_c4 += _up(lateral_c5, lateral_c4)
    lateral_c3 += _up(lateral_c4, lateral_c3)
    return [lateral_c3, lateral_c4, lateral_c5]


def fpn_nearest_exact(lateral_c3, lateral_c4, lateral_c5):
    m4 = lateral_c4 + _up(lateral_c5, lateral_c4, mode="nearest-exact")
    return [lateral_c3 + _up(m4, lateral_c3, mode="nearest-exact"), m4, lateral_c5]


# --------------------------------------------------------------------------- head reshape


def head_student(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    return head_output.permute(0, 2, 3, 1).reshape(B, H * W * num_anchors, AK // num_anchors)


def head_no_permute(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    return head_output.reshape(B, -1, AK // num_anchors)


def head_k_a_swapped(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, K, num_anchors, H, W).permute(0, 3, 4, 2, 1).reshape(B, -1, K)


def head_x_before_y(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, num_anchors, K, H, W).permute(0, 4, 3, 1, 2).reshape(B, -1, K)


def head_anchor_major_rows(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    return head_output.view(B, num_anchors, K, H, W).permute(0, 1, 3, 4, 2).reshape(B, -1, K)


def head_batch_folded(head_output, num_anchors):
    return head_student(head_output, num_anchors).reshape(-1, head_output.shape[1] // num_anchors)


# --------------------------------------------------------------------------- AP


def ap_student(recall, precision):
    envelope = precision.flip(0).cummax(0).values.flip(0)
    thresholds = torch.linspace(0, 1, 101, dtype=recall.dtype)
    inds = torch.searchsorted(recall, thresholds, side="left")
    padded = torch.cat([envelope, envelope.new_zeros(1)])  # index R means "beyond"
    return padded[inds].mean()


def ap_eleven_point(recall, precision):
    return _np_ap(recall, precision, thresholds=np.linspace(0, 1, 11))


def ap_no_envelope(recall, precision):
    return _np_ap(recall, precision, envelope=False)


def ap_trapezoid(recall, precision):
    return float(np.trapezoid(precision.numpy(), recall.numpy()))


def ap_side_right(recall, precision):
    return _np_ap(recall, precision, side="right")


def ap_reached_thresholds_only(recall, precision):
    return _np_ap(recall, precision, zero_fill=False)


def ap_fails_without_detections(recall, precision):
    envelope = precision.flip(0).cummax(0).values.flip(0)
    inds = torch.searchsorted(recall, torch.linspace(0, 1, 101, dtype=recall.dtype))
    return torch.where(inds < len(recall), envelope[inds.clamp(max=len(recall) - 1)], 0.0).mean()


def ap_envelope_from_left(recall, precision):
    from_left = torch.from_numpy(np.maximum.accumulate(precision.numpy()))
    return _np_ap(recall, from_left, envelope=False)


# --------------------------------------------------------------------------- tables

# --------------------------------------------------------------------------- checkers for lessons 00, 01, 07, 10


def anchors_count_student(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(3, 8)) * num_anchors_per_location


def anchors_count_floor(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum((H // 2**level) * (W // 2**level) for level in range(3, 8)) * num_anchors_per_location


def anchors_count_with_p2(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(2, 8)) * num_anchors_per_location


def anchors_count_always_nine(image_size, num_anchors_per_location=9):
    return anchors_count_student(image_size, 9)


def anchors_count_float(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(H / 2**level * W / 2**level for level in range(3, 8)) * num_anchors_per_location


def bn_student(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps) * weight.view(shape) + bias.view(shape)


def bn_batch_statistics(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)


def bn_eps_outside(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / (torch.sqrt(running_var.view(shape)) + eps) * weight.view(shape) + bias.view(shape)


def bn_no_affine(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps)


def bn_broadcast_over_width(x, weight, bias, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / torch.sqrt(running_var + eps) * weight + bias


def flip_student(image, boxes):
    W = image.shape[-1]
    return image.flip(-1), torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], dim=1)


def flip_corners_not_swapped(image, boxes):
    W = image.shape[-1]
    return image.flip(-1), torch.stack([W - boxes[:, 0], boxes[:, 1], W - boxes[:, 2], boxes[:, 3]], dim=1)


def flip_minus_one(image, boxes):
    W = image.shape[-1] - 1
    return image.flip(-1), torch.stack([W - boxes[:, 2], boxes[:, 1], W - boxes[:, 0], boxes[:, 3]], dim=1)


def flip_vertical_image(image, boxes):
    return image.flip(-2), flip_student(image, boxes)[1]


def flip_boxes_only(image, boxes):
    return image, flip_student(image, boxes)[1]


def modulating_student(logits, targets, gamma):
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    return (1 - p_t).clamp(min=0) ** gamma if gamma > 0 else torch.ones_like(p)


def modulating_log_space(logits, targets, gamma):
    log_q = torch.where(targets > 0, F.logsigmoid(-logits), F.logsigmoid(logits))
    return torch.exp(gamma * log_q)


def modulating_p_not_p_t(logits, targets, gamma):
    return (1 - torch.sigmoid(logits)) ** gamma


def modulating_p_t_power(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return (p * targets + (1 - p) * (1 - targets)) ** gamma


def modulating_gamma_power(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return gamma ** (1 - (p * targets + (1 - p) * (1 - targets)))


def anchors_count_no_p7(image_size, num_anchors_per_location=9):
    H, W = image_size
    return sum(math.ceil(H / 2**level) * math.ceil(W / 2**level) for level in range(3, 7)) * num_anchors_per_location


def bn_var_not_sqrt(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / (running_var.view(shape) + eps) * weight.view(shape) + bias.view(shape)


def bn_library(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)


def flip_returns_boxes_only(image, boxes):
    return flip_student(image, boxes)[1]


def modulating_no_gamma(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return 1 - (p * targets + (1 - p) * (1 - targets))


def modulating_negatives_inverted(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return (1 - (p * targets + p * (1 - targets))) ** gamma


CORRECT = {
    "num_anchors": [anchors_count_student],
    "frozen_batchnorm": [bn_student, bn_library],
    "hflip": [flip_student],
    "modulating_factor": [modulating_log_space, modulating_student],
    "box_iou": [torchvision.ops.box_iou, iou_student],
    "focal_loss": [focal_torchvision, focal_student],
    "nms": [torchvision.ops.nms, nms_student],
    "level_anchors": [anchors_torchvision, anchors_student],
    "encode_boxes": [encode_torchvision, encode_student],
    "decode_boxes": [decode_torchvision, decode_student],
    "fpn_top_down": [fpn_torchvision, fpn_student],
    "head_reshape": [head_student, checks._head_reshape_reference],
    "ap_from_pr": [ap_student, _np_ap],
}

# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("num_anchors", anchors_count_floor, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_with_p2, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_no_p7, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_float, "'800 x 800, the paper's image'"),
    ("num_anchors", anchors_count_always_nine, "'one anchor per location'"),
    ("frozen_batchnorm", bn_batch_statistics, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_no_affine, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_broadcast_over_width, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_var_not_sqrt, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_eps_outside, "'a tiny variance'"),
    ("hflip", flip_corners_not_swapped, "'one box'"),
    ("hflip", flip_minus_one, "'one box'"),
    ("hflip", flip_vertical_image, "'one box'"),
    ("hflip", flip_boxes_only, "'one box'"),
    ("hflip", flip_returns_boxes_only, "'one box'"),
    ("modulating_factor", modulating_p_not_p_t, "'gamma = 2'"),
    ("modulating_factor", modulating_p_t_power, "'gamma = 2'"),
    ("modulating_factor", modulating_gamma_power, "'gamma = 2'"),
    ("modulating_factor", modulating_no_gamma, "'gamma = 2'"),
    ("modulating_factor", modulating_negatives_inverted, "'gamma = 2'"),
    ("box_iou", iou_no_clamp, "'disjoint boxes (apart in x and y)'"),
    ("box_iou", iou_union_keeps_intersection, "'identical boxes'"),
    ("box_iou", iou_plus_one, "'partial overlap'"),
    ("box_iou", iou_transposed, "'N != M (3 vs 5 boxes)'"),
    ("box_iou", iou_diagonal_only, "expected shape (1, 1), got shape (1,)"),
    ("box_iou", iou_clamps_coordinates, "'negative coordinates'"),
    ("box_iou", iou_float32_loop, "'float64 boxes'"),
    ("focal_loss", focal_no_alpha, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_alpha_on_both, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_alpha_swapped, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_log_of_probabilities, "NaN or inf"),
    ("focal_loss", focal_clamped_probabilities, "'extreme logits +-100'"),
    ("focal_loss", focal_gamma_on_p_t, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_mean, "expected shape (3, 4), got shape ()"),
    ("focal_loss", focal_gamma_fixed, "'gamma=0 is alpha-weighted cross-entropy'"),
    ("nms", nms_input_order, "'unsorted scores'"),
    ("nms", nms_greater_equal, "'IoU exactly at the threshold'"),
    ("nms", nms_inverted, "'two overlapping boxes'"),
    ("nms", nms_boolean_mask, "boolean mask"),
    ("nms", nms_sorted_positions, "'unsorted scores'"),
    ("nms", nms_removed_boxes_suppress, "'chain A-B-C: suppressed boxes do not suppress'"),
    ("nms", nms_index_order, "'unsorted scores'"),
    ("nms", nms_int32, "int64"),
    ("level_anchors", anchors_half_stride, "(0, 0)"),
    ("level_anchors", anchors_not_rounded, "'base anchors are rounded'"),
    ("level_anchors", anchors_size_major, "'order: ratio-major, then size'"),
    ("level_anchors", anchors_xy_swapped, "'grid 2 x 3 (H != W), stride 8'"),
    ("level_anchors", anchors_anchor_major, "'grid 3 x 2 with 3 anchors'"),
    ("level_anchors", anchors_ratio_inverted, "'aspect ratios 0.5, 1, 2'"),
    ("encode_boxes", encode_log_inverted, "'larger box, same top-left corner'"),
    ("encode_boxes", encode_centre_without_half, "'larger box, same top-left corner'"),
    ("encode_boxes", encode_weights_divided, "'weights (10, 10, 5, 5)'"),
    ("encode_boxes", encode_arguments_swapped, "'shifted boxes'"),
    ("encode_boxes", encode_sum_of_corners, "'shifted boxes'"),
    ("encode_boxes", encode_always_float32, "'float64 boxes'"),
    ("decode_boxes", decode_no_clamp, "'huge dw, dh are clamped'"),
    ("decode_boxes", decode_clamps_both_sides, "'very negative dw, dh are not clamped'"),
    ("decode_boxes", decode_weights_multiplied, "'weights (10, 10, 5, 5)'"),
    ("decode_boxes", decode_returns_cxcywh, "'zero deltas give the anchors'"),
    ("decode_boxes", decode_without_exp, "'zero deltas give the anchors'"),
    ("decode_boxes", decode_full_size_offsets, "'zero deltas give the anchors'"),
    ("fpn_top_down", fpn_bilinear, "'sizes 8, 4, 2'"),
    ("fpn_top_down", fpn_scale_factor_2, "'odd sizes 13x10, 7x5, 4x3'"),
    ("fpn_top_down", fpn_adds_lateral_not_merged, "m3: values differ"),
    ("fpn_top_down", fpn_coarsest_first, "coarsest first"),
    ("fpn_top_down", fpn_in_place, "in place"),
    ("fpn_top_down", fpn_nearest_exact, "'odd sizes 13x10, 7x5, 4x3'"),
    ("head_reshape", head_no_permute, "'one anchor, 3 classes, 2 x 2'"),
    ("head_reshape", head_k_a_swapped, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_x_before_y, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_anchor_major_rows, "'3 anchors, 2 classes, 2 x 3'"),
    ("head_reshape", head_batch_folded, "expected shape (1, 4, 3), got shape (4, 3)"),
    ("ap_from_pr", ap_eleven_point, "'recall stops at 0.5'"),
    ("ap_from_pr", ap_no_envelope, "'precision rises again (needs the envelope)'"),
    ("ap_from_pr", ap_trapezoid, "'perfect detector'"),
    ("ap_from_pr", ap_side_right, "'perfect detector'"),
    ("ap_from_pr", ap_reached_thresholds_only, "'recall stops at 0.5'"),
    ("ap_from_pr", ap_fails_without_detections, "'no detections'"),
    ("ap_from_pr", ap_envelope_from_left, "'precision rises again (needs the envelope)'"),
]


# --------------------------------------------------------------------------- tests


def test_every_checker_is_listed_and_tested():
    assert set(checks.ALL_CHECKS) == set(CORRECT)
    wrong_per_checker = {name: sum(w[0] == name for w in WRONG) for name in checks.ALL_CHECKS}
    assert min(wrong_per_checker.values()) >= 5, wrong_per_checker


@pytest.mark.parametrize(
    ("name", "fn"),
    [(name, fn) for name, fns in CORRECT.items() for fn in fns],
    ids=[f"{name}-{fn.__name__}" for name, fns in CORRECT.items() for fn in fns],
)
def test_checker_accepts_correct_answer(name, fn, capsys):
    assert checks.ALL_CHECKS[name](fn) is True
    out = capsys.readouterr().out
    assert out.startswith(f"✓ {name}: all ") and out.rstrip().endswith("checks passed"), out
    assert len(out.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "fn", "caught_by"), WRONG, ids=[w[1].__name__ for w in WRONG])
def test_checker_rejects_wrong_answer(name, fn, caught_by, capsys):
    assert checks.ALL_CHECKS[name](fn) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}: failed "), out
    assert caught_by in out, out
    for label in ("input:", "expected:", "got:", "hint:"):
        assert label in out, out


def test_failure_report_shows_case_values_and_hint(capsys):
    assert checks.check_box_iou(iou_no_clamp) is False
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0] == "✗ box_iou: failed 'disjoint boxes (apart in x and y)' (5 of 12 checks failed)"
    )
    assert lines[1] == "  input:    boxes1=[[0, 0, 1, 1]], boxes2=[[2, 2, 3, 3]]"
    assert lines[2] == "  expected: [[0]]"
    assert lines[3] == "  got:      [[1]]"
    assert "clamp" in lines[5] and lines[5].startswith("  hint:")
    assert lines[6].startswith("  also failing: 'disjoint boxes (apart in x only)'")


def test_hints_name_the_mistake(capsys):
    checks.check_nms(nms_greater_equal)
    assert "Use >, not >=" in capsys.readouterr().out
    checks.check_focal_loss(focal_log_of_probabilities)
    assert "F.logsigmoid" in capsys.readouterr().out
    checks.check_fpn_top_down(fpn_scale_factor_2)
    out = capsys.readouterr().out
    assert "got:      raised RuntimeError" in out and "scale_factor=2" in out
    checks.check_head_reshape(head_no_permute)
    assert "permute(0, 3, 4, 1, 2)" in capsys.readouterr().out
    checks.check_ap_from_pr(ap_side_right)
    assert "side='left'" in capsys.readouterr().out


def _not_implemented(*args, **kwargs):
    raise NotImplementedError("write this function")


@pytest.mark.parametrize("name", sorted(checks.ALL_CHECKS))
def test_not_implemented_is_one_line(name, capsys):
    assert checks.ALL_CHECKS[name](_not_implemented) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not implemented yet" in out, out
    assert "Traceback" not in out


def _raises(error):
    def fn(*args, **kwargs):
        raise error

    return fn


class _Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __float__(self):
        raise RuntimeError("no float")


BROKEN = {
    "raises ValueError": _raises(ValueError("bad")),
    "raises ZeroDivisionError": lambda *args, **kwargs: 1 / 0,
    "raises SystemExit": _raises(SystemExit(1)),
    "returns None": lambda *args, **kwargs: None,
    "returns a string": lambda *args, **kwargs: "42",
    "returns a list": lambda *args, **kwargs: [[0.0, 1.0]],
    "returns a wrong shape": lambda *args, **kwargs: torch.zeros(7, 3, 2),
    "returns NaN": lambda *args, **kwargs: torch.full((1, 1), float("nan")),
    "returns an unprintable object": lambda *args, **kwargs: _Unprintable(),
    "takes the wrong arguments": lambda: None,
}


@pytest.mark.parametrize("name", sorted(checks.ALL_CHECKS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_checker_never_raises(name, broken, capsys):
    assert checks.ALL_CHECKS[name](BROKEN[broken]) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}: failed "), out


def test_exception_is_reported_in_one_line(capsys):
    assert checks.check_box_iou(_raises(ValueError("boxes1 must be (N, 4)\nsecond line"))) is False
    out = capsys.readouterr().out
    assert "got:      raised ValueError: boxes1 must be (N, 4)" in out
    assert "second line" not in out and "Traceback" not in out


@pytest.mark.parametrize("not_a_function", [None, 3, "box_iou"])
def test_checker_rejects_non_callable(not_a_function, capsys):
    assert checks.check_box_iou(not_a_function) is False
    assert "expected a function" in capsys.readouterr().out


def test_checkers_keep_the_global_random_state():
    state = torch.random.get_rng_state()
    for checker in checks.ALL_CHECKS.values():
        checker(_not_implemented)
    checks.check_nms(torchvision.ops.nms)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_student_cannot_corrupt_the_cases(capsys):
    def vandal(boxes1, boxes2):
        iou = torchvision.ops.box_iou(boxes1, boxes2)
        boxes1.zero_()
        return iou

    assert checks.check_box_iou(vandal) is False
    assert checks.check_box_iou(torchvision.ops.box_iou) is True
    out = capsys.readouterr().out
    assert "changed its input `boxes1` in place" in out


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("feature_size", "stride", "sizes", "aspect_ratios"),
    [
        ((1, 1), 8, (32,), (1.0,)),
        ((2, 3), 8, (20, 33), (0.5, 1.0, 2.0)),
        ((7, 5), 16, tuple(64 * 2 ** (k / 3) for k in range(3)), (0.5, 1.0, 2.0)),
        ((4, 9), 128, (512, 645.1, 812.7), (0.25, 1.3)),
    ],
)
def test_anchor_reference_equals_torchvision(feature_size, stride, sizes, aspect_ratios):
    args = (feature_size, stride, sizes, aspect_ratios)
    torch.testing.assert_close(checks._level_anchors_reference(*args), anchors_torchvision(*args))


def test_focal_reference_equals_torchvision():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, generator=generator) * 8
    targets = (torch.rand(500, generator=generator) < 0.5).float()
    for alpha, gamma in [(0.25, 2.0), (0.5, 0.0), (0.75, 1.0), (0.1, 5.0)]:
        torch.testing.assert_close(
            checks._focal_loss_reference(logits, targets, alpha, gamma),
            focal_torchvision(logits, targets, alpha, gamma),
        )
    extreme = torch.tensor([100.0, -100.0, 100.0, -100.0])
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    loss = checks._focal_loss_reference(extreme, labels)
    torch.testing.assert_close(loss, torch.tensor([75.0, 0.0, 0.0, 25.0]))


def test_fpn_reference_equals_torchvision():
    generator = torch.Generator().manual_seed(0)
    laterals = [torch.randn(2, 3, h, w, generator=generator) for h, w in [(13, 10), (7, 5), (4, 3)]]
    for mine, theirs in zip(
        checks._fpn_top_down_reference(*laterals), fpn_torchvision(*laterals), strict=True
    ):
        torch.testing.assert_close(mine, theirs)


def test_head_reshape_reference_matches_torchvision_head():
    head = torchvision.models.detection.retinanet.RetinaNetClassificationHead(
        in_channels=4, num_anchors=3, num_classes=2
    )
    feature = torch.randn(2, 4, 3, 5)
    with torch.no_grad():
        raw = head.cls_logits(head.conv(feature))  # (B, A*K, H, W)
        flat = head([feature])  # (B, H*W*A, K)
    torch.testing.assert_close(checks._head_reshape_reference(raw, 3), flat)


def test_ap_reference_equals_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    generator = torch.Generator().manual_seed(0)
    num_gt, num_det = 12, 20
    gt_xy = torch.arange(num_gt, dtype=torch.float64)[:, None] * 50 + torch.tensor([10.0, 10.0])
    is_tp = torch.rand(num_det, generator=generator) < 0.6
    gt_for_det = torch.randperm(num_gt, generator=generator).tolist()
    scores = torch.linspace(0.99, 0.2, num_det).tolist()
    detections, matched = [], 0
    for i in range(num_det):
        if is_tp[i] and matched < num_gt:
            x, y = gt_xy[gt_for_det[matched]].tolist()
            matched += 1
        else:
            x, y = 2000.0 + 50 * i, 2000.0  # far from every ground-truth box
        detections.append(
            {"image_id": 1, "category_id": 1, "bbox": [x, y, 20, 20], "score": scores[i]}
        )
    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 4000, "height": 4000}],
        "categories": [{"id": 1, "name": "shape"}],
        "annotations": [
            {
                "id": k + 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [*gt_xy[k].tolist(), 20, 20],
                "area": 400.0,
                "iscrowd": 0,
            }
            for k in range(num_gt)
        ],
    }
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
    evaluator.params.iouThrs = np.array([0.5])
    evaluator.evaluate()
    evaluator.accumulate()
    coco_ap = float(evaluator.eval["precision"][0, :, 0, 0, -1].mean())

    tp = torch.cumsum(
        torch.tensor([d["bbox"][0] < 1000 for d in detections], dtype=torch.float64), 0
    )
    recall = tp / num_gt
    precision = tp / torch.arange(1, num_det + 1, dtype=torch.float64)
    assert abs(checks._ap_reference(recall, precision) - coco_ap) < 1e-9
    assert checks.check_ap_from_pr(ap_student) is True


# --------------------------------------------------------------------------- the library


def _library_answers():
    """The package's own pieces, adapted to the exercise signatures."""
    from retina_lessons import anchors, box_coding, boxes, evaluation, focal_loss, fpn, heads

    def level_anchors(feature_size, stride, sizes, aspect_ratios):
        return anchors.grid_anchors(
            anchors.base_anchors(sizes, aspect_ratios), feature_size, (stride, stride)
        )

    def head_reshape(head_output, num_anchors):
        return heads.flatten_level(head_output, head_output.shape[1] // num_anchors)

    return {
        "box_iou": boxes.box_iou,
        "focal_loss": focal_loss.sigmoid_focal_loss,
        "level_anchors": level_anchors,
        "encode_boxes": box_coding.encode_boxes,
        "decode_boxes": box_coding.decode_boxes,
        "fpn_top_down": lambda l3, l4, l5: fpn.top_down_merge([l3, l4, l5]),
        "head_reshape": head_reshape,
        "ap_from_pr": lambda recall, precision: evaluation.interpolated_ap(precision, recall),
    }


def test_library_pieces_pass_the_checkers(capsys):
    """The lessons compare hand-built pieces with the library: both must follow one convention."""
    failed = [name for name, fn in _library_answers().items() if not checks.ALL_CHECKS[name](fn)]
    assert not failed, capsys.readouterr().out


def test_lesson_checkers_accept_the_library():
    from retina_lessons.anchors import feature_sizes
    from retina_lessons.backbone import FrozenBatchNorm2d
    from retina_lessons.datasets import hflip
    from retina_lessons.focal_loss import log_one_minus_p_t

    assert checks.check_num_anchors(
        lambda size, num_anchors_per_location=9: sum(h * w for h, w in feature_sizes(size)) * num_anchors_per_location
    )

    def library_bn(x, weight, bias, running_mean, running_var, eps=1e-5):
        bn = FrozenBatchNorm2d(x.shape[1], eps)
        for name, value in zip(("weight", "bias", "running_mean", "running_var"),
                               (weight, bias, running_mean, running_var)):
            getattr(bn, name).copy_(value)
        return bn(x)

    assert checks.check_frozen_batchnorm(library_bn)
    assert checks.check_hflip(lambda image, boxes: (lambda r: (r[0], r[1]["boxes"]))(hflip(image, {"boxes": boxes})))
    assert checks.check_modulating_factor(lambda x, t, gamma: torch.exp(gamma * log_one_minus_p_t(x, t)))
