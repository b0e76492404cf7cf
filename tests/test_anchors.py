"""Anchors against torchvision's AnchorGenerator, and the centred convention."""

import math

import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import _default_anchorgen

from retina_lessons.anchors import AnchorGenerator, base_anchors, feature_sizes, level_sizes


@pytest.mark.parametrize("image_size", [(800, 1216), (512, 512), (96, 160), (320, 480)])
def test_matches_torchvision(image_size):
    grids = feature_sizes(image_size)
    features = [torch.zeros(1, 1, h, w) for h, w in grids]
    expected = _default_anchorgen()(ImageList(torch.zeros(1, 3, *image_size), [image_size]), features)[0]
    torch.testing.assert_close(AnchorGenerator()(image_size), expected, rtol=0, atol=0)


def test_torchvision_truncates_sizes_and_rounds_base_anchors():
    assert level_sizes(32, (1.0, 2 ** (1 / 3), 2 ** (2 / 3))) == [32.0, 40.0, 50.0]
    base = base_anchors([32.0], [0.5, 1.0, 2.0])
    assert base.shape == (3, 4)
    assert torch.equal(base, base.round())
    torch.testing.assert_close(base[1], torch.tensor([-16.0, -16.0, 16.0, 16.0]))
    # ratio = h / w: the first anchor is wide, the last tall
    widths, heights = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    assert widths[0] > heights[0] and widths[2] < heights[2]


def test_count_for_the_papers_800_pixel_image():
    anchors = AnchorGenerator()((800, 800))
    per_location = sum(math.ceil(800 / 2**level) ** 2 for level in range(3, 8))
    assert anchors.shape == (per_location * 9, 4)
    assert 100_000 < anchors.shape[0] < 125_000  # "~100k" anchors


def test_centered_convention_puts_anchor_centres_in_the_middle_of_cells():
    gen = AnchorGenerator(convention="centered")
    level3 = gen.per_level((64, 64))[0]  # (8 * 8 * 9, 4)
    centres = (level3[:, :2] + level3[:, 2:]) / 2
    torch.testing.assert_close(centres[0], torch.tensor([4.0, 4.0]))  # (0 + 0.5) * 8
    torch.testing.assert_close(centres[9], torch.tensor([12.0, 4.0]))  # next column, same row
    areas = (level3[:9, 2] - level3[:9, 0]) * (level3[:9, 3] - level3[:9, 1])
    expected = torch.tensor([32.0**2 * s**2 for s in (1, 2 ** (1 / 3), 2 ** (2 / 3))] * 3)
    torch.testing.assert_close(areas, expected)  # exact sizes, no truncation or rounding


def test_cache_returns_the_same_tensor_and_respects_dtype():
    gen = AnchorGenerator()
    assert gen((128, 128)) is gen((128, 128))
    assert gen((128, 128), dtype=torch.float64).dtype == torch.float64


def test_feature_sizes_match_a_resnet():
    from retina_lessons.backbone import ResNetTaps
    from retina_lessons.fpn import FeaturePyramid

    backbone = ResNetTaps("resnet18")
    fpn = FeaturePyramid(backbone.out_channels, 16)
    for size in [(97, 131), (128, 160)]:
        maps = fpn(backbone(torch.zeros(1, 3, *size)))
        assert [tuple(p.shape[-2:]) for p in maps] == feature_sizes(size)


@pytest.mark.parametrize("kwargs", [{"convention": "diagonal"}, {"sizes": ()}, {"sizes": (0, 32)},
                                    {"ratios": (-1.0,)}, {"scales": ()}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        AnchorGenerator(**kwargs)
