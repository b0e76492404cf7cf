"""The graders' test files list their answers; the tests come from the lists.

A lesson's test file (``test_lesson05_matching_and_box_coding.py`` for
``retina_lessons/exercises/lesson05_matching_and_box_coding.py``) defines

- ``CORRECT``: grader name -> answers it must accept (the reference, torchvision's or the
  library's piece, a hand-written student-style solution);
- ``WRONG``: ``(grader name, wrong answer, text the verdict must contain)``, mistakes
  students really make, with the case that must catch each one;

and a ``TestGraders`` class built on ``grading_support.GraderTests`` that holds them. Here
each of its answer tests becomes one test per table entry.
"""


def pytest_generate_tests(metafunc):
    tables = metafunc.cls
    if "correct_answer" in metafunc.fixturenames:
        pairs = [(name, fn) for name, fns in tables.correct.items() for fn in fns]
        ids = [f"{name}-{fn.__name__}" for name, fn in pairs]
        metafunc.parametrize("correct_answer", pairs, ids=ids)
    if "wrong_answer" in metafunc.fixturenames:
        metafunc.parametrize("wrong_answer", tables.wrong, ids=[w[1].__name__ for w in tables.wrong])
