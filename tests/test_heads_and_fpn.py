"""Subnets and feature pyramid: initialisation, shapes, and equality with torchvision's modules."""

import math

import pytest
import torch
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from retina_lessons.fpn import FeaturePyramid
from retina_lessons.heads import BoxHead, ClassificationHead, flatten_level, prior_bias


def test_prior_bias_gives_the_prior_probability():
    assert math.isclose(torch.sigmoid(torch.tensor(prior_bias(0.01))).item(), 0.01, rel_tol=1e-6)
    head = ClassificationHead(32, 9, 5, num_convs=2)
    assert torch.all(head.predictor.bias == prior_bias(0.01))
    assert abs(head.predictor.weight.std().item() - 0.01) < 0.002
    features = [torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)]
    probabilities = torch.sigmoid(head(features))
    assert probabilities.shape == (1, (64 + 16) * 9, 5)
    assert (probabilities - 0.01).abs().max() < 0.01  # every anchor starts near pi


def test_flatten_level_orders_location_then_anchor():
    B, A, K, H, W = 1, 2, 3, 2, 2
    output = torch.arange(B * A * K * H * W, dtype=torch.float32).view(B, A * K, H, W)
    flat = flatten_level(output, K)  # (B, H*W*A, K)
    assert flat.shape == (1, 8, 3)
    # row 1 is location (0, 0), anchor 1: channels A*K index 3..5 at pixel (0, 0)
    assert flat[0, 1].tolist() == [output[0, 3, 0, 0].item(), output[0, 4, 0, 0].item(), output[0, 5, 0, 0].item()]


def test_group_norm_towers_have_no_conv_bias():
    head = BoxHead(64, 9, num_convs=4, norm="group")
    convs = [m for m in head.tower.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.bias is None for c in convs)
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in head.modules()) == 4


def test_feature_pyramid_equals_torchvision_for_both_p6_choices():
    in_channels = (32, 64, 128)
    features = [torch.randn(1, c, s, s + 3) for c, s in zip(in_channels, (25, 13, 7))]  # odd sizes
    for p6_from in ("c5", "p5"):
        ours = FeaturePyramid(in_channels, 16, p6_from)
        extra = LastLevelP6P7(128 if p6_from == "c5" else 16, 16)
        theirs = FeaturePyramidNetwork(list(in_channels), 16, extra_blocks=extra)
        with torch.no_grad():
            for i in range(3):
                theirs.inner_blocks[i][0].load_state_dict(ours.lateral[i].state_dict())
                theirs.layer_blocks[i][0].load_state_dict(ours.output[i].state_dict())
            extra.p6.load_state_dict(ours.p6.state_dict())
            extra.p7.load_state_dict(ours.p7.state_dict())
        expected = list(theirs(dict(zip("abc", features))).values())
        got = ours(features)
        assert len(got) == 5
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e)


def test_group_norm_equals_torchs_and_accepts_a_group_with_one_value():
    from retina_lessons.heads import GroupNorm

    norm = GroupNorm(32, 32)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    reference = torch.nn.GroupNorm(32, 32)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 32, 5, 3)
    torch.testing.assert_close(norm(x), reference(x))
    single = torch.randn(1, 32, 1, 1)  # one value per group: normalised to 0, so the output is the bias
    with pytest.raises(ValueError):
        reference(single)
    torch.testing.assert_close(norm(single), norm.bias.reshape(1, 32, 1, 1).expand(1, 32, 1, 1), atol=1e-4, rtol=0)


def test_classroom_detector_runs_on_one_image_with_a_one_by_one_p7():
    from retina_lessons import RetinaNet, get_config

    model = RetinaNet(get_config("classroom")).eval()
    (detections,) = model.detect([torch.rand(3, 128, 128)])
    assert detections["boxes"].shape[1] == 4
