"""Box geometry: area and IoU with torchvision's numerics (upcast half precision and small integers)."""

import pytest
import torch
from torchvision.ops import box_area as tv_box_area
from torchvision.ops import box_iou as tv_box_iou

from retina_lessons.boxes import box_area, box_iou, clip_boxes_to_image, upcast

BIG = torch.tensor([[0.0, 0.0, 400.0, 300.0], [50.0, 20.0, 450.0, 330.0]])  # areas 120,000: above float16's 65,504


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_boxes_are_upcast_as_torchvision_does(dtype):
    boxes = BIG.to(dtype)
    assert torch.isfinite(box_area(boxes)).all() and box_area(boxes).dtype == torch.float32
    torch.testing.assert_close(box_area(boxes), tv_box_area(boxes))
    iou = box_iou(boxes, boxes)
    assert iou.dtype == torch.float32 and torch.isfinite(iou).all()
    torch.testing.assert_close(iou, tv_box_iou(boxes, boxes))
    if dtype == torch.float16:  # what upcasting avoids
        assert (boxes[:, 2] - boxes[:, 0]).mul(boxes[:, 3] - boxes[:, 1]).isinf().all()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.int64])
def test_integer_boxes_give_float_ious_without_wrapping(dtype):
    boxes = torch.tensor([[0, 0, 200, 250], [10, 20, 150, 240]], dtype=dtype)
    assert box_area(boxes).tolist() == [50_000, 30_800]  # uint8 and int16 products would wrap around
    torch.testing.assert_close(box_area(boxes), tv_box_area(boxes))
    torch.testing.assert_close(box_iou(boxes, boxes), tv_box_iou(boxes, boxes))
    assert box_iou(boxes, boxes).is_floating_point()


def test_upcast_keeps_wide_types():
    for dtype in (torch.float32, torch.float64, torch.int32, torch.int64):
        boxes = torch.zeros(1, 4, dtype=dtype)
        assert upcast(boxes) is boxes


def test_clip_boxes_to_image():
    boxes = torch.tensor([[-5.0, 3, 70, 90]])
    assert clip_boxes_to_image(boxes, (64, 64)).tolist() == [[0.0, 3.0, 64.0, 64.0]]
