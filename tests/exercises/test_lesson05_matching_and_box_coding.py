"""The IoU and box-coding graders of lesson 05 accept torchvision's and the library's pieces and reject the usual mistakes.

Tests for ``retina_lessons/exercises/lesson05_matching_and_box_coding.py``; the runner they share is tested in
test_runner.py.
"""


import torch
import torchvision
from grading_support import GraderTests
from torchvision.models.detection._utils import BoxCoder

from retina_lessons import box_coding, boxes, exercises
from retina_lessons.config import BOX_DELTA_CLAMP
from retina_lessons.exercises import lesson05_matching_and_box_coding


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
    return BoxCoder(weights, bbox_xform_clip=BOX_DELTA_CLAMP).decode_single(box_deltas, anchors)


def _decode(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), clamp=(None, BOX_DELTA_CLAMP), corners=True):
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
    return _decode(box_deltas, anchors, weights, clamp=(-BOX_DELTA_CLAMP, BOX_DELTA_CLAMP))


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


CORRECT = {
    "box_iou": [torchvision.ops.box_iou, iou_student, boxes.box_iou],
    "encode_boxes": [encode_torchvision, encode_student, box_coding.encode_boxes],
    "decode_boxes": [decode_torchvision, decode_student, box_coding.decode_boxes],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("box_iou", iou_no_clamp, "'disjoint boxes (apart in x and y)'"),
    ("box_iou", iou_union_keeps_intersection, "'identical boxes'"),
    ("box_iou", iou_plus_one, "'partial overlap'"),
    ("box_iou", iou_transposed, "'N != M (3 vs 5 boxes)'"),
    ("box_iou", iou_diagonal_only, "expected shape (1, 1), got shape (1,)"),
    ("box_iou", iou_clamps_coordinates, "'negative coordinates'"),
    ("box_iou", iou_float32_loop, "'float64 boxes'"),
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
]


class TestGraders(GraderTests):
    grader_module = lesson05_matching_and_box_coding
    correct = CORRECT
    wrong = WRONG


def test_failure_report_shows_case_values_and_hint(capsys):
    assert exercises.check_box_iou(iou_no_clamp) is False
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0] == "✗ box_iou: failed 'disjoint boxes (apart in x and y)' (5 of 12 checks failed)"
    )
    assert lines[1] == "  input:    boxes1=[[0, 0, 1, 1]], boxes2=[[2, 2, 3, 3]]"
    assert lines[2] == "  expected: [[0]]"
    assert lines[3] == "  got:      [[1]]"
    assert "clamp" in lines[5] and lines[5].startswith("  hint:")
    assert lines[6].startswith("  also failing: 'disjoint boxes (apart in x only)'")
