"""The nbgrader course: cell metadata as nbgrader reads it, and the round trip with nbgrader's own
commands and gradebook (0 points for an untouched copy, full marks for the teacher's solutions)."""

import ast
import warnings
from pathlib import Path

import pytest

from retina_lessons.exercises import student_edition
from retina_lessons.exercises.nbgrader_course import (
    POINTS_PER_CHECK,
    SOLVED,
    UNTOUCHED,
    NbgraderTimeout,
    assignment_name,
    is_quick_check,
    make_nbgrader_course,
    nbgrader_notebook,
    round_trip,
)
from retina_lessons.exercises.student_edition import (
    DEFAULT_NOTEBOOKS,
    find_exercises,
    read_notebook,
)

QUICK_LESSONS = ("00_overview.ipynb", "04_anchors.ipynb")  # autograding executes a whole lesson, twice


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    make_nbgrader_course(DEFAULT_NOTEBOOKS, out)
    return out


def test_one_assignment_per_lesson_with_exercises(course):
    lessons = sorted(p.name for p in DEFAULT_NOTEBOOKS.glob("*.ipynb")
                     if find_exercises(read_notebook(p), p.name))
    written = sorted(p.name for p in (course / "source").glob("lesson*/*.ipynb"))
    assert written == lessons and len(written) >= 11
    assert (course / "nbgrader_config.py").read_text().count("course_id") == 1
    for path in (course / "source").glob("lesson*/*.ipynb"):
        assert path.parent.name == assignment_name(path)


@pytest.mark.parametrize("path", sorted(DEFAULT_NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_every_cell_has_nbgrader_metadata(path):
    teacher = read_notebook(path)
    graded = nbgrader_notebook(teacher, path.name)
    exercises = find_exercises(teacher, path.name)
    checks = [c for c in graded.cells if c.metadata["nbgrader"]["grade"]]
    tagged = [c for c in checks if "check" in c.metadata.get("tags", [])]
    assert len(tagged) == len(exercises)
    for cell in checks:
        meta = cell.metadata["nbgrader"]
        assert meta["points"] == POINTS_PER_CHECK and meta["locked"] and not meta["solution"]
        if cell in tagged:
            assert cell.source.startswith("assert exercises.check_")
        else:  # a quick question's check: its checker call is asserted at the top level
            asserted = [ast.unparse(node.test.func) for node in ast.parse(cell.source).body
                        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Call)]
            assert any(name.split(".")[-1].startswith("check_") for name in asserted), cell.source[-200:]
    quick = [c for c in teacher.cells if c.cell_type == "code" and "check" not in c.metadata.get("tags", [])
             and "# BEGIN SOLUTION" not in c.source and is_quick_check(c.source)]
    assert len(checks) == len(tagged) + len(quick)  # every quick check comes after a solution
    solutions = [c for c in graded.cells if c.metadata["nbgrader"]["solution"]]
    assert len(checks) == len(solutions)  # every solution of the series is graded, once
    for cell in graded.cells:
        meta = cell.metadata["nbgrader"]
        assert meta["schema_version"] == 3
        assert meta["solution"] == ("# BEGIN SOLUTION" in cell.source)
        assert meta["locked"] != meta["solution"]
    assert len({c.metadata["nbgrader"]["grade_id"] for c in graded.cells}) == len(graded.cells)


def test_the_check_cell_assertion_keeps_what_comes_before():
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("from retina_lessons import exercises", metadata={"tags": ["exercise-setup"]}),
        new_code_cell("def my_f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION",
                      metadata={"tags": ["exercise"]}),
        new_code_cell("import torch\n\nexercises.check_box_iou(\n    my_f)", metadata={"tags": ["check"]}),
    ])
    graded = nbgrader_notebook(nb)
    assert graded.cells[2].source.startswith("import torch\n\nassert exercises.check_box_iou(\n    my_f), ")


def test_bad_course_arguments(tmp_path):
    with pytest.raises(ValueError, match="src_dir"):
        make_nbgrader_course(tmp_path / "nowhere", tmp_path / "course")
    with pytest.raises(ValueError, match="inside the notebooks folder"):
        make_nbgrader_course(DEFAULT_NOTEBOOKS, DEFAULT_NOTEBOOKS / "course")
    with pytest.raises(ValueError, match="NN_<title>.ipynb"):
        assignment_name(Path("overview.ipynb"))
    with pytest.raises(SystemExit):
        student_edition.main([str(tmp_path / "student"), "--nbgrader", str(tmp_path / "course")])
    with pytest.raises(SystemExit):
        student_edition.main([])


def test_the_command_writes_a_course(tmp_path, capsys):
    assert student_edition.main(["--nbgrader", str(tmp_path / "course")]) == 0
    assert "assignments" in capsys.readouterr().out
    assert (tmp_path / "course" / "source" / "lesson05" / "05_matching_and_box_coding.ipynb").is_file()


@pytest.mark.parametrize("notebook", QUICK_LESSONS)
def test_round_trip_with_nbgrader(course, notebook):
    pytest.importorskip("nbgrader")
    assignment = assignment_name(Path(notebook))
    try:  # each command takes well under a minute on a quiet 2-core machine
        scores = round_trip(course, assignment, timeout_s=300)
    except NbgraderTimeout as timeout:  # a crowded machine: say so, with nbgrader's log, and try once more
        warnings.warn(f"retrying the round trip of {notebook} once: {timeout}", stacklevel=1)
        scores = round_trip(course, assignment, timeout_s=600)
    graded = nbgrader_notebook(read_notebook(DEFAULT_NOTEBOOKS / notebook), notebook)
    points = POINTS_PER_CHECK * sum(cell.metadata["nbgrader"]["grade"] for cell in graded.cells)
    assert scores[UNTOUCHED] == (0.0, points)
    assert scores[SOLVED] == (points, points)
    released = (course / "release" / assignment / notebook).read_text()
    assert "# BEGIN SOLUTION" not in released and "NotImplementedError" in released


def test_quick_question_checks_are_graded_too():
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[
        new_code_cell("exercises.check_answer('before any solution', f, [], '')"),
        new_code_cell("def my_count():\n    # BEGIN SOLUTION\n    return 3\n    # END SOLUTION"),
        new_code_cell("cases = [((), 3)]\nexercises.check_answer('count', my_count, cases, 'hint')"),
        new_code_cell("def check_it(f):\n    return f() == 3\n\n\ncheck_it(my_count)"),
        new_code_cell("print(my_count())"),
        new_code_cell("check_elsewhere(my_count)"),  # a checker this cell does not define
        new_code_cell("if exercises.check_answer('count', my_count,\n                          [((), 3)], 'hint'):\n"
                      "    print('yes')\n    print('and more')"),
        new_code_cell("if exercises.check_answer('count', my_count, [((), 3)], 'hint'):\n    pass\nelse:\n    pass"),
    ])
    graded = nbgrader_notebook(nb)
    assert [cell.metadata["nbgrader"]["grade"] for cell in graded.cells] == [
        False, False, True, True, False, False, True, False]
    assert graded.cells[6].source == ("assert exercises.check_answer('count', my_count,\n                          "
                                      "[((), 3)], 'hint'), \"the check above did not pass: see its message\"\n"
                                      "print('yes')\nprint('and more')")
    assert graded.cells[2].source.endswith("assert exercises.check_answer('count', my_count, cases, 'hint'), "
                                           "\"the check above did not pass: see its message\"")
    assert graded.cells[3].source.splitlines()[-1].startswith("assert check_it(my_count)")
    assert not is_quick_check("def broken(:") and not is_quick_check("")


def test_an_nbgrader_command_past_its_time_is_stopped_with_its_log(tmp_path):
    pytest.importorskip("nbgrader")
    from retina_lessons.exercises.nbgrader_course import _nbgrader

    with pytest.raises(NbgraderTimeout, match=r"(?s)ran past 0\.01 s.*the end of its log"):
        _nbgrader(tmp_path, "--version", timeout_s=0.01)  # starting Python alone takes longer
