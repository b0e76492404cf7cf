"""The synchronised-BatchNorm statistics grader of lesson 11 accepts the global mean and biased variance and
rejects the usual mistakes.

Tests for ``retina_lessons/exercises/lesson11_scaling_up.py``; the runner they share is tested in
test_runner.py.
"""

import torch
from grading_support import GraderTests

from retina_lessons.exercises import lesson11_scaling_up


def stats_student(sums, squares, counts):
    total = counts.sum()
    mean = sums.sum(0) / total
    return mean, squares.sum(0) / total - mean**2


def stats_centred(sums, squares, counts):
    """Through each process's own mean and variance, then the between-process spread (parallel variance)."""
    means = sums / counts[:, None]
    variances = squares / counts[:, None] - means**2
    weights = counts[:, None] / counts.sum()
    mean = (weights * means).sum(0)
    return mean, (weights * (variances + (means - mean) ** 2)).sum(0)


def stats_list(sums, squares, counts):
    total = counts.sum()
    mean = sums.sum(dim=0) / total
    return [mean, torch.sub(squares.sum(dim=0) / total, mean * mean)]


def stats_mean_of_moments(sums, squares, counts):
    means = sums / counts[:, None]
    return means.mean(0), (squares / counts[:, None] - means**2).mean(0)


def stats_average_variance(sums, squares, counts):
    means = sums / counts[:, None]
    return sums.sum(0) / counts.sum(), (squares / counts[:, None] - means**2).mean(0)


def stats_unbiased(sums, squares, counts):
    total = counts.sum()
    mean = sums.sum(0) / total
    return mean, (squares.sum(0) - total * mean**2) / (total - 1)


def stats_no_mean_squared(sums, squares, counts):
    total = counts.sum()
    return sums.sum(0) / total, squares.sum(0) / total


def stats_mean_of_means(sums, squares, counts):
    mean = (sums / counts[:, None]).mean(0)
    return mean, squares.sum(0) / counts.sum() - mean**2


def stats_divided_by_processes(sums, squares, counts):
    mean = sums.sum(0) / len(counts)
    return mean, squares.sum(0) / len(counts) - mean**2


def stats_swapped(sums, squares, counts):
    mean, var = stats_student(sums, squares, counts)
    return var, mean


def stats_std(sums, squares, counts):
    mean, var = stats_student(sums, squares, counts)
    return mean, var.sqrt()


CORRECT = {
    "sync_batchnorm_stats": [stats_student, stats_centred, stats_list],
}

# (checker, wrong answer, text the verdict must contain: the case that catches it)
WRONG = [
    ("sync_batchnorm_stats", stats_mean_of_moments, "'two processes'"),
    ("sync_batchnorm_stats", stats_average_variance, "'two processes'"),
    ("sync_batchnorm_stats", stats_unbiased, "'two processes'"),
    ("sync_batchnorm_stats", stats_no_mean_squared, "'two processes'"),
    ("sync_batchnorm_stats", stats_mean_of_means, "'unequal counts'"),
    ("sync_batchnorm_stats", stats_divided_by_processes, "'two processes'"),
    ("sync_batchnorm_stats", stats_swapped, "'two processes'"),
    ("sync_batchnorm_stats", stats_std, "'two processes'"),
]


class TestGraders(GraderTests):
    grader_module = lesson11_scaling_up
    correct = CORRECT
    wrong = WRONG


def test_expected_values_are_one_process_over_the_whole_batch():
    """The single-pass formula on the cases' moments gives torch.var_mean of all the values together."""
    parts = [torch.randn(5, 3, dtype=torch.float64) + r for r in range(3)]
    sums, squares, counts = lesson11_scaling_up._moments(parts)
    var, mean = torch.var_mean(torch.cat(parts), dim=0, unbiased=False)
    got_mean, got_var = stats_student(sums, squares, counts)
    torch.testing.assert_close(got_mean, mean)
    torch.testing.assert_close(got_var, var)
