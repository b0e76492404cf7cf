"""The FPN top-down grader of lesson 02 accepts torchvision's pathway and the library's, and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson02_feature_pyramid.py``; the runner they share is tested in
test_runner.py.
"""


import torch
import torch.nn.functional as F
import torchvision
from grading_support import GraderTests

from retina_lessons import exercises, fpn
from retina_lessons.exercises import lesson02_feature_pyramid


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


def library_top_down(lateral_c3, lateral_c4, lateral_c5):
    return fpn.top_down_merge([lateral_c3, lateral_c4, lateral_c5])


CORRECT = {
    "fpn_top_down": [fpn_torchvision, fpn_student, library_top_down],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("fpn_top_down", fpn_bilinear, "'sizes 8, 4, 2'"),
    ("fpn_top_down", fpn_scale_factor_2, "'odd sizes 13x10, 7x5, 4x3'"),
    ("fpn_top_down", fpn_adds_lateral_not_merged, "m3: values differ"),
    ("fpn_top_down", fpn_coarsest_first, "coarsest first"),
    ("fpn_top_down", fpn_in_place, "in place"),
    ("fpn_top_down", fpn_nearest_exact, "'odd sizes 13x10, 7x5, 4x3'"),
]


class TestGraders(GraderTests):
    grader_module = lesson02_feature_pyramid
    correct = CORRECT
    wrong = WRONG


def test_hints_name_the_mistake(capsys):
    exercises.check_fpn_top_down(fpn_scale_factor_2)
    out = capsys.readouterr().out
    assert "got:      raised RuntimeError" in out and "scale_factor=2" in out


def test_fpn_reference_equals_torchvision():
    generator = torch.Generator().manual_seed(0)
    laterals = [torch.randn(2, 3, h, w, generator=generator) for h, w in [(13, 10), (7, 5), (4, 3)]]
    for mine, theirs in zip(
        lesson02_feature_pyramid._fpn_top_down_reference(*laterals), fpn_torchvision(*laterals), strict=True
    ):
        torch.testing.assert_close(mine, theirs)
