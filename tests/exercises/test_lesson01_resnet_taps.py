"""The frozen batch norm graders of lesson 01 accept the library's layer and reject the usual mistakes.

Tests for ``retina_lessons/exercises/lesson01_resnet_taps.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torch.nn.functional as F
import torchvision
from grading_support import GraderTests
from torch import nn

from retina_lessons.backbone import FrozenBatchNorm2d
from retina_lessons.exercises import lesson01_resnet_taps


def bn_student(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps) * weight.view(shape) + bias.view(shape)


def bn_library(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)


def bn_batch_statistics(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)


def bn_eps_outside(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / (torch.sqrt(running_var.view(shape)) + eps) * weight.view(shape) + bias.view(shape)


def bn_no_affine(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps)


def bn_broadcast_over_width(x, weight, bias, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / torch.sqrt(running_var + eps) * weight + bias


def bn_var_not_sqrt(x, weight, bias, running_mean, running_var, eps=1e-5):
    shape = (1, -1, 1, 1)
    return (x - running_mean.view(shape)) / (running_var.view(shape) + eps) * weight.view(shape) + bias.view(shape)


def library_frozen_batchnorm(x, weight, bias, running_mean, running_var, eps=1e-5):
    bn = FrozenBatchNorm2d(x.shape[1], eps)
    for name, value in zip(("weight", "bias", "running_mean", "running_var"),
                           (weight, bias, running_mean, running_var)):
        getattr(bn, name).copy_(value)
    return bn(x)


def _batchnorm_parents(model):
    # (parent, attribute name, BatchNorm2d) for every BatchNorm2d, however deep.
    return [(parent, name, child) for parent in list(model.modules()) for name, child in parent.named_children()
            if isinstance(child, nn.BatchNorm2d)]


def freeze_by_replacing(model):
    for parent, name, bn in _batchnorm_parents(model):
        frozen = FrozenBatchNorm2d(bn.num_features, bn.eps)
        frozen.load_state_dict(bn.state_dict())
        setattr(parent, name, frozen)
    return model


def freeze_with_torchvision_layer(model):
    for parent, name, bn in _batchnorm_parents(model):
        frozen = torchvision.ops.FrozenBatchNorm2d(bn.num_features, bn.eps)
        for t in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, t).copy_(getattr(bn, t).detach())
        setattr(parent, name, frozen)
    return model


def freeze_by_eval(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    return model


def freeze_by_eval_and_requires_grad(model):  # fixed only until the next model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
            module.requires_grad_(False)
    return model


def freeze_requires_grad_only(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad_(False)
    return model


def freeze_top_level_only(model):
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, child.eps)
            frozen.load_state_dict(child.state_dict())
            setattr(model, name, frozen)
    return model


def freeze_without_eps(model):
    for parent, name, bn in _batchnorm_parents(model):
        frozen = FrozenBatchNorm2d(bn.num_features)
        frozen.load_state_dict(bn.state_dict())
        setattr(parent, name, frozen)
    return model


def freeze_without_copying(model):
    for parent, name, bn in _batchnorm_parents(model):
        setattr(parent, name, FrozenBatchNorm2d(bn.num_features, bn.eps))
    return model


def freeze_everything(model):
    model = freeze_by_replacing(model)
    model.requires_grad_(False)
    return model


def freeze_returns_nothing(model):
    freeze_by_replacing(model)


CORRECT = {
    "frozen_batchnorm": [bn_student, bn_library, library_frozen_batchnorm],
    "freeze_batchnorm": [freeze_by_replacing, freeze_with_torchvision_layer],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("frozen_batchnorm", bn_batch_statistics, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_no_affine, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_broadcast_over_width, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_var_not_sqrt, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_eps_outside, "'a tiny variance'"),
    ("freeze_batchnorm", freeze_by_eval, "'a model in training mode'"),
    ("freeze_batchnorm", freeze_by_eval_and_requires_grad, "'a model in training mode'"),
    ("freeze_batchnorm", freeze_requires_grad_only, "'a model in training mode'"),
    ("freeze_batchnorm", freeze_top_level_only, "'a BatchNorm nested two levels down'"),
    ("freeze_batchnorm", freeze_without_eps, "'a BatchNorm with eps = 0.5'"),
    ("freeze_batchnorm", freeze_without_copying, "'a model in training mode'"),
    ("freeze_batchnorm", freeze_everything, "'a model in training mode'"),
    ("freeze_batchnorm", freeze_returns_nothing, "'a model in training mode'"),
]


class TestGraders(GraderTests):
    grader_module = lesson01_resnet_taps
    correct = CORRECT
    wrong = WRONG
