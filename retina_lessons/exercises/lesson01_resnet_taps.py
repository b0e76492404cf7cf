"""Graders for lesson 01 (``notebooks/01_resnet_taps.ipynb``): frozen batch norm.

- ``check_frozen_batchnorm(fn)`` expects ``fn(x (B, C, H, W), weight, bias, running_mean,
  running_var, eps=1e-5) -> y``, batch norm with the stored statistics; the reference is
  ``F.batch_norm(..., training=False)``.
- ``check_freeze_batchnorm(fn)`` expects ``fn(model) -> model`` with every ``nn.BatchNorm2d``
  frozen for good: after ``model.train()`` and one SGD step, the model still normalises with the
  stored statistics, none of the four BatchNorm tensors has moved, and the convolutions have.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .runner import Case, Problem, run_checks, seeded


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


BATCHNORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


class _ConvBNNet(nn.Sequential):
    """Conv-BatchNorm-ReLU blocks with stored statistics far from any batch's; optionally one nested deeper."""

    def __init__(self, generator: torch.Generator, nested: bool, eps: float) -> None:
        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, eps=eps), nn.ReLU()]

        with torch.random.fork_rng(devices=[]):  # the default init draws from the global generator: keep it
            layers = block(3, 4)
            layers += [nn.Sequential(nn.Sequential(*block(4, 4)))] if nested else block(4, 4)
            layers += [nn.Conv2d(4, 2, 1)]
        super().__init__(*layers)
        with torch.no_grad():
            for name, tensor in self.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    continue
                values = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
        self.description = "3 conv-BatchNorm blocks" + (", one nested two levels down" if nested else "")

    def __repr__(self) -> str:  # shown as the case's input
        return f"<{self.description}>"


@dataclass(frozen=True)
class _Frozen:
    """What a frozen model must keep: its eval-mode output on ``x`` and its BatchNorm tensors."""

    x: torch.Tensor
    output: torch.Tensor
    state: dict

    def __repr__(self) -> str:
        return "after model.train() and one SGD step: the same output as before, no BatchNorm tensor moved"


def _freeze_reference(model: nn.Module) -> _Frozen:
    reference = copy.deepcopy(model).eval()
    x = torch.randn(2, 3, 6, 5, generator=seeded(12))
    with torch.no_grad():
        output = reference(x)
    state = {f"{name}.{t}": getattr(module, t).detach().clone() for name, module in model.named_modules()
             if isinstance(module, nn.BatchNorm2d) for t in BATCHNORM_TENSORS}
    return _Frozen(x, output, state)


def _compare_frozen(expected: _Frozen, got, case: Case) -> str | None:
    if not isinstance(got, nn.Module):
        return Problem(f"expected the model (an nn.Module), got {type(got).__name__}",
                       "Return the model at the end (the same object, changed in place, is fine).")
    got.train()  # what every training loop does at the start of an epoch
    with torch.enable_grad():
        output = got(expected.x)
        if not torch.allclose(output, expected.output, rtol=1e-4, atol=1e-5):
            return ("after model.train() the output is not the one the stored statistics give: "
                    "some BatchNorm normalises with the batch's statistics, or lost its own tensors")
        trainable = [p for p in got.parameters() if p.requires_grad]
        if not trainable:
            return Problem("no parameter is left to train",
                           "Freeze only the BatchNorm layers: the convolutions must still train.")
        before = {name: t.detach().clone() for name, t in got.state_dict().items()}
        output.pow(2).mean().backward()
        torch.optim.SGD(trainable, lr=0.1).step()
    after = got.state_dict()
    for name, value in expected.state.items():
        if name not in after:
            return Problem(f"the model has no tensor {name!r} any more",
                           "Keep each layer's name: put the frozen layer where the BatchNorm2d was (setattr on its "
                           "parent module), with the same four tensors.")
        if not torch.equal(after[name], value):
            return f"{name} changed after one SGD step"
    if torch.equal(before["0.weight"], after["0.weight"]):
        return Problem("the first convolution did not train", "Freeze only the BatchNorm layers.")
    return None


def check_freeze_batchnorm(fn: Callable) -> bool:
    """Check ``fn(model) -> model``: every ``nn.BatchNorm2d`` of ``model`` frozen for good.

    The check calls ``model.train()`` on what ``fn`` returns (as a training loop does), compares its
    output with the stored statistics' output, runs one SGD step and looks at every BatchNorm tensor
    (weight, bias, running_mean, running_var: none may move) and at the convolutions (they must train).
    The robust answer replaces each ``nn.BatchNorm2d`` by a ``FrozenBatchNorm2d`` with its four tensors
    and its eps; ``.eval()`` alone lasts only until the next ``model.train()``.
    """
    g = seeded(13)
    cases = [
        Case("a model in training mode", (_ConvBNNet(g, nested=False, eps=1e-5).train(),),
             "model.train() undoes .eval(): replace each BatchNorm2d by a FrozenBatchNorm2d holding its "
             "weight, bias, running_mean and running_var."),
        Case("a BatchNorm nested two levels down", (_ConvBNNet(g, nested=True, eps=1e-5).train(),),
             "Visit every module (model.modules() or named_modules()), not only model.children()."),
        Case("a BatchNorm with eps = 0.5", (_ConvBNNet(g, nested=False, eps=0.5).train(),),
             "Give the frozen layer the BatchNorm's own eps."),
        Case("a model handed over in eval mode", (_ConvBNNet(g, nested=True, eps=1e-5).eval(),),
             "The model may arrive in eval mode; it is trained in training mode all the same."),
    ]
    return run_checks("freeze_batchnorm", fn, cases, _freeze_reference, ("model",), compare=_compare_frozen)
