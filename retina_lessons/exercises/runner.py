"""What every exercise grader shares, and ``check_answer`` for the lessons' quick questions.

Two kinds of self-check run in the notebooks:

- **Graders** (``check_box_iou`` and the others, one module per lesson): the student writes a
  function, the grader runs it on named cases built to catch the usual mistakes, compares
  with a reference and prints one verdict (:func:`run_checks`). A grader never raises,
  whatever the student's code does, and returns True or False.
- **Quick questions** (:func:`check_answer`): a number, a tuple of sizes, a word, read off
  the lesson; the notebook passes its own cases (arguments and the value the library gives).
  A wrong answer raises ``AssertionError`` with the question and a hint, as an ``assert``
  in the notebook would.

Used by every grader module of this package and by the quick questions of every notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Case", "Problem", "check_answer", "compare_tensors", "run_checks", "seeded", "tensor"]

_MAX_SHOWN = 16  # tensors with more elements are shown as their shape only


@dataclass(frozen=True)
class Case:
    """One named input for a checker; ``hint`` targets the mistake it catches."""

    name: str
    args: tuple
    hint: str
    kwargs: dict = field(default_factory=dict)
    check_dtype: bool = False  # also require the reference's dtype


class Problem(str):
    """A mismatch that carries its own hint (the case's hint does not apply to it)."""

    def __new__(cls, text: str, hint: str) -> Problem:
        problem = super().__new__(cls, text)
        problem.hint = hint
        return problem


def _fmt(value: Any, digits: int = 4) -> str:
    """Short, rounded text for a tensor, number or nested sequence."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.numel() == 0:
            return f"empty tensor of shape {tuple(value.shape)}"
        if value.numel() > _MAX_SHOWN or value.dim() > 3:
            return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        return _fmt(value.tolist(), digits)
    if isinstance(value, np.ndarray):
        return _fmt(torch.from_numpy(value), digits)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v, digits) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_fmt(v, digits) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _safe_fmt(value: Any, digits: int = 4) -> str:
    try:
        return _fmt(value, digits)
    except Exception:  # a student's object whose repr fails must not stop the check
        return f"<{type(value).__name__}>"


def _short_error(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 120:
        message = message[:117] + "..."
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    return True


def compare_tensors(
    expected: torch.Tensor,
    got: Any,
    *,
    check_dtype: bool,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> str | None:
    """None when ``got`` matches ``expected``, else a one-line description."""
    if not isinstance(got, torch.Tensor):
        return Problem(
            f"expected a torch.Tensor, got {type(got).__name__}",
            "Return a torch.Tensor: compute with torch operations on the inputs "
            "(or torch.stack the pieces at the end).",
        )
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if check_dtype and got.dtype != expected.dtype:
        return f"expected dtype {expected.dtype}, got {got.dtype}"
    if got.dtype == torch.bool and expected.dtype != torch.bool:
        return Problem(
            f"expected dtype {expected.dtype}, got a boolean tensor",
            "Return the numbers themselves, not the result of a comparison.",
        )
    got64 = got.detach().cpu().to(torch.float64)
    expected64 = expected.detach().cpu().to(torch.float64)
    if not torch.isfinite(got64).all() and torch.isfinite(expected64).all():
        return "some values are NaN or inf"
    close = torch.isclose(got64, expected64, rtol=rtol, atol=atol)
    if close.all():
        return None
    index = tuple(int(i) for i in (~close).nonzero()[0])
    return (
        f"values differ, first at index {list(index)}: "
        f"expected {expected64[index].item():.6g}, got {got64[index].item():.6g}"
    )


def run_checks(
    title: str,
    fn: Any,
    cases: Sequence[Case],
    reference: Callable,
    arg_names: Sequence[str],
    compare: Callable[[Any, Any, Case], str | None] | None = None,
) -> bool:
    """Run ``fn`` on every case, print one verdict, return True when all pass."""
    if compare is None:

        def compare(expected, got, case):
            return compare_tensors(expected, got, check_dtype=case.check_dtype)

    if not callable(fn):
        print(f"✗ {title}: expected a function, got {type(fn).__name__}")
        return False

    failures = []
    for number, case in enumerate(cases):
        expected = reference(*case.args, **case.kwargs)
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        got: Any = None
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError as err:
            if number == 0:
                print(f"✗ {title}: not implemented yet (replace the `raise NotImplementedError`)")
                return False
            problem = f"raised {_short_error(err)}"
        except (Exception, SystemExit) as err:  # the student's code may raise anything
            problem = f"raised {_short_error(err)}"
        else:
            try:
                problem = compare(expected, got, case)
            except Exception as err:
                problem = f"returned something that cannot be compared ({_short_error(err)})"
            if problem is None:
                changed = [
                    name
                    for name, before, after in zip(arg_names, case.args, args, strict=False)
                    if not _same(before, after)
                ]
                if changed:
                    problem = Problem(
                        f"changed its input `{changed[0]}` in place",
                        "Build new tensors (c = a + b) instead of modifying the inputs "
                        "(a += b, a[...] = ..., .zero_()): the caller still needs them.",
                    )
        if problem is not None:
            failures.append((case, problem, expected, got))

    if not failures:
        print(f"✓ {title}: all {len(cases)} checks passed")
        return True

    case, problem, expected, got = failures[0]
    shown_args = ", ".join(
        f"{name}={_safe_fmt(value)}" for name, value in zip(arg_names, case.args, strict=False)
    )
    shown_args += "".join(f", {name}={_safe_fmt(value)}" for name, value in case.kwargs.items())
    lines = [
        f"✗ {title}: failed '{case.name}' ({len(failures)} of {len(cases)} checks failed)",
        f"  input:    {shown_args}",
        f"  expected: {_safe_fmt(expected)}",
    ]
    if problem.startswith("raised"):
        lines.append(f"  got:      {problem}")
    else:
        lines.append(f"  got:      {_safe_fmt(got)}")
        lines.append(f"  problem:  {problem}")
    lines.append(f"  hint:     {getattr(problem, 'hint', None) or case.hint}")
    if len(failures) > 1:
        lines.append("  also failing: " + ", ".join(f"'{f[0].name}'" for f in failures[1:]))
    print("\n".join(lines))
    return False


def seeded(seed: int) -> torch.Generator:
    """A private generator, so building the cases leaves the global random state alone."""
    return torch.Generator().manual_seed(seed)


def tensor(values, dtype=torch.float32) -> torch.Tensor:
    """A float32 tensor from nested lists: the cases' literal boxes and logits."""
    return torch.tensor(values, dtype=dtype)


# --------------------------------------------------------------------------- quick questions


def _matches(got: Any, expected: Any, rel_tol: float, abs_tol: float) -> bool:
    """True when ``got`` is an acceptable answer for ``expected`` (see :func:`check_answer`)."""
    if isinstance(expected, torch.Tensor):
        return isinstance(got, torch.Tensor) and torch.equal(got, expected)
    if isinstance(expected, tuple | list):
        return (
            isinstance(got, tuple | list)
            and len(got) == len(expected)
            and all(_matches(g, e, rel_tol, abs_tol) for g, e in zip(got, expected, strict=True))
        )
    if expected is None or isinstance(expected, str | bool):
        return got == expected
    if isinstance(expected, int | np.integer):  # a count: exactly, and as a whole number
        return isinstance(got, int | np.integer) and not isinstance(got, bool) and got == expected
    try:
        return math.isclose(float(got), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several numbers
        return False


def check_answer(
    question: str,
    answer: Callable,
    cases: Sequence[tuple[tuple, Any]],
    hint: str,
    rel_tol: float = 1e-9,
    abs_tol: float = 0.0,
) -> bool:
    """Check a quick question's answer function on the lesson's own cases.

    Args:
        question: a few words naming the question, repeated in every message.
        answer: the student's function; ``answer(*args)`` is called once per case.
        cases: ``(args, expected)`` pairs: a tuple of arguments and the value the
            library (or the lesson's own computation) gives for them.
        hint: one line pointing at the idea, shown with a wrong answer.
        rel_tol, abs_tol: tolerances for numbers, as in :func:`math.isclose`.

    What counts as right, by the type of ``expected``:

    - a float: any number within the tolerances (a Python or NumPy number, a 0-d tensor);
    - an int: an int (or NumPy integer) equal to it; counts are whole numbers, so
      ``80.0`` and ``tensor(80)`` are not accepted;
    - a tuple or list: a tuple or list of the same length, element by element;
    - ``None``, a string or a bool: an equal value;
    - a tensor: a tensor with the same shape, dtype and values (``torch.equal``).

    Returns:
        True, after printing ``✓ question: all N cases right, e.g. args -> answer``,
        when every case matches; False, after printing ``- question: not answered yet``,
        when ``answer`` raises ``NotImplementedError`` (the student edition's stub).

    Raises:
        AssertionError: naming the question, the first wrong case, the answer and the hint.
        Any other exception the answer raises propagates, with its traceback.
    """
    try:
        results = [(args, answer(*args), expected) for args, expected in cases]
    except NotImplementedError:
        print(f"- {question}: not answered yet")
        return False
    for number, (args, got, expected) in enumerate(results, start=1):
        assert _matches(got, expected, rel_tol, abs_tol), (
            f"{question}, case {number} of {len(results)}: for {_safe_fmt(args, 6)} your answer "
            f"{_safe_fmt(got, 6)} is not right. Hint: {hint}"
        )
    args, got, _ = results[0]
    print(f"✓ {question}: all {len(results)} cases right, e.g. {_safe_fmt(args, 6)} -> {_safe_fmt(got, 6)}")
    return True
