"""The modulating-factor grader of lesson 10 accepts the library's log-space factor and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson10_ablation.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torch.nn.functional as F
from grading_support import GraderTests

from retina_lessons import focal_loss
from retina_lessons.exercises import lesson10_ablation


def modulating_student(logits, targets, gamma):
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    return (1 - p_t).clamp(min=0) ** gamma if gamma > 0 else torch.ones_like(p)


def modulating_log_space(logits, targets, gamma):
    log_q = torch.where(targets > 0, F.logsigmoid(-logits), F.logsigmoid(logits))
    return torch.exp(gamma * log_q)


def modulating_p_not_p_t(logits, targets, gamma):
    return (1 - torch.sigmoid(logits)) ** gamma


def modulating_p_t_power(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return (p * targets + (1 - p) * (1 - targets)) ** gamma


def modulating_gamma_power(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return gamma ** (1 - (p * targets + (1 - p) * (1 - targets)))


def modulating_no_gamma(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return 1 - (p * targets + (1 - p) * (1 - targets))


def modulating_negatives_inverted(logits, targets, gamma):
    p = torch.sigmoid(logits)
    return (1 - (p * targets + p * (1 - targets))) ** gamma


def library_modulating_factor(logits, targets, gamma):
    return torch.exp(gamma * focal_loss.log_one_minus_p_t(logits, targets))


CORRECT = {
    "modulating_factor": [modulating_log_space, modulating_student, library_modulating_factor],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("modulating_factor", modulating_p_not_p_t, "'gamma = 2'"),
    ("modulating_factor", modulating_p_t_power, "'gamma = 2'"),
    ("modulating_factor", modulating_gamma_power, "'gamma = 2'"),
    ("modulating_factor", modulating_no_gamma, "'gamma = 2'"),
    ("modulating_factor", modulating_negatives_inverted, "'gamma = 2'"),
]


class TestGraders(GraderTests):
    grader_module = lesson10_ablation
    correct = CORRECT
    wrong = WRONG
