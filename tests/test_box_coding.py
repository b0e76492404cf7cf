"""Box coding against torchvision's BoxCoder."""

import math

import torch
from torchvision.models.detection._utils import BoxCoder

from retina_lessons.box_coding import STD_WEIGHTS, TORCHVISION_WEIGHTS, decode_boxes, encode_boxes


def boxes(num, generator):
    xy = torch.rand(num, 2, generator=generator) * 100
    return torch.cat([xy, xy + 1 + torch.rand(num, 2, generator=generator) * 100], dim=1)


def test_encode_and_decode_equal_torchvision():
    generator = torch.Generator().manual_seed(0)
    gt, anchors = boxes(50, generator), boxes(50, generator)
    for weights in (TORCHVISION_WEIGHTS, STD_WEIGHTS):
        coder = BoxCoder(weights)
        deltas = encode_boxes(gt, anchors, weights)
        torch.testing.assert_close(deltas, coder.encode_single(gt, anchors), rtol=0, atol=0)
        noisy = deltas + torch.randn(deltas.shape, generator=generator)
        torch.testing.assert_close(decode_boxes(noisy, anchors, weights), coder.decode_single(noisy, anchors),
                                   rtol=0, atol=1e-5)


def test_round_trip_and_batched_shapes():
    generator = torch.Generator().manual_seed(1)
    gt, anchors = boxes(24, generator).view(2, 12, 4), boxes(12, generator)
    deltas = encode_boxes(gt, anchors)  # anchors broadcast over the batch
    assert deltas.shape == (2, 12, 4)
    torch.testing.assert_close(decode_boxes(deltas, anchors), gt, rtol=1e-5, atol=1e-4)


def test_std_weights_scale_targets_up():
    generator = torch.Generator().manual_seed(2)
    gt, anchors = boxes(100, generator), boxes(100, generator)
    plain, std = encode_boxes(gt, anchors), encode_boxes(gt, anchors, STD_WEIGHTS)
    torch.testing.assert_close(std, plain * torch.tensor(STD_WEIGHTS))


def test_decode_clamps_the_log_scale():
    anchors = torch.tensor([[0.0, 0, 10, 10]])
    decoded = decode_boxes(torch.tensor([[0.0, 0, 100.0, 100.0]]), anchors)
    assert torch.isfinite(decoded).all()
    torch.testing.assert_close(decoded[0, 2] - decoded[0, 0], torch.tensor(10 * 1000 / 16))
    assert math.isclose(math.log(1000 / 16), 4.135166556742356)
