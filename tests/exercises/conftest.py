"""What the graders' test files share: each lists its answers, the tests come from the lists.

A lesson's test file (``test_lesson05_matching_and_box_coding.py`` for
``retina_lessons/exercises/lesson05_matching_and_box_coding.py``) defines

- ``CORRECT``: grader name -> answers it must accept (the reference, torchvision's or the
  library's piece, a hand-written student-style solution);
- ``WRONG``: ``(grader name, wrong answer, text the verdict must contain)``, mistakes
  students really make, with the case that must catch each one;

and asks for the ``correct_answer`` and ``wrong_answer`` fixtures, which run once per entry.
"""

import pytest

from retina_lessons.exercises import ALL_CHECKS

MIN_WRONG_ANSWERS = 5  # mistakes each grader is tested against


def pytest_generate_tests(metafunc):
    module = metafunc.module
    if "correct_answer" in metafunc.fixturenames:
        pairs = [(name, fn) for name, fns in module.CORRECT.items() for fn in fns]
        ids = [f"{name}-{fn.__name__}" for name, fn in pairs]
        metafunc.parametrize("correct_answer", pairs, ids=ids)
    if "wrong_answer" in metafunc.fixturenames:
        metafunc.parametrize("wrong_answer", module.WRONG, ids=[w[1].__name__ for w in module.WRONG])


@pytest.fixture
def assert_accepts(capsys):
    """Check that the grader ``name`` accepts ``fn`` with a one-line ✓ verdict."""

    def check(name, fn):
        assert ALL_CHECKS[name](fn) is True
        out = capsys.readouterr().out
        assert out.startswith(f"✓ {name}: all ") and out.rstrip().endswith("checks passed"), out
        assert len(out.strip().splitlines()) == 1

    return check


@pytest.fixture
def assert_rejects(capsys):
    """Check that the grader ``name`` rejects ``fn`` in the case named by ``caught_by``."""

    def check(name, fn, caught_by):
        assert ALL_CHECKS[name](fn) is False
        out = capsys.readouterr().out
        assert out.startswith(f"✗ {name}: failed "), out
        assert caught_by in out, out
        for label in ("input:", "expected:", "got:", "hint:"):
            assert label in out, out

    return check


@pytest.fixture
def assert_tables_cover(request):
    """Check that a grader module's checkers are all in CORRECT, each with enough WRONG answers."""

    def check(grader_module):
        correct, wrong = request.module.CORRECT, request.module.WRONG
        checkers = {name for name in vars(grader_module) if name.startswith("check_")}
        assert {f"check_{name}" for name in correct} == checkers
        wrong_per_checker = {name: sum(w[0] == name for w in wrong) for name in correct}
        assert min(wrong_per_checker.values()) >= MIN_WRONG_ANSWERS, wrong_per_checker

    return check
