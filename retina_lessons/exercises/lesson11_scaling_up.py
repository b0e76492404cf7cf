"""Grader for lesson 11 (``notebooks/11_scaling_up.ipynb``): synchronised BatchNorm's global statistics.

``check_sync_batchnorm_stats(fn)`` expects ``fn(sums (W, C), squares (W, C), counts (W,)) -> (mean (C,),
var (C,))``: each of W processes reports, per channel, the sum of its values and the sum of their squares,
and how many values it holds (B/W images times H times W pixels); ``fn`` combines them into the mean and the
biased variance of the whole batch, what one process holding every image would compute (and what BatchNorm
normalises with). The cases are drawn per process and their expected values are ``torch.var_mean`` of the
concatenated values (``unbiased=False``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .runner import Case, compare_tensors, run_checks, seeded


def _moments(parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-process (sums (W, C), squares (W, C), counts (W,)) of values (n_r, C), one tensor per process."""
    sums = torch.stack([part.sum(0) for part in parts])
    squares = torch.stack([(part * part).sum(0) for part in parts])
    counts = torch.tensor([float(len(part)) for part in parts], dtype=parts[0].dtype)
    return sums, squares, counts


def _case(name: str, parts: list[torch.Tensor], hint: str) -> tuple[Case, tuple[torch.Tensor, torch.Tensor]]:
    var, mean = torch.var_mean(torch.cat(parts), dim=0, unbiased=False)  # one process, the whole batch
    return Case(name, _moments(parts), hint), (mean, var)


def check_sync_batchnorm_stats(fn: Callable) -> bool:
    """Check ``fn(sums (W, C), squares (W, C), counts (W,)) -> (mean (C,), var (C,))`` of the whole batch.

    mean = sum of the sums / total count; var = sum of the squares / total count - mean ** 2 (biased, as
    BatchNorm normalises). The inputs are float64: in float32 this one-pass formula loses the variance
    when the mean is large against the spread, which is why ``CpuSyncBatchNorm`` all-reduces the squared
    deviations from the global mean in a second pass.
    """
    g = seeded(11)
    C = 3

    def values(n, mean, std):
        return torch.randn(n, C, generator=g, dtype=torch.float64) * std + mean

    built = [
        _case("two processes", [values(8, -1.0, 1.0), values(8, 2.0, 0.5)],
              "Add up the sums, the squares and the counts first; the variance of the whole batch also counts "
              "how far each process's mean lies from the global one (E[x^2] - mean^2)."),
        _case("unequal counts", [values(2, 3.0, 1.0), values(14, 0.0, 1.0)],
              "Weigh each process by its count: divide the total sum by the total count, not the means by W."),
        _case("one process", [values(10, 0.5, 2.0)], "With W = 1 this is the variance and mean of one batch."),
        _case("eight processes", [values(4, float(r) - 4, 1.0 + r / 4) for r in range(8)],
              "Sum over the process dimension (dim 0) and return one value per channel, shape (C,)."),
        _case("large mean", [values(6, 1000.0, 0.1), values(6, 1000.5, 0.1)],
              "Keep float64 throughout: the inputs are float64 for a reason."),
    ]
    cases = [case for case, _ in built]
    expected_by_name = {case.name: expected for case, expected in built}

    def reference(sums, squares, counts):
        for case in cases:  # the expected values of the case these arguments belong to
            if case.args[0] is sums:
                return expected_by_name[case.name]
        raise KeyError("unknown case")

    def compare(expected, got, case):
        if not isinstance(got, tuple | list) or len(got) != 2:
            return f"expected a pair (mean, var), got {type(got).__name__}"
        for what, e, g_ in zip(("mean", "var"), expected, got, strict=True):
            problem = compare_tensors(e, g_, check_dtype=False, rtol=1e-9, atol=1e-9)
            if problem is not None:
                return f"{what}: {problem}"
        return None

    return run_checks("sync_batchnorm_stats", fn, cases, reference, ("sums", "squares", "counts"), compare)
