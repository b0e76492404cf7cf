"""The focal loss explorer: where the loss of ~100k anchors comes from, as gamma and alpha move.

Paper, Section 3 (Eq. 1-5) and Section 5.1 (Figure 1, Table 1, Figure 4). A dense detector
scores some 100k anchors per image and only a handful cover an object. Each easy negative
costs little cross-entropy, but there are so many that together they outweigh everything
else; the focal loss turns them down with the factor (1 - p_t)^gamma. This module puts
numbers on that for a realistic set of anchor scores, and draws them:

- :func:`realistic_anchor_logits`: seeded logits and binary targets of ~100k anchors of
  one image and one class, early in training (how it was chosen is in its docstring).
- :func:`anchor_groups`, :func:`group_losses`, :func:`loss_shares`: the loss summed over
  easy negatives, hard negatives and positives, and each group's share of the total.
- :func:`loss_curves`: CE, FL and the modulating factor as functions of p_t (Figure 1).
- :func:`cumulative_loss_distribution`, :func:`draw_cumulative_loss`: the normalised
  cumulative distribution of the loss of positives and of negatives (Figure 4), for any
  logits and targets, e.g. a trained detector's.
- :class:`FocalExplorer`: three panels redrawn in place by ``update(gamma, alpha)``
  (everything that does not depend on gamma and alpha is computed once, matplotlib
  artists are moved, the figure is blitted into a PNG for an ``ipywidgets.Image``), and
  :func:`focal_explorer`, the sliders around it. No ``ipympl`` needed: it works in
  JupyterLab 4 with ipywidgets 8 as installed.

Taught in ``notebooks/06_focal_loss.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..config import FOCAL_ALPHA, FOCAL_GAMMA, PRIOR_PROB
from ..focal_loss import NO_ALPHA, log_one_minus_p_t, sigmoid_focal_loss
from .canvas import Canvas, encode_image, html_table

GROUPS = ("easy negatives", "hard negatives", "positives")
# An example counts as easy (well classified) from p_t = 0.9 on: a negative scored p <= 0.1.
# There the gamma = 2 factor is (1 - 0.9)^2 = 0.01, the paper's "100x lower loss" example.
EASY_P_T = 0.9
FIGURE1_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)  # the curves of the paper's Figure 1
FIGURE4_GAMMAS = (0.0, 0.5, 1.0, 2.0)  # the curves of the paper's Figure 4
# Okabe-Ito colours, told apart also by readers with a red-green colour deficiency.
GROUP_COLOURS = {"easy negatives": "#56B4E9", "hard negatives": "#0072B2", "positives": "#009E73"}
CE_COLOUR = "#000000"
FL_COLOURS = {"positive": "#D55E00", "negative": "#0072B2"}
LOSSES = ("CE", "α-balanced CE", "FL")  # the bars of the explorer, one colour each
LOSS_COLOURS = {"CE": "#BBBBBB", "α-balanced CE": "#E69F00", "FL": "#D55E00"}
GAMMA_RANGE = (0.0, 5.0)  # slider ranges of the explorer
ALPHA_RANGE = (0.0, 1.0)


# ----------------------------------------------------------------------------- the anchors


def realistic_anchor_logits(
    num_anchors: int = 100_000,
    num_positives: int = 100,
    *,
    hard_fraction: float = 0.01,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Logits (N,) and binary targets (N,) for one class over the anchors of one image.

    How the distribution was chosen (a detector early in training, where the imbalance
    matters most; every number is an argument or stated here):

    - ``num_anchors`` ~ 100k, as the paper says a one-stage detector enumerates per image
      (144,009 on an 800-pixel photo, lesson 00); ``num_positives`` = 100 anchors on a
      handful of objects (a few to a few dozen anchors each reach IoU >= 0.5), which is
      the paper's ~1:1000 foreground-background ratio.
    - Easy negatives (a fraction ``1 - hard_fraction`` of the negatives): the prior
      initialisation (Section 3.3) starts every anchor at p = PRIOR_PROB = 0.01, logit
      -4.6, and plain background stays there or drops: logit ~ Normal(-4.6, 1).
    - Hard negatives (``hard_fraction`` = 1 % of the negatives, ~1,000): background that
      looks like an object (a part of one, a box just short of IoU 0.4, texture): logit
      ~ Normal(-1, 1), so p mostly between 0.05 and 0.7.
    - Positives: some already found, some still missed: logit ~ Normal(0, 2).

    The groups overlap in p: which anchors count as easy is decided by p_t alone
    (:func:`anchor_groups`), not by the component an anchor was drawn from. Positives come
    last in the returned tensors; the order does not matter to any function here.
    """
    if not isinstance(num_anchors, int) or num_anchors < 1:
        raise ValueError(f"num_anchors must be a positive integer, got {num_anchors!r}")
    if not isinstance(num_positives, int) or not 0 <= num_positives <= num_anchors:
        raise ValueError(
            f"num_positives must be an integer in [0, num_anchors={num_anchors}], got {num_positives!r}"
        )
    if not 0 <= hard_fraction <= 1:
        raise ValueError(f"hard_fraction must be in [0, 1], got {hard_fraction!r}")
    generator = torch.Generator().manual_seed(seed)
    num_negatives = num_anchors - num_positives
    num_hard = round(hard_fraction * num_negatives)
    prior_logit = math.log(PRIOR_PROB / (1 - PRIOR_PROB))

    def normal(n: int, mean: float, std: float) -> Tensor:
        return torch.randn(n, generator=generator, dtype=dtype) * std + mean

    logits = torch.cat(
        [
            normal(num_negatives - num_hard, prior_logit, 1.0),  # easy negatives
            normal(num_hard, -1.0, 1.0),  # hard negatives
            normal(num_positives, 0.0, 2.0),  # positives
        ]
    )
    targets = torch.zeros(num_anchors, dtype=dtype)
    targets[num_negatives:] = 1.0
    return logits, targets


def _check_anchors(logits: Tensor, targets: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.dim() != 1 or not logits.is_floating_point():
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a floating-point tensor of shape (N,), got {got}")
    if not isinstance(targets, Tensor) or targets.shape != logits.shape:
        got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must have the shape of logits {tuple(logits.shape)}, got {got}")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError("targets must be binary (0 = negative, 1 = positive)")


def _check_easy_p_t(easy_p_t: float) -> None:
    if not 0 < easy_p_t < 1:
        raise ValueError(f"easy_p_t must be in (0, 1), got {easy_p_t!r}")


def p_t_of(logits: Tensor, targets: Tensor) -> Tensor:
    """p_t (Eq. 2): the probability the model gives to the right answer, p or 1 - p."""
    return torch.sigmoid(torch.where(targets == 1, logits, -logits))


def anchor_groups(logits: Tensor, targets: Tensor, easy_p_t: float = EASY_P_T) -> dict[str, Tensor]:
    """Boolean masks (N,) for the GROUPS: negatives with p_t >= easy_p_t are easy, the rest hard."""
    _check_anchors(logits, targets)
    _check_easy_p_t(easy_p_t)
    negative = targets == 0
    easy = p_t_of(logits, targets) >= easy_p_t
    return {
        "easy negatives": negative & easy,
        "hard negatives": negative & ~easy,
        "positives": ~negative,
    }


def group_losses(
    gamma: float, alpha: float, logits: Tensor, targets: Tensor, easy_p_t: float = EASY_P_T
) -> dict[str, float]:
    """The focal loss (Eq. 5; gamma = 0 and alpha = -1 give CE) summed over each group."""
    loss = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma)  # (N,)
    groups = anchor_groups(logits, targets, easy_p_t)
    return {name: float(loss[mask].sum()) for name, mask in groups.items()}


def _shares(sums: dict[str, float]) -> dict[str, float]:
    total = sum(sums.values())
    return {name: (value / total if total > 0 else 0.0) for name, value in sums.items()}


def loss_shares(
    gamma: float, alpha: float, logits: Tensor, targets: Tensor, easy_p_t: float = EASY_P_T
) -> dict[str, float]:
    """Each group's share of the total focal loss: three fractions that sum to 1."""
    return _shares(group_losses(gamma, alpha, logits, targets, easy_p_t))


# ----------------------------------------------------------------------------- the curves


def loss_curves(
    gamma: float, alpha: float, p_t: Tensor | np.ndarray | Sequence[float]
) -> dict[str, np.ndarray]:
    """Figure 1's curves at the given p_t in (0, 1), computed with the library's loss.

    Returns NumPy arrays: ``"CE"`` = -log(p_t), ``"factor"`` = (1 - p_t)^gamma, ``"FL"`` without
    alpha (Eq. 4), and ``"FL positive"`` / ``"FL negative"`` with alpha_t = alpha / 1 - alpha
    (Eq. 5; both equal ``"FL"`` for alpha = -1).
    """
    p_t = torch.as_tensor(np.asarray(p_t, dtype=np.float64))
    if not bool(((p_t > 0) & (p_t < 1)).all()):
        raise ValueError("p_t must lie in the open interval (0, 1)")
    logits = torch.logit(p_t)  # a positive whose p is p_t
    targets = torch.ones_like(logits)
    ce = sigmoid_focal_loss(logits, targets, alpha=NO_ALPHA, gamma=0.0)
    fl = sigmoid_focal_loss(logits, targets, alpha=NO_ALPHA, gamma=gamma)
    _check_gamma_alpha(gamma, alpha)
    weight_pos, weight_neg = (1.0, 1.0) if alpha == NO_ALPHA else (alpha, 1.0 - alpha)
    return {
        "CE": ce.numpy(),
        "factor": torch.exp(gamma * log_one_minus_p_t(logits, targets)).numpy(),
        "FL": fl.numpy(),
        "FL positive": weight_pos * fl.numpy(),
        "FL negative": weight_neg * fl.numpy(),
    }


def cumulative_loss_distribution(
    losses_pos: Tensor | np.ndarray, losses_neg: Tensor | np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Figure 4's curves: the normalised cumulative distribution of the loss, per class.

    For positives and for negatives separately: sort the per-example losses from low to
    high, take the running sum and divide by the total. Returns ``{"positives": (fraction,
    cumulative), "negatives": (fraction, cumulative)}``, NumPy arrays of the group's length
    n: ``fraction[i] = (i + 1) / n`` of the examples (easiest first) carry
    ``cumulative[i]`` of the group's loss (1 at the end). An empty group gives empty arrays;
    a group whose loss is all zero gives zeros.
    """
    curves = {}
    for name, losses in (("positives", losses_pos), ("negatives", losses_neg)):
        values = np.sort(
            np.asarray(torch.as_tensor(losses).detach().cpu(), dtype=np.float64).ravel()
        )
        if values.size and (not np.isfinite(values).all() or values[0] < 0):
            raise ValueError(f"losses_{name[:3]} must be finite and >= 0")
        running = np.cumsum(values)
        total = running[-1] if values.size else 0.0
        cumulative = running / total if total > 0 else np.zeros_like(running)
        fraction = np.arange(1, values.size + 1, dtype=np.float64) / max(values.size, 1)
        curves[name] = (fraction, cumulative)
    return curves


def hardest_share(losses: Tensor | np.ndarray, fraction: float) -> float:
    """The share of the total loss carried by the hardest ``fraction`` of the examples."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    values = np.sort(np.asarray(torch.as_tensor(losses).detach().cpu(), dtype=np.float64).ravel())
    total = values.sum()
    num_hardest = round(fraction * values.size)
    return (
        float(values[values.size - num_hardest :].sum() / total)
        if total > 0 and num_hardest
        else 0.0
    )


def draw_cumulative_loss(
    logits: Tensor,
    targets: Tensor,
    gammas: Sequence[float] = FIGURE4_GAMMAS,
    axes=None,
    max_points: int = 2000,
) -> Figure:
    """Draw the paper's Figure 4 for any per-anchor logits (N,) and binary targets (N,).

    One panel for positives and one for negatives, a curve per gamma. alpha is left out: it
    scales a whole class, and each curve is normalised within its class. ``axes``: a pair of
    matplotlib Axes to draw on (default: a new figure). Curves are drawn through at most
    ``max_points`` points each, so millions of anchors draw quickly.
    """
    _check_anchors(logits, targets)
    if axes is None:
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    positive = targets == 1
    colours = _gamma_colours(len(gammas))
    for gamma, colour in zip(gammas, colours):
        loss = sigmoid_focal_loss(logits, targets, alpha=NO_ALPHA, gamma=gamma)  # (N,)
        curves = cumulative_loss_distribution(loss[positive], loss[~positive])
        for ax, name in zip(axes, ("positives", "negatives")):
            fraction, cumulative = curves[name]
            if fraction.size:
                keep = np.unique(np.linspace(0, fraction.size - 1, max_points).round().astype(int))
                ax.plot(
                    np.r_[0.0, fraction[keep]],
                    np.r_[0.0, cumulative[keep]],
                    color=colour,
                    linewidth=2,
                    label=f"γ = {gamma:g}",
                )
    for ax, name in zip(axes, ("positives", "negatives")):
        count = int(positive.sum()) if name == "positives" else int((~positive).sum())
        ax.set_title(f"{name} ({count:,} examples)")
        ax.set_xlabel(
            f"fraction of {'foreground' if name == 'positives' else 'background'} examples"
        )
        ax.set_ylabel("cumulative normalised loss")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="upper left")
        else:
            ax.text(0.5, 0.5, f"no {name}", ha="center", va="center", transform=ax.transAxes)
    return fig


def _gamma_colours(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["viridis"](v) for v in np.linspace(0.0, 0.85, n)]


# ----------------------------------------------------------------------------- the explorer


class FocalExplorer:
    """Three panels for one (gamma, alpha): loss vs p_t, the modulating factor, loss shares.

    - left: CE and FL for a positive (alpha_t = alpha) and a negative (alpha_t = 1 - alpha)
      against p_t, as in the paper's Figure 1;
    - middle: the modulating factor (1 - p_t)^gamma, log scale, with its value at EASY_P_T;
    - right: the share of the total loss of the easy negatives, hard negatives and positives
      of ``logits``/``targets`` (default: :func:`realistic_anchor_logits`) under CE, alpha-
      balanced CE (Eq. 3) and FL (Eq. 5), with the percentages and the summed losses.

    Per anchor CE, log(1 - p_t) and the groups are computed once; :meth:`update` only
    evaluates exp(gamma * log(1 - p_t)) * CE per group and moves the artists, and
    :meth:`render` blits them over a saved background into PNG bytes.

    Text is the slowest thing matplotlib draws (a few ms per label), so with
    ``numbers_in_figure=False`` (the widget's choice) the numbers that move are left out
    of the picture and shown by :meth:`table_html` instead, as HTML the browser draws.
    """

    def __init__(
        self,
        logits: Tensor | None = None,
        targets: Tensor | None = None,
        *,
        gamma: float = FOCAL_GAMMA,
        alpha: float = FOCAL_ALPHA,
        easy_p_t: float = EASY_P_T,
        title: bool = False,
        numbers_in_figure: bool = True,
        figsize=(13.0, 4.3),
        dpi: int = 80,
    ) -> None:
        if logits is None and targets is None:
            logits, targets = realistic_anchor_logits()
        _check_anchors(logits, targets)
        _check_easy_p_t(easy_p_t)
        logits, targets = (
            logits.detach().to("cpu", torch.float64),
            targets.detach().to("cpu", torch.float64),
        )
        self.easy_p_t = easy_p_t
        # Everything that does not depend on gamma and alpha, per group, as NumPy arrays.
        ce = sigmoid_focal_loss(logits, targets, alpha=NO_ALPHA, gamma=0.0).numpy()
        log_factor = log_one_minus_p_t(logits, targets).numpy()
        groups = anchor_groups(logits, targets, easy_p_t)
        self.counts = {name: int(mask.sum()) for name, mask in groups.items()}
        self._ce = {name: ce[mask.numpy()] for name, mask in groups.items()}
        self._log_factor = {name: log_factor[mask.numpy()] for name, mask in groups.items()}
        self._ce_sums = {name: float(values.sum()) for name, values in self._ce.items()}
        self.p_t = np.linspace(0.001, 0.999, 500)
        self._ce_curve = -np.log(self.p_t)

        # A figure of its own, outside pyplot: a notebook shows it only when asked to.
        self.canvas = Canvas(figsize, dpi)
        self.fig = self.canvas.fig
        self._build(title, numbers_in_figure)
        self._png: bytes | None = None
        self.gamma, self.alpha = gamma, alpha
        self.update(gamma, alpha)

    # --- numbers ------------------------------------------------------------------------------

    def group_losses(self, gamma: float, alpha: float) -> dict[str, float]:
        """Same as :func:`group_losses` on the explorer's anchors, from the precomputed parts."""
        _check_gamma_alpha(gamma, alpha)
        sums = {}
        for name in GROUPS:
            focal = (
                self._ce[name]
                if gamma == 0
                else np.exp(gamma * self._log_factor[name]) * self._ce[name]
            )
            weight = 1.0 if alpha == NO_ALPHA else (alpha if name == "positives" else 1.0 - alpha)
            sums[name] = weight * float(focal.sum())
        return sums

    def numbers(self, gamma: float, alpha: float) -> dict[str, dict[str, float]]:
        """Summed loss and shares per group under CE, alpha-balanced CE and FL."""
        sums = {
            "CE": dict(self._ce_sums),
            "α-balanced CE": self.group_losses(0.0, alpha),
            "FL": self.group_losses(gamma, alpha),
        }
        return {
            loss: {"sums": s, "shares": _shares(s), "total": sum(s.values())}
            for loss, s in sums.items()
        }

    # --- drawing ------------------------------------------------------------------------------

    def _build(self, title: bool, numbers_in_figure: bool) -> None:
        fig = self.fig
        ax_loss, ax_factor, ax_share = fig.subplots(
            1,
            3,
            gridspec_kw={
                "width_ratios": [1, 1, 1.25],
                "left": 0.05,
                "right": 0.99,
                "bottom": 0.25 if numbers_in_figure else 0.2,
                "top": 0.83 if title else 0.9,
                "wspace": 0.28,
            },
        )
        easy = {"color": "0.92", "zorder": 0}
        # Left: loss vs p_t.
        ax_loss.axvspan(self.easy_p_t, 1, **easy)
        ax_loss.plot(
            self.p_t, self._ce_curve, color=CE_COLOUR, linewidth=1.5, label=r"CE $= -\log(p_t)$"
        )
        (self._fl_pos,) = ax_loss.plot(
            self.p_t,
            self._ce_curve,
            color=FL_COLOURS["positive"],
            linewidth=2,
            label=r"FL, a positive ($\alpha_t = \alpha$)",
            animated=True,
        )
        (self._fl_neg,) = ax_loss.plot(
            self.p_t,
            self._ce_curve,
            color=FL_COLOURS["negative"],
            linewidth=2,
            linestyle="--",
            label=r"FL, a negative ($\alpha_t = 1 - \alpha$)",
            animated=True,
        )
        ax_loss.set_xlim(0, 1)
        ax_loss.set_ylim(0, 5)
        ax_loss.set_xlabel(r"probability of the ground-truth class, $p_t$")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("Loss of one example (Figure 1)")
        ax_loss.legend(loc="upper center", fontsize=8)
        # Middle: the modulating factor.
        ax_factor.axvspan(self.easy_p_t, 1, **easy)
        ax_factor.text(
            0.5 * (1 + self.easy_p_t),
            3e-4,
            "easy",
            rotation=90,
            ha="center",
            va="center",
            fontsize=8,
        )
        (self._factor,) = ax_factor.plot(
            self.p_t,
            np.ones_like(self.p_t),
            color=FL_COLOURS["positive"],
            linewidth=2,
            animated=True,
        )
        (self._factor_dot,) = ax_factor.plot(
            [self.easy_p_t], [1.0], "o", color=FL_COLOURS["positive"], animated=True
        )
        self._factor_text = ax_factor.text(
            0.03, 0.04, "", transform=ax_factor.transAxes, fontsize=9, animated=True
        )
        ax_factor.set_yscale("log")
        ax_factor.set_xlim(0, 1)
        ax_factor.set_ylim(1e-6, 2)
        ax_factor.set_xlabel(r"probability of the ground-truth class, $p_t$")
        ax_factor.set_ylabel(r"$(1 - p_t)^\gamma$  (log scale)")
        ax_factor.set_title("Modulating factor = FL / CE without α")
        ax_factor.grid(alpha=0.3, which="major")
        # Right: grouped bars, one group per kind of anchor, one bar per loss. CE does not
        # depend on the sliders: its bars are drawn once, into the background.
        width = 0.26
        x = np.arange(len(GROUPS))
        ce_shares = _shares(self._ce_sums)
        self._bars, self._bar_labels = {}, {}
        for i, loss in enumerate(LOSSES):
            heights = (
                [100 * ce_shares[name] for name in GROUPS]
                if loss == "CE"
                else np.zeros(len(GROUPS))
            )
            moving = loss != "CE"
            bars = ax_share.bar(
                x + (i - 1) * width,
                heights,
                width,
                color=LOSS_COLOURS[loss],
                edgecolor="black",
                linewidth=0.5,
                label=loss,
                animated=moving,
            )
            labels = [
                ax_share.text(
                    bar.get_x() + bar.get_width() / 2,
                    bar.get_height() + 1,
                    _percent(bar.get_height()) if not moving else "",
                    ha="center",
                    va="bottom",
                    fontsize=7.5,
                    animated=moving,
                )
                for bar in bars
            ]
            self._bars[loss], self._bar_labels[loss] = bars, labels
        ax_share.set_xticks(x, [f"{name}\n({self.counts[name]:,} anchors)" for name in GROUPS])
        ax_share.set_ylim(0, 118)
        ax_share.set_ylabel("share of the summed loss (%)")
        ax_share.legend(loc="upper left", fontsize=8, ncols=3)
        ax_share.set_title(f"Where the loss of {sum(self.counts.values()):,} anchors comes from")
        self._totals = fig.text(
            0.5 * (ax_share.get_position().x0 + ax_share.get_position().x1),
            0.015,
            "",
            ha="center",
            va="bottom",
            fontsize=9,
            animated=True,
        )
        self._title = fig.suptitle("", fontsize=12, animated=True) if title else None
        self.axes = (ax_loss, ax_factor, ax_share)
        self._animated = [
            self._fl_pos,
            self._fl_neg,
            self._factor,
            self._factor_dot,
            self._factor_text,
            *[b for loss in LOSSES[1:] for b in self._bars[loss]],
            *[t for loss in LOSSES[1:] for t in self._bar_labels[loss]],
            self._totals,
        ]
        if self._title is not None:
            self._animated.append(self._title)
        if not numbers_in_figure:
            texts = [
                self._factor_text,
                self._totals,
                *[t for loss in LOSSES for t in self._bar_labels[loss]],
            ]
            for text in texts:
                text.set_visible(False)
            self._animated = [artist for artist in self._animated if artist not in texts]

    def update(self, gamma: float, alpha: float) -> dict[str, float]:
        """Move every artist to (gamma, alpha); return FL's share of each group (sums to 1)."""
        numbers = self.numbers(gamma, alpha)  # validates gamma and alpha first
        self.gamma, self.alpha = gamma, alpha
        factor = np.exp(gamma * np.log1p(-self.p_t))  # (1 - p_t)^gamma, 1 at gamma = 0
        fl = factor * self._ce_curve
        weight_pos, weight_neg = (1.0, 1.0) if alpha == NO_ALPHA else (alpha, 1.0 - alpha)
        self._fl_pos.set_ydata(weight_pos * fl)
        self._fl_neg.set_ydata(weight_neg * fl)
        self._factor.set_ydata(np.maximum(factor, 1e-300))  # log axis: no zeros
        at_easy = (1 - self.easy_p_t) ** gamma
        self._factor_dot.set_ydata([max(at_easy, 1e-300)])
        less = f" ({1 / at_easy:,.0f}× less)" if at_easy < 1 else " (= CE)"
        self._factor_text.set_text(f"p_t = {self.easy_p_t:g}: ×{at_easy:.3g}{less}")
        for loss in LOSSES[1:]:
            shares = numbers[loss]["shares"]
            for bar, text, name in zip(self._bars[loss], self._bar_labels[loss], GROUPS):
                height = 100 * shares[name]
                bar.set_height(height)
                text.set_y(height + 1)
                text.set_text(_percent(height))
        totals = ",  ".join(f"{loss} {numbers[loss]['total']:,.1f}" for loss in LOSSES)
        self._totals.set_text(f"summed loss: {totals}")
        if self._title is not None:
            self._title.set_text(f"Focal loss with γ = {gamma:.2f}, α = {alpha:.2f}")
        self._png = None
        return numbers["FL"]["shares"]

    def render(self) -> bytes:
        """The current picture as PNG bytes: the saved static background, the moving artists on top."""
        if self._png is None:
            if not self.canvas.has():
                self.canvas.save()  # animated artists are left out of a full draw
            self._png = encode_image(self.canvas.pixels(None, self._animated))  # (H, W, 3) uint8 -> PNG
        return self._png

    def _repr_png_(self) -> bytes:
        return self.render()

    def table_html(self) -> str:
        """The numbers behind the picture: per group and loss, the share and the summed loss."""
        numbers = self.numbers(self.gamma, self.alpha)
        at_easy = (1 - self.easy_p_t) ** self.gamma
        less = f", {1 / at_easy:,.0f}× less than CE" if at_easy < 1 else ", the same as CE"
        header = ["share of the loss (summed loss)", *(f"{name}<br>({self.counts[name]:,})" for name in GROUPS),
                  "summed loss"]
        rows = [[loss, *(f"{100 * numbers[loss]['shares'][name]:.1f}% ({numbers[loss]['sums'][name]:,.2f})"
                         for name in GROUPS), f"{numbers[loss]['total']:,.2f}"] for loss in LOSSES]
        return (
            f"<b>γ = {self.gamma:.2f}, α = {self.alpha:.2f}</b>: at p_t = {self.easy_p_t:g} the "
            f"modulating factor is {at_easy:.3g}{less}.<br>" + html_table(header, rows)
        )

    def widget(self):
        """Sliders for gamma and alpha over the picture (an ``ipywidgets.Image``) and the numbers."""
        import ipywidgets as W

        gamma = W.FloatSlider(
            value=self.gamma, min=GAMMA_RANGE[0], max=GAMMA_RANGE[1], step=0.1,
            description="γ (gamma)", readout_format=".1f", continuous_update=True,
        )  # fmt: skip
        alpha = W.FloatSlider(
            value=self.alpha, min=ALPHA_RANGE[0], max=ALPHA_RANGE[1], step=0.05,
            description="α (alpha)", readout_format=".2f", continuous_update=True,
        )  # fmt: skip
        picture = W.Image(value=self.render(), format="png")
        table = W.HTML(value=self.table_html())

        def on_change(_change=None):
            self.update(gamma.value, alpha.value)
            picture.value = self.render()
            table.value = self.table_html()

        gamma.observe(on_change, names="value")
        alpha.observe(on_change, names="value")
        return W.VBox([W.HBox([gamma, alpha]), picture, table])


def _percent(value: float) -> str:
    return f"{value:.0f}%" if value >= 9.5 or value == 0 else f"{value:.1f}%"


def _check_gamma_alpha(gamma: float, alpha: float) -> None:
    # The library's loss holds the rules; one tiny call keeps them in one place.
    sigmoid_focal_loss(torch.zeros(1), torch.zeros(1), alpha=alpha, gamma=gamma)


def draw_explorer(
    gamma: float = FOCAL_GAMMA,
    alpha: float = FOCAL_ALPHA,
    logits: Tensor | None = None,
    targets: Tensor | None = None,
) -> Figure:
    """The explorer's figure for one (gamma, alpha), drawn in full (for a static page or a file)."""
    explorer = FocalExplorer(logits, targets, gamma=gamma, alpha=alpha, title=True)
    for artist in explorer._animated:
        artist.set_animated(False)
    return explorer.fig


def focal_explorer(
    logits: Tensor | None = None,
    targets: Tensor | None = None,
    *,
    gamma: float = FOCAL_GAMMA,
    alpha: float = FOCAL_ALPHA,
):
    """The explorer with its gamma and alpha sliders, ready to be the last line of a cell."""
    explorer = FocalExplorer(logits, targets, gamma=gamma, alpha=alpha, numbers_in_figure=False)
    return explorer.widget()
