"""The focal loss grader of lesson 06 accepts torchvision's and the library's loss and rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson06_focal_loss.py``; the runner they share is tested in
test_runner.py.
"""

import torch
import torch.nn.functional as F
import torchvision
from grading_support import GraderTests

from retina_lessons import exercises, focal_loss
from retina_lessons.exercises import lesson06_focal_loss


def _focal_parts(logits, targets):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return p, ce, p_t


def focal_student(logits, targets, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    log_p_t = -ce
    alpha_t = torch.where(targets == 1, alpha, 1 - alpha)
    return alpha_t * (-torch.expm1(log_p_t)).clamp(min=0) ** gamma * ce


def focal_torchvision(logits, targets, alpha=0.25, gamma=2.0):
    return torchvision.ops.sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="none")


def focal_no_alpha(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    return (1 - p_t) ** gamma * ce


def focal_alpha_on_both(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    return alpha * (1 - p_t) ** gamma * ce


def focal_alpha_swapped(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    alpha_t = (1 - alpha) * targets + alpha * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_log_of_probabilities(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_clamped_probabilities(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    ce = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_gamma_on_p_t(logits, targets, alpha=0.25, gamma=2.0):
    _, ce, p_t = _focal_parts(logits, targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * p_t**gamma * ce


def focal_mean(logits, targets, alpha=0.25, gamma=2.0):
    return focal_torchvision(logits, targets, alpha, gamma).mean()


def focal_gamma_fixed(logits, targets, alpha=0.25, gamma=2.0):
    return focal_torchvision(logits, targets, alpha, 2.0)


CORRECT = {
    "focal_loss": [focal_torchvision, focal_student, focal_loss.sigmoid_focal_loss],
}


# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("focal_loss", focal_no_alpha, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_alpha_on_both, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_alpha_swapped, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_log_of_probabilities, "NaN or inf"),
    ("focal_loss", focal_clamped_probabilities, "'extreme logits +-100'"),
    ("focal_loss", focal_gamma_on_p_t, "'default alpha=0.25, gamma=2'"),
    ("focal_loss", focal_mean, "expected shape (3, 4), got shape ()"),
    ("focal_loss", focal_gamma_fixed, "'gamma=0 is alpha-weighted cross-entropy'"),
]


class TestGraders(GraderTests):
    grader_module = lesson06_focal_loss
    correct = CORRECT
    wrong = WRONG


def test_hints_name_the_mistake(capsys):
    exercises.check_focal_loss(focal_log_of_probabilities)
    assert "F.logsigmoid" in capsys.readouterr().out


def test_focal_reference_equals_torchvision():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, generator=generator) * 8
    targets = (torch.rand(500, generator=generator) < 0.5).float()
    for alpha, gamma in [(0.25, 2.0), (0.5, 0.0), (0.75, 1.0), (0.1, 5.0)]:
        torch.testing.assert_close(
            lesson06_focal_loss._focal_loss_reference(logits, targets, alpha, gamma),
            focal_torchvision(logits, targets, alpha, gamma),
        )
    extreme = torch.tensor([100.0, -100.0, 100.0, -100.0])
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    loss = lesson06_focal_loss._focal_loss_reference(extreme, labels)
    torch.testing.assert_close(loss, torch.tensor([75.0, 0.0, 0.0, 25.0]))
