"""The frozen batch norm grader of lesson 01 accepts the library's layer and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson01_resnet_taps.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torch.nn.functional as F
from grading_support import GraderTests

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


CORRECT = {
    "frozen_batchnorm": [bn_student, bn_library, library_frozen_batchnorm],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("frozen_batchnorm", bn_batch_statistics, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_no_affine, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_broadcast_over_width, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_var_not_sqrt, "'a batch of 2, 3 channels'"),
    ("frozen_batchnorm", bn_eps_outside, "'a tiny variance'"),
]


class TestGraders(GraderTests):
    grader_module = lesson01_resnet_taps
    correct = CORRECT
    wrong = WRONG
