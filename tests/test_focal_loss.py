import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from retina_lessons.focal_loss import (
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    log_one_minus_p_t,
    sigmoid_focal_loss,
)

GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0)
ALPHAS = (-1, 0.0, 0.25, 0.5, 0.75, 1.0)
SHAPES = ((7,), (3, 5), (2, 100, 4), (1, 1, 1, 9))


def make_batch(shape, dtype=torch.float64, soft=False, seed=0, scale=6.0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(shape, generator=generator, dtype=dtype) * scale
    if soft:
        targets = torch.rand(shape, generator=generator, dtype=dtype)
    else:
        targets = (torch.rand(shape, generator=generator) < 0.3).to(dtype)
    return inputs, targets


def test_paper_constants():
    assert FOCAL_ALPHA == 0.25
    assert FOCAL_GAMMA == 2.0


def test_defaults_are_the_papers():
    inputs, targets = make_batch((50,))
    torch.testing.assert_close(
        sigmoid_focal_loss(inputs, targets),
        sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"),
    )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_values_match_torchvision_float64(gamma):
    for shape in SHAPES:
        inputs, targets = make_batch(shape, seed=len(shape))
        for alpha in ALPHAS:
            for reduction in ("none", "mean", "sum"):
                ours = sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction)
                theirs = tv_sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction)
                assert ours.shape == theirs.shape
                torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", (-1, 0.25))
def test_values_match_torchvision_float32(gamma, alpha):
    inputs, targets = make_batch((4, 1000), dtype=torch.float32)
    ours = sigmoid_focal_loss(inputs, targets, alpha=alpha, gamma=gamma)
    theirs = tv_sigmoid_focal_loss(inputs, targets, alpha=alpha, gamma=gamma)
    assert ours.dtype == torch.float32
    # torchvision forms 1 - p_t from probabilities, which rounds tiny losses; compare
    # relatively where the loss is not tiny.
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", (-1, 0.25, 0.9))
def test_soft_targets_match_torchvision(gamma, alpha):
    inputs, targets = make_batch((300,), soft=True, seed=3)
    torch.testing.assert_close(
        sigmoid_focal_loss(inputs, targets, alpha=alpha, gamma=gamma),
        tv_sigmoid_focal_loss(inputs, targets, alpha=alpha, gamma=gamma),
        rtol=1e-5,
        atol=1e-12,
    )


def test_gamma_zero_is_cross_entropy():
    inputs, targets = make_batch((200,), scale=50.0)
    bce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    assert torch.equal(sigmoid_focal_loss(inputs, targets, alpha=-1, gamma=0.0), bce)
    assert torch.equal(sigmoid_focal_loss(inputs, targets, alpha=0.5, gamma=0), 0.5 * bce)


def test_equations_written_from_probabilities():
    # Eq. 5 spelled out on moderate logits, where probabilities are accurate.
    inputs = torch.linspace(-6, 6, 25, dtype=torch.float64)
    for target in (0.0, 1.0):
        targets = torch.full_like(inputs, target)
        p = torch.sigmoid(inputs)
        p_t = p if target == 1 else 1 - p
        alpha_t = 0.25 if target == 1 else 0.75
        expected = -alpha_t * (1 - p_t) ** 2 * torch.log(p_t)
        torch.testing.assert_close(sigmoid_focal_loss(inputs, targets), expected)


def test_hard_targets_use_exact_log_one_minus_p_t():
    # For t = 1 the factor is exactly sigmoid(-x)^gamma, without rounding 1 - p to 0.
    inputs = torch.tensor([20.0, 40.0, 80.0], dtype=torch.float64)
    targets = torch.ones_like(inputs)
    loss = sigmoid_focal_loss(inputs, targets, alpha=-1, gamma=2.0)
    expected = torch.sigmoid(-inputs) ** 2 * F.softplus(-inputs)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0.0)
    assert (loss > 0).all()


@pytest.mark.parametrize("reduction", ("mean", "sum"))
def test_reductions(reduction):
    inputs, targets = make_batch((5, 6))
    per_element = sigmoid_focal_loss(inputs, targets)
    reduced = sigmoid_focal_loss(inputs, targets, reduction=reduction)
    assert reduced.ndim == 0
    expected = per_element.mean() if reduction == "mean" else per_element.sum()
    torch.testing.assert_close(reduced, expected)


def test_empty_input_sums_to_zero():
    inputs = torch.zeros(0, 80)
    assert sigmoid_focal_loss(inputs, inputs.clone(), reduction="sum").item() == 0.0
    assert sigmoid_focal_loss(inputs, inputs.clone()).shape == (0, 80)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", (-1, 0.25))
def test_gradients_match_torchvision_where_finite(gamma, alpha):
    inputs, targets = make_batch((400,), scale=4.0, seed=1)
    ours_inputs = inputs.clone().requires_grad_()
    theirs_inputs = inputs.clone().requires_grad_()
    sigmoid_focal_loss(ours_inputs, targets, alpha=alpha, gamma=gamma).sum().backward()
    tv_sigmoid_focal_loss(theirs_inputs, targets, alpha=alpha, gamma=gamma).sum().backward()
    assert torch.isfinite(theirs_inputs.grad).all()
    torch.testing.assert_close(ours_inputs.grad, theirs_inputs.grad, rtol=1e-6, atol=1e-12)


SATURATED = torch.tensor([300.0, -300.0, 300.0, -300.0, 1e30, -1e30, 0.0])
SATURATED_TARGETS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_gradients_finite_at_saturated_logits(gamma, dtype):
    inputs = SATURATED.to(dtype, copy=True).requires_grad_()
    targets = SATURATED_TARGETS.to(dtype)
    loss = sigmoid_focal_loss(inputs, targets, gamma=gamma)
    loss.sum().backward()
    assert torch.isfinite(loss).all()
    assert torch.isfinite(inputs.grad).all()
    # Confidently right (first two, 5th, 6th): no gradient. Confidently wrong: the CE slope,
    # d/dx = alpha_t * (p - t) with p in {0, 1}, since the modulating factor is 1 there.
    torch.testing.assert_close(inputs.grad[[0, 1, 4, 5]], torch.zeros(4, dtype=dtype))
    torch.testing.assert_close(inputs.grad[[2, 3]], torch.tensor([0.75, -0.25], dtype=dtype))


def test_torchvision_gradient_is_nan_where_ours_is_finite():
    # The reason this module exists alongside torchvision's: gamma < 1 at saturated logits.
    inputs = torch.tensor([300.0, -300.0], requires_grad=True)
    targets = torch.tensor([1.0, 0.0])
    tv_sigmoid_focal_loss(inputs, targets, gamma=0.5).sum().backward()
    torchvision_grad = inputs.grad.clone()
    inputs.grad = None
    sigmoid_focal_loss(inputs, targets, gamma=0.5).sum().backward()
    assert torch.isfinite(inputs.grad).all()
    if torch.isfinite(torchvision_grad).all():
        pytest.skip("torchvision's gradient is finite here now")
    assert torch.isnan(torchvision_grad).any()


@pytest.mark.parametrize("gamma", (0.0, 0.5, 1.0, 2.0, 5.0))
@pytest.mark.parametrize("alpha", (-1, 0.25))
def test_gradcheck_hard_targets(gamma, alpha):
    inputs, targets = make_batch((12,), scale=3.0, seed=2)
    inputs.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, targets, alpha=alpha, gamma=gamma),
        (inputs,),
        fast_mode=True,
    )
    assert torch.autograd.gradgradcheck(
        lambda x: sigmoid_focal_loss(x, targets, alpha=alpha, gamma=gamma),
        (inputs,),
        fast_mode=True,
    )


@pytest.mark.parametrize("gamma", (0.0, 0.5, 2.0))
def test_gradcheck_soft_targets(gamma):
    inputs, targets = make_batch((10,), scale=3.0, soft=True, seed=4)
    targets = targets.clamp(0.01, 0.99)
    inputs.requires_grad_()
    targets.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, t: sigmoid_focal_loss(x, t, gamma=gamma, reduction="sum"),
        (inputs, targets),
        fast_mode=True,
    )
    assert torch.autograd.gradgradcheck(
        lambda x: sigmoid_focal_loss(x, targets.detach(), gamma=gamma), (inputs,), fast_mode=True
    )


def test_gradients_finite_at_saturated_logits_with_soft_targets():
    inputs = torch.tensor([300.0, -300.0, 1e30, -1e30, 0.0, 300.0], requires_grad=True)
    targets = torch.tensor([0.9, 0.1, 0.5, 0.2, 0.7, 1.0])
    for gamma in GAMMAS:
        inputs.grad = None
        sigmoid_focal_loss(inputs, targets, gamma=gamma).sum().backward()
        assert torch.isfinite(inputs.grad).all()


def test_mixed_hard_and_soft_targets():
    inputs, soft = make_batch((200,), soft=True, seed=5)
    targets = torch.where(torch.arange(200) % 3 == 0, soft, (soft > 0.5).double())
    assert ((targets > 0) & (targets < 1)).any() and ((targets == 0) | (targets == 1)).any()
    for gamma in GAMMAS:
        torch.testing.assert_close(
            sigmoid_focal_loss(inputs, targets, gamma=gamma),
            tv_sigmoid_focal_loss(inputs, targets, gamma=gamma),
            rtol=1e-5,
            atol=1e-12,
        )


def test_log_one_minus_p_t():
    inputs = torch.linspace(-10, 10, 21, dtype=torch.float64)
    p = torch.sigmoid(inputs)
    for target in (0.0, 0.3, 1.0):
        targets = torch.full_like(inputs, target)
        p_t = p * targets + (1 - p) * (1 - targets)
        torch.testing.assert_close(log_one_minus_p_t(inputs, targets), torch.log(1 - p_t))
    # Exact (not rounded to log 0) far out, where 1 - p_t is below float32's resolution of 1.
    far = torch.tensor([-300.0, 300.0])
    assert torch.equal(
        log_one_minus_p_t(far, torch.tensor([0.0, 1.0])), torch.tensor([-300.0, -300.0])
    )


def test_gradient_formula_for_a_positive():
    # dFL/dx for t = 1 (Appendix A.1 without alpha): (1-p)^g (g p log p + p - 1).
    inputs = torch.linspace(-8, 8, 33, dtype=torch.float64, requires_grad=True)
    gamma = 2.0
    sigmoid_focal_loss(inputs, torch.ones_like(inputs), alpha=-1, gamma=gamma).sum().backward()
    p = torch.sigmoid(inputs.detach())
    expected = (1 - p) ** gamma * (gamma * p * torch.log(p) + p - 1)
    torch.testing.assert_close(inputs.grad, expected)


def test_dtype_and_device_follow_inputs():
    inputs, targets = make_batch((10,), dtype=torch.float32)
    loss = sigmoid_focal_loss(inputs, targets, reduction="sum")
    assert loss.dtype == torch.float32
    assert loss.device == inputs.device


def _error(**overrides):
    inputs, targets = make_batch((4,))
    arguments = {"inputs": inputs, "targets": targets} | overrides
    with pytest.raises(ValueError) as info:
        sigmoid_focal_loss(**arguments)
    return str(info.value)


@pytest.mark.parametrize("gamma", (-0.5, -1, math.nan, math.inf))
def test_rejects_bad_gamma(gamma):
    message = _error(gamma=gamma)
    assert "gamma" in message and str(gamma) in message and ">= 0" in message


@pytest.mark.parametrize("alpha", (-0.5, 1.5, -2, math.nan))
def test_rejects_bad_alpha(alpha):
    message = _error(alpha=alpha)
    assert "alpha" in message and str(alpha) in message and "[0, 1]" in message


def test_rejects_unknown_reduction():
    message = _error(reduction="average")
    assert "reduction" in message and "average" in message and "'mean'" in message


def test_rejects_mismatched_shapes():
    message = _error(targets=torch.zeros(5, dtype=torch.float64))
    assert "targets" in message and "(4,)" in message and "(5,)" in message


@pytest.mark.parametrize("bad", (-0.1, 1.5, math.nan))
def test_rejects_targets_outside_unit_interval(bad):
    targets = torch.tensor([0.0, 1.0, bad, 0.0], dtype=torch.float64)
    message = _error(targets=targets)
    assert "targets" in message and "[0, 1]" in message and str(bad) in message


def test_rejects_integer_tensors():
    message = _error(targets=torch.tensor([0, 1, 0, 1]))
    assert "targets" in message and "floating" in message and "int64" in message
    message = _error(inputs=torch.tensor([0, 1, 0, 1]))
    assert "inputs" in message and "floating" in message and "int64" in message


def test_rejects_non_tensors():
    message = _error(inputs=[0.1, 0.2, 0.3, 0.4])
    assert "inputs" in message and "list" in message
