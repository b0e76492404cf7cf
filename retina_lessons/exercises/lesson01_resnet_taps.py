"""Grader for lesson 01 (``notebooks/01_resnet_taps.ipynb``): frozen batch norm.

``check_frozen_batchnorm(fn)`` expects ``fn(x (B, C, H, W), weight, bias, running_mean,
running_var, eps=1e-5) -> y``, batch norm with the stored statistics; the reference is
``F.batch_norm(..., training=False)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .runner import Case, run_checks, seeded


def _frozen_bn_reference(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)


def check_frozen_batchnorm(fn: Callable) -> bool:
    """Check ``fn(x, weight, bias, running_mean, running_var, eps=1e-5) -> y``.

    - ``x``: (B, C, H, W); the four others: (C,) tensors.
    - returns: (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel, with the
      stored statistics (never the batch's). Reference: ``F.batch_norm(..., training=False)``.
    """
    g = seeded(11)

    def case(name, shape, hint, **kwargs):
        C = shape[1]
        args = (torch.randn(shape, generator=g) * 3 + 1, torch.rand(C, generator=g) + 0.5,
                torch.randn(C, generator=g), torch.randn(C, generator=g), torch.rand(C, generator=g) * 2 + 0.1)
        return Case(name, args, hint, kwargs=kwargs)

    cases = [
        case("a batch of 2, 3 channels", (2, 3, 4, 5), "Use running_mean and running_var, not x.mean() / x.var()."),
        case("channels differ from width", (1, 4, 3, 6),
             "Reshape the (C,) tensors to (1, C, 1, 1) so they broadcast over channels, not over W."),
        case("a tiny variance", (2, 2, 3, 3), "eps goes inside the square root: sqrt(running_var + eps).",
             eps=0.5),
        case("one image", (1, 5, 2, 2), "Scale by weight, then add bias, after normalising."),
    ]
    return run_checks("frozen_batchnorm", fn, cases, _frozen_bn_reference,
                       ("x", "weight", "bias", "running_mean", "running_var"))
