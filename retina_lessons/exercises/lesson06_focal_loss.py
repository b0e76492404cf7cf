"""Grader for lesson 06 (``notebooks/06_focal_loss.ipynb``): the sigmoid focal loss.

``check_focal_loss(fn)`` expects ``fn(logits, targets, alpha=0.25, gamma=2.0) -> loss`` per
element, finite at logits of +-100; the reference is the library's
``retina_lessons.focal_loss.sigmoid_focal_loss`` (torchvision's values, computed in log space).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import focal_loss
from .runner import Case, run_checks, seeded, tensor


def _focal_loss_reference(logits, targets, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss per element, computed in log space so it stays finite."""
    return focal_loss.sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="none")


def _focal_loss_cases() -> list[Case]:
    g = seeded(1)
    logits = torch.randn(3, 4, generator=g) * 3
    targets = (torch.rand(3, 4, generator=g) < 0.4).float()
    formula_hint = (
        "FL = -alpha_t * (1 - p_t)**gamma * log(p_t), with p_t = p for targets 1 and "
        "1 - p for targets 0, and alpha_t = alpha for targets 1, 1 - alpha for targets 0."
    )
    return [
        Case("default alpha=0.25, gamma=2", (logits, targets), formula_hint),
        Case(
            "positives only (targets all 1)",
            (logits[0], torch.ones(4)),
            "Positives are weighted by alpha and modulated by (1 - p)**gamma.",
        ),
        Case(
            "negatives only (targets all 0)",
            (logits[1], torch.zeros(4)),
            "Negatives are weighted by 1 - alpha and modulated by p**gamma "
            "(gamma goes on 1 - p_t, not on p_t).",
        ),
        Case(
            "gamma=0 is alpha-weighted cross-entropy",
            (logits, targets),
            "With gamma=0 the modulating factor is 1; use the gamma argument, do not hard-code 2.",
            kwargs={"alpha": 0.25, "gamma": 0.0},
        ),
        Case(
            "alpha=0.75, gamma=1",
            (logits, targets),
            "Use the alpha and gamma arguments: alpha_t = alpha * t + (1 - alpha) * (1 - t).",
            kwargs={"alpha": 0.75, "gamma": 1.0},
        ),
        Case(
            "extreme logits +-100",
            (tensor([100.0, -100.0, 100.0, -100.0]), tensor([0.0, 0.0, 1.0, 1.0])),
            "sigmoid(100) rounds to exactly 1.0, so log(1 - p) is -inf. Work with "
            "logits: F.binary_cross_entropy_with_logits for the log term, and "
            "F.logsigmoid for log p and log(1 - p); clamping p only hides the problem.",
        ),
        Case(
            "elementwise output (2, 3, 4)",
            (torch.randn(2, 3, 4, generator=g), (torch.rand(2, 3, 4, generator=g) < 0.5).float()),
            "Return one loss per element, like reduction='none': no sum() or mean().",
        ),
        Case(
            "empty input",
            (torch.zeros(0, 3), torch.zeros(0, 3)),
            "An empty batch gives an empty loss tensor (shape (0, 3)); mean() of nothing is NaN.",
        ),
        Case(
            "float64 logits",
            (logits.double(), targets.double()),
            "Keep the inputs' dtype: build every tensor from the logits.",
            check_dtype=True,
        ),
    ]


def check_focal_loss(fn: Callable) -> bool:
    """Check ``fn(logits, targets, alpha=0.25, gamma=2.0) -> loss``.

    - ``logits``: float tensor of any shape (raw classification scores).
    - ``targets``: float tensor of the same shape, 1 for the object's class, 0 elsewhere.
    - returns: the loss per element (same shape, no reduction), as
      ``torchvision.ops.sigmoid_focal_loss(..., reduction="none")``; finite even at
      logits of +-100.
    """
    return run_checks(
        "focal_loss", fn, _focal_loss_cases(), _focal_loss_reference, ("logits", "targets")
    )
