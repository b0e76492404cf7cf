import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image

from retina_lessons.config import PRIOR_PROB
from retina_lessons.explorers.focal import (
    EASY_P_T,
    FIGURE4_GAMMAS,
    GROUPS,
    FocalExplorer,
    anchor_groups,
    cumulative_loss_distribution,
    draw_cumulative_loss,
    draw_explorer,
    focal_explorer,
    group_losses,
    hardest_share,
    loss_curves,
    loss_shares,
    p_t_of,
    realistic_anchor_logits,
)
from retina_lessons.focal_loss import sigmoid_focal_loss


@pytest.fixture(scope="module")
def anchors():
    return realistic_anchor_logits()


@pytest.fixture(scope="module")
def explorer(anchors):
    return FocalExplorer(*anchors)


# ----------------------------------------------------------------------------- the anchors


def test_realistic_anchors_shape_counts_and_seed(anchors):
    logits, targets = anchors
    assert logits.shape == targets.shape == (100_000,)
    assert logits.dtype == targets.dtype == torch.float64
    assert int(targets.sum()) == 100
    assert set(targets.unique().tolist()) == {0.0, 1.0}
    again, _ = realistic_anchor_logits()
    assert torch.equal(logits, again)
    other, _ = realistic_anchor_logits(seed=1)
    assert not torch.equal(logits, other)


def test_realistic_anchors_follow_the_documented_distribution(anchors):
    logits, targets = anchors
    negatives = logits[targets == 0]
    # Most negatives sit at the prior's logit, log(0.01 / 0.99) = -4.6.
    assert abs(negatives.median().item() - math.log(PRIOR_PROB / (1 - PRIOR_PROB))) < 0.1
    # About 1 % of the negatives are hard (p > 0.1), plus the tail of the easy ones.
    p = torch.sigmoid(negatives)
    assert 0.01 < (p > 0.1).double().mean().item() < 0.025
    assert abs(logits[targets == 1].mean().item()) < 0.5


def test_realistic_anchors_arguments():
    logits, targets = realistic_anchor_logits(
        1000, 7, hard_fraction=0.1, seed=3, dtype=torch.float32
    )
    assert logits.shape == (1000,) and logits.dtype == torch.float32
    assert int(targets.sum()) == 7
    empty_image, no_positives = realistic_anchor_logits(50, 0)
    assert no_positives.sum() == 0


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"num_anchors": 0}, "num_anchors"),
        ({"num_positives": -1}, "num_positives"),
        ({"num_anchors": 10, "num_positives": 11}, "num_positives"),
        ({"hard_fraction": 1.5}, "hard_fraction"),
    ],
)
def test_realistic_anchors_reject_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        realistic_anchor_logits(**kwargs)


def test_p_t_is_the_probability_of_the_right_answer():
    logits = torch.tensor([2.0, 2.0, -3.0, -3.0], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    p = torch.sigmoid(logits)
    torch.testing.assert_close(p_t_of(logits, targets), torch.where(targets == 1, p, 1 - p))


def test_anchor_groups_partition_by_p_t():
    # p = 0.05 and 0.1 (easy negatives at EASY_P_T = 0.9), 0.5 (hard), and two positives.
    p = torch.tensor([0.05, 0.1, 0.5, 0.99, 0.01], dtype=torch.float64)
    targets = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    groups = anchor_groups(torch.logit(p), targets, easy_p_t=0.899999)
    assert groups["easy negatives"].tolist() == [True, True, False, False, False]
    assert groups["hard negatives"].tolist() == [False, False, True, False, False]
    assert groups["positives"].tolist() == [False, False, False, True, True]
    assert tuple(groups) == GROUPS


def test_anchor_groups_cover_every_anchor_once(anchors):
    groups = anchor_groups(*anchors)
    stacked = torch.stack(list(groups.values()))  # (3, N)
    assert (stacked.sum(dim=0) == 1).all()


# ----------------------------------------------------------------------------- the numbers


def test_gamma_zero_without_alpha_is_bce(anchors):
    logits, targets = anchors
    sums = group_losses(0.0, -1, logits, targets)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    groups = anchor_groups(logits, targets)
    for name in GROUPS:
        assert sums[name] == float(bce[groups[name]].sum())


def test_gamma_zero_alpha_half_is_exactly_half_the_bce(anchors):
    logits, targets = anchors
    half = group_losses(0.0, 0.5, logits, targets)
    full = group_losses(0.0, -1, logits, targets)
    for name in GROUPS:
        assert half[name] == 0.5 * full[name]
    assert loss_shares(0.0, 0.5, logits, targets) == loss_shares(0.0, -1, logits, targets)


@pytest.mark.parametrize(
    "gamma, alpha", [(0.0, -1), (0.0, 0.75), (0.5, 0.5), (2.0, 0.25), (5.0, 0.9)]
)
def test_shares_sum_to_one(anchors, gamma, alpha):
    shares = loss_shares(gamma, alpha, *anchors)
    assert tuple(shares) == GROUPS
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-12)
    assert all(0 <= share <= 1 for share in shares.values())


def test_easy_negatives_dominate_ce_but_not_focal_loss(anchors):
    ce = loss_shares(0.0, -1, *anchors)
    assert ce["easy negatives"] > 0.6 and max(ce, key=ce.get) == "easy negatives"
    fl = loss_shares(2.0, 0.25, *anchors)
    assert fl["easy negatives"] < 0.05 and max(fl, key=fl.get) == "hard negatives"


def test_focal_loss_sum_matches_the_library(anchors):
    logits, targets = anchors
    total = sum(group_losses(2.0, 0.25, logits, targets).values())
    expected = sigmoid_focal_loss(logits, targets, reduction="sum").item()
    assert math.isclose(total, expected, rel_tol=1e-12)


def test_easy_negatives_share_falls_along_table_1b(anchors):
    # The paper's best (gamma, alpha) pairs (Table 1b): easy negatives matter less and less.
    table_1b = [
        (0.0, 0.75),
        (0.1, 0.75),
        (0.2, 0.75),
        (0.5, 0.5),
        (1.0, 0.25),
        (2.0, 0.25),
        (5.0, 0.25),
    ]
    easy = [loss_shares(g, a, *anchors)["easy negatives"] for g, a in table_1b]
    assert easy == sorted(easy, reverse=True)


def test_numbers_reject_bad_arguments(anchors):
    logits, targets = anchors
    with pytest.raises(ValueError, match="gamma"):
        loss_shares(-1.0, 0.25, logits, targets)
    with pytest.raises(ValueError, match="alpha"):
        loss_shares(2.0, 1.5, logits, targets)
    with pytest.raises(ValueError, match="easy_p_t"):
        loss_shares(2.0, 0.25, logits, targets, easy_p_t=1.0)
    with pytest.raises(ValueError, match="logits"):
        loss_shares(2.0, 0.25, logits[None], targets[None])
    with pytest.raises(ValueError, match="targets"):
        loss_shares(2.0, 0.25, logits, targets[:-1])
    with pytest.raises(ValueError, match="binary"):
        loss_shares(2.0, 0.25, logits, targets * 0.5)


# ----------------------------------------------------------------------------- the curves


def test_loss_curves():
    p_t = np.array([0.1, 0.5, 0.9, 0.99])
    curves = loss_curves(2.0, 0.25, p_t)
    np.testing.assert_allclose(curves["CE"], -np.log(p_t))
    np.testing.assert_allclose(curves["factor"], (1 - p_t) ** 2)
    np.testing.assert_allclose(curves["FL"], (1 - p_t) ** 2 * -np.log(p_t))
    np.testing.assert_allclose(curves["FL positive"], 0.25 * curves["FL"])
    np.testing.assert_allclose(curves["FL negative"], 0.75 * curves["FL"])
    flat = loss_curves(0.0, -1, p_t)
    assert (flat["factor"] == 1).all()
    np.testing.assert_array_equal(flat["FL positive"], flat["CE"])
    with pytest.raises(ValueError, match="p_t"):
        loss_curves(2.0, 0.25, [0.0, 0.5])


def test_cumulative_loss_distribution_by_hand():
    curves = cumulative_loss_distribution(torch.tensor([3.0, 1.0, 4.0, 2.0]), np.array([0.0, 5.0]))
    fraction, cumulative = curves["positives"]
    np.testing.assert_allclose(fraction, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(cumulative, [0.1, 0.3, 0.6, 1.0])
    fraction, cumulative = curves["negatives"]
    np.testing.assert_allclose(fraction, [0.5, 1.0])
    np.testing.assert_allclose(cumulative, [0.0, 1.0])


def test_cumulative_loss_distribution_empty_and_zero():
    curves = cumulative_loss_distribution(torch.zeros(0), torch.zeros(3))
    assert curves["positives"][0].size == curves["positives"][1].size == 0
    np.testing.assert_array_equal(curves["negatives"][1], np.zeros(3))
    with pytest.raises(ValueError, match="losses_neg"):
        cumulative_loss_distribution(torch.ones(2), torch.tensor([1.0, -1.0]))


def test_focal_loss_concentrates_the_negatives_loss(anchors):
    # Figure 4: with gamma = 2 nearly all of the negatives' loss comes from a few of them.
    logits, targets = anchors
    negatives = targets == 0
    ce = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0)[negatives]
    fl = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=2.0)[negatives]
    assert hardest_share(fl, 0.02) > 0.8
    assert hardest_share(ce, 0.02) < 0.4
    assert hardest_share(torch.tensor([1.0, 1.0, 1.0, 7.0]), 0.25) == 0.7
    assert hardest_share(ce, 0.0) == 0.0 and math.isclose(hardest_share(ce, 1.0), 1.0)


def test_draw_cumulative_loss(anchors):
    fig = draw_cumulative_loss(*anchors)
    assert isinstance(fig, Figure)
    ax_pos, ax_neg = fig.axes
    assert len(ax_pos.lines) == len(ax_neg.lines) == len(FIGURE4_GAMMAS)
    assert ax_neg.get_xlabel() == "fraction of background examples"
    # Every curve ends at 1: the whole loss.
    assert all(math.isclose(line.get_ydata()[-1], 1.0) for line in ax_neg.lines)


def test_draw_cumulative_loss_without_positives_and_on_given_axes():
    logits, targets = realistic_anchor_logits(500, 0)
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert draw_cumulative_loss(logits, targets, gammas=(0.0, 2.0), axes=axes) is fig
    assert len(axes[0].lines) == 0 and len(axes[1].lines) == 2


# ----------------------------------------------------------------------------- the explorer


@pytest.mark.parametrize(
    "gamma, alpha", [(0.0, -1), (0.0, 0.5), (0.5, 0.75), (2.0, 0.25), (5.0, 0.0)]
)
def test_explorer_numbers_match_the_plain_functions(explorer, anchors, gamma, alpha):
    expected = group_losses(gamma, alpha, *anchors)
    got = explorer.group_losses(gamma, alpha)
    for name in GROUPS:
        assert math.isclose(got[name], expected[name], rel_tol=1e-9, abs_tol=1e-300)


def test_explorer_update_moves_the_artists(explorer, anchors):
    shares = explorer.update(2.0, 0.25)
    expected = loss_shares(2.0, 0.25, *anchors)
    assert shares.keys() == expected.keys()
    assert all(math.isclose(shares[k], expected[k], rel_tol=1e-9) for k in GROUPS)
    heights = [bar.get_height() for bar in explorer._bars["FL"]]
    np.testing.assert_allclose(heights, [100 * expected[name] for name in GROUPS])
    curves = loss_curves(2.0, 0.25, explorer.p_t)
    np.testing.assert_allclose(explorer._fl_pos.get_ydata(), curves["FL positive"], rtol=1e-9)
    np.testing.assert_allclose(explorer._fl_neg.get_ydata(), curves["FL negative"], rtol=1e-9)
    np.testing.assert_allclose(explorer._factor.get_ydata(), curves["factor"], rtol=1e-9)
    assert "100× less" in explorer._factor_text.get_text()
    # CE's bars do not move.
    ce = loss_shares(0.0, -1, *anchors)
    np.testing.assert_allclose(
        [b.get_height() for b in explorer._bars["CE"]], [100 * ce[n] for n in GROUPS]
    )


def test_explorer_numbers_report_all_three_losses(explorer, anchors):
    numbers = explorer.numbers(2.0, 0.25)
    assert tuple(numbers) == ("CE", "α-balanced CE", "FL")
    bce_total = F.binary_cross_entropy_with_logits(*anchors, reduction="sum").item()
    assert math.isclose(numbers["CE"]["total"], bce_total, rel_tol=1e-9)
    assert math.isclose(
        numbers["FL"]["total"], sum(group_losses(2.0, 0.25, *anchors).values()), rel_tol=1e-9
    )


def test_explorer_renders_png_that_changes_with_the_sliders(explorer):
    explorer.update(2.0, 0.25)
    first = explorer.render()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert explorer.render() is first  # cached until the next update
    image = Image.open(io.BytesIO(first))
    width, height = explorer.fig.canvas.get_width_height()
    assert image.size == (width, height)
    explorer.update(0.5, 0.75)
    assert explorer.render() != first
    explorer.update(2.0, 0.25)
    assert explorer.render() == first  # the same picture again: nothing left over


def test_explorer_rejects_bad_sliders(explorer):
    with pytest.raises(ValueError, match="gamma"):
        explorer.update(-0.5, 0.25)
    with pytest.raises(ValueError, match="alpha"):
        explorer.update(2.0, 2.0)


def test_draw_explorer_is_a_full_static_figure(tmp_path):
    fig = draw_explorer(2.0, 0.25)
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() == "Focal loss with γ = 2.00, α = 0.25"
    assert not any(artist.get_animated() for ax in fig.axes for artist in ax.get_children())
    fig.savefig(tmp_path / "explorer.png")
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_focal_explorer_widget_redraws_on_slider_change():
    import ipywidgets as W

    logits, targets = realistic_anchor_logits(5000, 10)
    box = focal_explorer(logits, targets)
    assert isinstance(box, W.VBox)
    (gamma, alpha), picture, table = box.children[0].children, box.children[1], box.children[2]
    assert isinstance(gamma, W.FloatSlider) and isinstance(alpha, W.FloatSlider)
    assert isinstance(picture, W.Image) and isinstance(table, W.HTML)
    assert (gamma.min, gamma.max, alpha.min, alpha.max) == (0.0, 5.0, 0.0, 1.0)
    assert (gamma.value, alpha.value) == (2.0, 0.25)
    before = picture.value
    gamma.value = 0.0
    assert picture.value != before
    alpha.value = 0.5
    explorer = FocalExplorer(logits, targets, gamma=0.0, alpha=0.5, numbers_in_figure=False)
    assert picture.value == explorer.render()
    assert table.value == explorer.table_html()
    assert "γ = 0.00, α = 0.50" in table.value


def test_table_html_holds_the_numbers(explorer, anchors):
    explorer.update(2.0, 0.25)
    html = explorer.table_html()
    shares = loss_shares(2.0, 0.25, *anchors)
    for name in GROUPS:
        assert f"{100 * shares[name]:.1f}%" in html
        assert f"{explorer.counts[name]:,}" in html
    assert "100× less than CE" in html


def test_numbers_left_out_of_the_widgets_picture(anchors):
    quiet = FocalExplorer(*anchors, numbers_in_figure=False)
    assert not quiet._factor_text.get_visible() and quiet._factor_text not in quiet._animated
    assert quiet.update(2.0, 0.25) == FocalExplorer(*anchors).update(2.0, 0.25)


def test_easy_threshold_is_the_papers_100x_example():
    assert EASY_P_T == 0.9
    assert math.isclose((1 - EASY_P_T) ** 2, 0.01)
