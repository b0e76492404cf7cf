"""The graders' shared runner and the quick questions' ``check_answer``.

The runner: every grader prints one verdict, never raises whatever the student's code does,
says "not implemented yet" in one line for a stub, and leaves the inputs and the global random
state alone. ``check_answer``: each kind of answer the notebooks' quick questions accept or
reject, the not-answered path and the message of a wrong answer. The graders' own cases are
tested in one file per lesson (test_lesson05_matching_and_box_coding.py etc.).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import retina_lessons.exercises as exercises_package
from retina_lessons import exercises
from retina_lessons.exercises import ALL_CHECKS, check_answer

GRADER_DIR = Path(exercises_package.__file__).parent
TEST_DIR = Path(__file__).parent


def test_every_grader_module_has_its_test_file_and_is_listed():
    modules = sorted(GRADER_DIR.glob("lesson*.py"))
    notebooks = sorted((TEST_DIR.parents[1] / "notebooks").glob("*.ipynb"))
    assert [module.stem for module in modules] == [f"lesson{notebook.stem}" for notebook in notebooks]  # one per lesson
    for module in modules:
        assert (TEST_DIR / f"test_{module.name}").is_file(), module.name
    checkers = {name for name in dir(exercises) if name.startswith("check_") and name != "check_answer"}
    assert checkers == {f"check_{name}" for name in ALL_CHECKS}
    assert set(exercises.__all__) == checkers | {"ALL_CHECKS", "check_answer"}


# --------------------------------------------------------------------------- the graders' runner


def _not_implemented(*args, **kwargs):
    raise NotImplementedError("write this function")


@pytest.mark.parametrize("name", sorted(ALL_CHECKS))
def test_not_implemented_is_one_line(name, capsys):
    assert ALL_CHECKS[name](_not_implemented) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not implemented yet" in out, out
    assert "Traceback" not in out


def _raises(error):
    def fn(*args, **kwargs):
        raise error

    return fn


class _Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __float__(self):
        raise RuntimeError("no float")


BROKEN = {
    "raises ValueError": _raises(ValueError("bad")),
    "raises ZeroDivisionError": lambda *args, **kwargs: 1 / 0,
    "raises SystemExit": _raises(SystemExit(1)),
    "returns None": lambda *args, **kwargs: None,
    "returns a string": lambda *args, **kwargs: "42",
    "returns a list": lambda *args, **kwargs: [[0.0, 1.0]],
    "returns a wrong shape": lambda *args, **kwargs: torch.zeros(7, 3, 2),
    "returns NaN": lambda *args, **kwargs: torch.full((1, 1), float("nan")),
    "returns an unprintable object": lambda *args, **kwargs: _Unprintable(),
    "takes the wrong arguments": lambda: None,
}


@pytest.mark.parametrize("name", sorted(ALL_CHECKS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_checker_never_raises(name, broken, capsys):
    assert ALL_CHECKS[name](BROKEN[broken]) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {name}: failed "), out


def test_exception_is_reported_in_one_line(capsys):
    assert exercises.check_box_iou(_raises(ValueError("boxes1 must be (N, 4)\nsecond line"))) is False
    out = capsys.readouterr().out
    assert "got:      raised ValueError: boxes1 must be (N, 4)" in out
    assert "second line" not in out and "Traceback" not in out


@pytest.mark.parametrize("not_a_function", [None, 3, "box_iou"])
def test_checker_rejects_non_callable(not_a_function, capsys):
    assert exercises.check_box_iou(not_a_function) is False
    assert "expected a function" in capsys.readouterr().out


def test_checkers_keep_the_global_random_state():
    state = torch.random.get_rng_state()
    for checker in ALL_CHECKS.values():
        checker(_not_implemented)
    exercises.check_nms(torchvision.ops.nms)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_student_cannot_corrupt_the_cases(capsys):
    def vandal(boxes1, boxes2):
        iou = torchvision.ops.box_iou(boxes1, boxes2)
        boxes1.zero_()
        return iou

    assert exercises.check_box_iou(vandal) is False
    assert exercises.check_box_iou(torchvision.ops.box_iou) is True
    out = capsys.readouterr().out
    assert "changed its input `boxes1` in place" in out


# --------------------------------------------------------------------------- check_answer


def _returns(value):
    return lambda *args: value


# (what the notebook expects, an answer it must accept, tolerances, the notebook it stands for)
ACCEPTED = [
    (2.0, 2.0 + 1e-12, {}, "00: a number within the default rel_tol"),
    (100.0, 100.00001, {"rel_tol": 1e-6}, "00, 05, 06: a number within the rel_tol passed"),
    (0.9, np.float64(0.9), {}, "06: a NumPy number"),
    (0.5, torch.tensor(0.5, dtype=torch.float64), {"rel_tol": 1e-6}, "06: a 0-d tensor"),
    ((3, 717), (3, 717), {}, "00: a tuple of counts"),
    ((3, 717), [3, 717], {}, "00: a list for a tuple"),
    ((8.0, 16.0), (8, 16), {}, "04: whole numbers for floats"),
    ((4.0, 0.65), (4, 0.65 + 1e-8), {"rel_tol": 1e-4}, "04: a pair of an index and an IoU"),
    ([(76, 65), (38, 33)], [(76, 65), (38, 33)], {}, "02: a list of pairs"),
    ([(76, 65), (38, 33)], ((76, 65), [38, 33]), {}, "02: tuples and lists mixed"),
    (None, None, {}, "02: None"),
    ("M4", "M4", {}, "02: a string"),
    (2359296, 2359296, {}, "03: a large count"),
    (60, np.int64(60), {}, "08: a NumPy integer for a count"),
    (torch.tensor([3, 0, 7]), torch.tensor([3, 0, 7]), {}, "08: a tensor of indices"),
    (0.0, 1e-12, {"abs_tol": 1e-9}, "09: a number within abs_tol of 0"),
    (0.75, torch.tensor(0.75, dtype=torch.float64), {"abs_tol": 1e-9}, "09: a 0-d tensor"),
]

# (what the notebook expects, an answer it must reject, tolerances, why)
REJECTED = [
    (2.0, 2.1, {}, "a number off by 5 %"),
    (0.9, 0.9 + 1e-5, {"rel_tol": 1e-6}, "06: off by more than rel_tol"),
    (0.5, "a half", {}, "a word for a number"),
    (0.5, None, {}, "None for a number"),
    (0.5, torch.tensor([0.5, 0.5]), {}, "several numbers for one"),
    ((3, 717), (3, 717, 0), {}, "a tuple of another length"),
    ((3, 717), (3, 716), {}, "one element wrong"),
    ((3, 717), 720, {}, "a number for a tuple"),
    ([(76, 65), (38, 33)], [(76, 65), (38, 34)], {}, "02: one pair wrong"),
    (None, "M4", {}, "02: a string for None"),
    ("M4", "M3", {}, "02: another string"),
    ("M4", None, {}, "02: None for a string"),
    (60, 60.0, {}, "08: a float for a count"),
    (60, torch.tensor(60), {}, "08: a tensor for a count"),
    (1, True, {}, "08: a bool for a count"),
    (60, 61, {}, "08: a count off by one"),
    (torch.tensor([3, 0, 7]), torch.tensor([3, 7, 0]), {}, "08: indices in another order"),
    (torch.tensor([3, 0, 7]), [3, 0, 7], {}, "08: a list for a tensor"),
    (0.0, 1e-6, {"abs_tol": 1e-9}, "09: beyond abs_tol"),
]


@pytest.mark.parametrize(("expected", "got", "tolerances"), [a[:3] for a in ACCEPTED], ids=[a[3] for a in ACCEPTED])
def test_check_answer_accepts(expected, got, tolerances, capsys):
    assert check_answer("question", _returns(got), [((1, 2), expected)], "a hint", **tolerances) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ question: all 1 cases right, e.g. (1, 2) -> "), out
    assert out.count("\n") == 1


@pytest.mark.parametrize(("expected", "got", "tolerances"), [r[:3] for r in REJECTED], ids=[r[3] for r in REJECTED])
def test_check_answer_rejects(expected, got, tolerances, capsys):
    with pytest.raises(AssertionError, match=r"^question, case 1 of 1: .*Hint: a hint$"):
        check_answer("question", _returns(got), [((1, 2), expected)], "a hint", **tolerances)
    assert capsys.readouterr().out == ""


def test_check_answer_names_the_question_case_answer_and_hint():
    def my_tap_size(height, width, level):
        return height // 2**level, width // 2**level  # floor instead of ceil

    cases = [((640, 480, 3), (80, 60)), ((601, 513, 4), (38, 33))]
    with pytest.raises(AssertionError) as error:
        check_answer("tap sizes", my_tap_size, cases, "each stride-2 layer maps n to ceil(n / 2)")
    assert str(error.value) == (
        "tap sizes, case 2 of 2: for (601, 513, 4) your answer (37, 32) is not right. "
        "Hint: each stride-2 layer maps n to ceil(n / 2)"
    )


def test_check_answer_shows_the_first_case(capsys):
    cases = [((640, 480, 3), (80, 60)), ((601, 513, 4), (38, 33))]
    assert check_answer("tap sizes", lambda h, w, level: (-(-h // 2**level), -(-w // 2**level)), cases, "")
    assert capsys.readouterr().out == "✓ tap sizes: all 2 cases right, e.g. (640, 480, 3) -> (80, 60)\n"


def test_check_answer_shows_large_tensors_by_shape(capsys):
    boxes = torch.zeros(40, 4)
    assert check_answer("nms", lambda b: torch.arange(3), [((boxes,), torch.arange(3))], "")
    out = capsys.readouterr().out
    assert out == "✓ nms: all 1 cases right, e.g. (tensor of shape (40, 4), dtype torch.float32,) -> [0, 1, 2]\n"


def test_check_answer_not_answered_yet(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise: write my_answer")

    assert check_answer("a question", stub, [((1,), 1.0), ((2,), 2.0)], "a hint") is False
    assert capsys.readouterr().out == "- a question: not answered yet\n"


def test_check_answer_lets_other_errors_through():
    def broken(x):
        raise ValueError("a bug in the answer")

    with pytest.raises(ValueError, match="a bug in the answer"):
        check_answer("a question", broken, [((1,), 1.0)], "a hint")
