"""Sigmoid focal loss: the loss that lets a one-stage detector train on ~100k anchors.

A dense detector scores every anchor for every class, so almost all of its binary
classification problems are easy negatives (background the network already rejects).
Each contributes a small cross-entropy, but there are so many that their sum swamps
the few positives. The focal loss (paper Section 3, Eq. 1-5) multiplies the
cross-entropy by a modulating factor (1 - p_t)^gamma that vanishes for well-classified
examples, so training focuses on the hard ones.

Taught by ``notebooks/06_focal_loss.ipynb``. Same signature and values as
``torchvision.ops.sigmoid_focal_loss``, but computed so that the gradient stays finite
at saturated logits for every gamma >= 0 (torchvision's is NaN there when gamma < 1).
"""

import math
from numbers import Real

import torch
import torch.nn.functional as F

# The paper's defaults (Section 5.1: gamma = 2, alpha = 0.25), named once in config.py.
from .config import (  # NO_ALPHA: pass as alpha to switch the weighting off
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    NO_ALPHA,
)

REDUCTIONS = ("none", "mean", "sum")

__all__ = ["FOCAL_ALPHA", "FOCAL_GAMMA", "NO_ALPHA", "log_one_minus_p_t", "sigmoid_focal_loss"]


def sigmoid_focal_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
    reduction: str = "none",
) -> torch.Tensor:
    r"""Focal loss of logits ``inputs`` against binary (or soft) ``targets``.

    With p = sigmoid(x) the predicted probability of the positive class and
    t in {0, 1} the label, the paper defines (Section 3)

    - Eq. 1  CE(p, t) = -log(p) if t = 1, -log(1 - p) otherwise
    - Eq. 2  p_t = p if t = 1, 1 - p otherwise, so CE(p, t) = CE(p_t) = -log(p_t)
    - Eq. 3  CE(p_t) = -alpha_t log(p_t), with alpha_t = alpha if t = 1, 1 - alpha otherwise
    - Eq. 4  FL(p_t) = -(1 - p_t)^gamma log(p_t)
    - Eq. 5  FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)

    and this function returns Eq. 5 (Eq. 4 with ``alpha=-1``). For soft targets t in
    [0, 1] it uses the same interpolations as torchvision: p_t = p t + (1 - p)(1 - t),
    alpha_t = alpha t + (1 - alpha)(1 - t).

    Why it is computed this way: -log(p_t) is ``binary_cross_entropy_with_logits``,
    exact from the logit. The modulating factor is taken in log space,
    (1 - p_t)^gamma = exp(gamma log(1 - p_t)), with log(1 - p_t) from ``logsigmoid``:

        t = 1:  1 - p_t = sigmoid(-x),  so log(1 - p_t) = logsigmoid(-x)
        t = 0:  1 - p_t = sigmoid(x),   so log(1 - p_t) = logsigmoid(x)
        soft t: 1 - p_t = t sigmoid(-x) + (1 - t) sigmoid(x), summed with logaddexp

    Forming 1 - p_t from probabilities instead rounds it to 0 at saturated logits
    (|x| >~ 17 in float32), and the derivative of 0^gamma is infinite for gamma < 1:
    torchvision's gradient is then inf * 0 = NaN. In log space every gradient with
    respect to ``inputs`` is finite (second derivatives too), and gamma = 0 gives a
    factor of exactly 1.

    Args:
        inputs: logits, a floating-point tensor of any shape, e.g. cls_logits (B, N, K).
        targets: same shape and floating dtype, values in [0, 1] (1 = positive class).
            They are labels: gradients are meant for ``inputs``.
        alpha: weight of the positive class in [0, 1], or -1 for no weighting.
        gamma: focusing parameter, >= 0 (gamma = 0 is cross-entropy).
        reduction: ``"none"`` (per element, the shape of ``inputs``), ``"mean"`` or ``"sum"``.

    Returns:
        The loss, reduced as asked.

    Raises:
        ValueError: on a negative gamma, alpha outside [0, 1] other than -1, an unknown
            reduction, non-floating tensors, shapes that differ, or targets outside [0, 1].
    """
    _check_arguments(inputs, targets, alpha, gamma, reduction)

    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")  # Eq. 1-2
    loss = ce_loss
    if gamma != 0:
        modulating_factor = torch.exp(gamma * log_one_minus_p_t(inputs, targets))
        loss = modulating_factor * ce_loss  # Eq. 4
    if alpha != NO_ALPHA:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss  # Eq. 3 / Eq. 5

    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def log_one_minus_p_t(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log(1 - p_t) from logits ``inputs`` and labels ``targets`` (same shape).

    Exact for hard labels (t in {0, 1}) and finite for every finite logit, so that
    (1 - p_t)^gamma = exp(gamma * log(1 - p_t)) has finite gradients for every gamma >= 0.
    """
    # Hard labels: 1 - p_t = sigmoid((1 - 2t) x), which is sigmoid(-x) for t = 1, sigmoid(x) for t = 0.
    log_hard = F.logsigmoid((1 - 2 * targets) * inputs)
    is_soft = (targets > 0) & (targets < 1)
    if not bool(is_soft.any()):
        return log_hard
    # Soft labels: 1 - p_t = t sigmoid(-x) + (1 - t) sigmoid(x). Hard entries get t = 0.5
    # in this branch so that log(t) and log(1 - t) stay finite (and so do their gradients).
    soft_targets = torch.where(is_soft, targets, 0.5)
    log_soft = torch.logaddexp(
        torch.log(soft_targets) + F.logsigmoid(-inputs),
        torch.log1p(-soft_targets) + F.logsigmoid(inputs),
    )
    return torch.where(is_soft, log_soft, log_hard)


def _check_arguments(inputs, targets, alpha, gamma, reduction) -> None:
    for name, tensor in (("inputs", inputs), ("targets", targets)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            kind = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{name} must be a floating-point tensor, got {kind}")
    if inputs.shape != targets.shape:
        raise ValueError(
            f"targets must have the shape of inputs {tuple(inputs.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if not isinstance(gamma, Real) or not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    if not isinstance(alpha, Real) or not (0 <= alpha <= 1 or alpha == NO_ALPHA):
        raise ValueError(f"alpha must be in [0, 1], or -1 for no weighting, got {alpha!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    in_range = (targets >= 0) & (targets <= 1)
    if not bool(in_range.all()):
        bad = targets[~in_range][0].item()
        raise ValueError(f"targets must lie in [0, 1], got a value of {bad}")
