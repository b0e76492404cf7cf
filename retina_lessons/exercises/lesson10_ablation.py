"""Grader for lesson 10 (``notebooks/10_ablation.ipynb``): the focal loss's modulating factor.

``check_modulating_factor(fn)`` expects ``fn(logits, targets, gamma) -> (1 - p_t) ** gamma`` per
element; the reference takes log(1 - p_t) from ``retina_lessons.focal_loss.log_one_minus_p_t``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import focal_loss
from .runner import Case, run_checks, seeded, tensor


def _modulating_reference(logits, targets, gamma):
    return torch.exp(gamma * focal_loss.log_one_minus_p_t(logits, targets))


def check_modulating_factor(fn: Callable) -> bool:
    """Check ``fn(logits, targets, gamma) -> (1 - p_t) ** gamma`` per element.

    p = sigmoid(logits); p_t = p where the target is 1 and 1 - p where it is 0. The factor is 1 for
    gamma = 0 and shrinks the loss of well-classified anchors (p_t near 1) as gamma grows.
    """
    g = seeded(13)
    logits = torch.randn(2, 5, generator=g) * 3
    targets = (torch.rand(2, 5, generator=g) > 0.5).float()
    cases = [
        Case("gamma = 2", (logits, targets, 2.0), "p_t is p for positives and 1 - p for negatives."),
        Case("only negatives", (logits, torch.zeros_like(logits), 2.0),
              "For a negative (t = 0), 1 - p_t = p: a confident negative has p near 0 and a tiny factor."),
        Case("gamma = 0", (logits, targets, 0.0), "With gamma = 0 the factor is exactly 1 (cross-entropy)."),
        Case("gamma = 5", (logits, targets, 5.0), "Raise (1 - p_t) to the power gamma, not gamma to a power."),
        Case("saturated logits", (tensor([[-40.0, 40.0, 40.0]]), tensor([[0.0, 1.0, 0.0]]), 0.5),
              "Stay finite at large logits: compute log(1 - p_t) with F.logsigmoid, then exp(gamma * ...)."),
    ]
    return run_checks("modulating_factor", fn, cases, _modulating_reference, ("logits", "targets", "gamma"))
