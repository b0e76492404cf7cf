"""The tests every grader gets from two tables of answers (see conftest.py for the tables)."""

from retina_lessons.exercises import ALL_CHECKS

MIN_WRONG_ANSWERS = 5  # mistakes each grader is tested against


class GraderTests:
    """A lesson's test file subclasses this as ``TestGraders`` and sets ``grader_module``,
    ``correct`` and ``wrong``; conftest.py runs the two answer tests once per table entry."""

    grader_module = None  # e.g. retina_lessons.exercises.lesson05_matching_and_box_coding
    correct: dict = {}
    wrong: list = []

    def test_every_checker_is_tested(self):
        checkers = {name for name in vars(self.grader_module) if name.startswith("check_")}
        assert {f"check_{name}" for name in self.correct} == checkers
        wrong_per_checker = {name: sum(w[0] == name for w in self.wrong) for name in self.correct}
        assert min(wrong_per_checker.values()) >= MIN_WRONG_ANSWERS, wrong_per_checker

    def test_checker_accepts_correct_answer(self, correct_answer, capsys):
        name, fn = correct_answer
        assert ALL_CHECKS[name](fn) is True
        out = capsys.readouterr().out
        assert out.startswith(f"✓ {name}: all ") and out.rstrip().endswith("checks passed"), out
        assert len(out.strip().splitlines()) == 1

    def test_checker_rejects_wrong_answer(self, wrong_answer, capsys):
        name, fn, caught_by = wrong_answer
        assert ALL_CHECKS[name](fn) is False
        out = capsys.readouterr().out
        assert out.startswith(f"✗ {name}: failed "), out
        assert caught_by in out, out
        for label in ("input:", "expected:", "got:", "hint:"):
            assert label in out, out
