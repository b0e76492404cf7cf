"""Grader for lesson 02 (``notebooks/02_feature_pyramid.ipynb``): the FPN's top-down pathway.

``check_fpn_top_down(fn)`` expects ``fn(lateral_c3, lateral_c4, lateral_c5) -> [m3, m4, m5]``,
the merged maps before the output convs; the reference is ``retina_lessons.fpn.top_down_merge``
(the top-down pathway of torchvision's ``FeaturePyramidNetwork``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import fpn
from .runner import Case, Problem, compare_tensors, run_checks, seeded


def _fpn_top_down_reference(lateral_c3, lateral_c4, lateral_c5):
    return fpn.top_down_merge([lateral_c3, lateral_c4, lateral_c5])  # [m3, m4, m5]


def _compare_maps(expected, got, case) -> str | None:
    list_hint = "Return the three merged maps as a list, finest first: [m3, m4, m5]."
    if not isinstance(got, list | tuple):
        return Problem(f"expected a list [m3, m4, m5], got {type(got).__name__}", list_hint)
    if len(got) != 3:
        return Problem(f"expected a list of 3 maps [m3, m4, m5], got {len(got)}", list_hint)
    shapes = [tuple(getattr(m, "shape", ())) for m in got]
    if shapes != [tuple(m.shape) for m in expected] and shapes == [
        tuple(m.shape) for m in expected[::-1]
    ]:
        return Problem("the maps come coarsest first", list_hint)
    for name, want, have in zip(("m3", "m4", "m5"), expected, got, strict=True):
        problem = compare_tensors(want, have, check_dtype=False, rtol=1e-5, atol=1e-5)
        if problem is not None:
            hint = getattr(problem, "hint", None)
            return Problem(f"{name}: {problem}", hint) if hint else f"{name}: {problem}"
    return None


def _fpn_cases() -> list[Case]:
    g = seeded(5)

    def laterals(batch, channels, sizes):
        return tuple(torch.randn(batch, channels, h, w, generator=g) for h, w in sizes)

    merge_hint = (
        "m5 = l5; m4 = l4 + upsample(m5); m3 = l3 + upsample(m4): each level adds the "
        "MERGED map from the level above (m4, not l4), upsampled with "
        "F.interpolate(..., mode='nearest')."
    )
    odd_hint = (
        "Upsample to the lateral's own size, F.interpolate(m5, size=l4.shape[-2:], "
        "mode='nearest'): with odd image sizes a coarser map is not exactly half "
        "the finer one, so scale_factor=2 gives the wrong shape."
    )
    return [
        Case("sizes 8, 4, 2", laterals(1, 2, [(8, 8), (4, 4), (2, 2)]), merge_hint),
        Case("non-square 8x12, 4x6, 2x3", laterals(1, 3, [(8, 12), (4, 6), (2, 3)]), merge_hint),
        Case("odd sizes 13x10, 7x5, 4x3", laterals(1, 2, [(13, 10), (7, 5), (4, 3)]), odd_hint),
        Case("batch of 2, odd sizes", laterals(2, 4, [(25, 17), (13, 9), (7, 5)]), odd_hint),
    ]


def check_fpn_top_down(fn: Callable) -> bool:
    """Check ``fn(lateral_c3, lateral_c4, lateral_c5) -> [m3, m4, m5]``.

    - ``lateral_c3``, ``lateral_c4``, ``lateral_c5``: (B, C, H_i, W_i) outputs of the
      1x1 lateral convs, finest first; sizes need not be exact multiples of 2.
    - returns: the merged maps before the 3x3 output convs, finest first:
      ``m5 = l5``, ``m4 = l4 + nearest_upsample(m5 to l4's size)``,
      ``m3 = l3 + nearest_upsample(m4 to l3's size)``.

    Reference: the top-down pathway of ``torchvision.ops.FeaturePyramidNetwork``.
    """
    return run_checks(
        "fpn_top_down",
        fn,
        _fpn_cases(),
        _fpn_top_down_reference,
        ("lateral_c3", "lateral_c4", "lateral_c5"),
        compare=_compare_maps,
    )
