"""Every lesson's exercises work: the teacher's solutions pass their checks, and in the
student edition every check says "not implemented yet" instead of raising.

Only the cells of the exercise convention run (``exercise-setup``, ``exercise``, ``check``;
see retina_lessons/exercises/student_edition.py), in-process and without a kernel, so this is quick;
the whole notebooks run under nbmake. The tests run on every lesson that has tagged exercises
(all of them, 00 to 10); should none have any, they run on a small example lesson built here
instead, so the convention and its tooling stay tested. That example is also the template
lesson authors copy, and is checked on its own.
"""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from retina_lessons.exercises.student_edition import (
    CHECK_TAG,
    EXERCISE_TAG,
    SETUP_TAG,
    find_exercises,
    make_student_edition,
    notebook_paths,
    read_notebook,
    run_exercises,
    student_notebook,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = notebook_paths(NOTEBOOK_DIR) if NOTEBOOK_DIR.is_dir() else []
EXERCISE_TAGS = {EXERCISE_TAG, CHECK_TAG, SETUP_TAG}
STUB_RAISE = 'raise NotImplementedError("Exercise:'


def _has_exercises(path: Path) -> bool:
    """A cheap look (no validation, so broken markup still gets tested and reported)."""
    cells = read_notebook(path).cells
    return any(EXERCISE_TAGS & set(cell.get("metadata", {}).get("tags", [])) for cell in cells)


WITH_EXERCISES = [path for path in NOTEBOOKS if _has_exercises(path)]
# With no lesson exercises yet, test the convention on an example lesson instead.
SERIES = [pytest.param(path, id=path.name) for path in WITH_EXERCISES] or [
    pytest.param(None, id="example-lesson")
]

EXAMPLE_NAME = "00_example.ipynb"
EXAMPLE_EXERCISE = '''\
def my_head_reshape(head_output, num_anchors):
    """(B, A*K, H, W) head output -> (B, H*W*A, K), torchvision's order."""
    # BEGIN SOLUTION
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    per_anchor = head_output.view(B, num_anchors, K, H, W)  # (B, A, K, H, W)
    return per_anchor.permute(0, 3, 4, 1, 2).reshape(B, -1, K)  # (B, H*W*A, K)
    # END SOLUTION'''


def example_lesson():
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("## Learning goals\n\n- flatten a head's output per anchor"),
        new_markdown_cell("## Summary\n\nOne row per anchor.\n\n## Exercises"),
        new_code_cell("from retina_lessons import exercises", metadata={"tags": [SETUP_TAG]}),
        new_code_cell(EXAMPLE_EXERCISE, metadata={"tags": [EXERCISE_TAG]}),
        new_code_cell(
            "import torch\n\nexercises.check_head_reshape(my_head_reshape)",
            metadata={"tags": [CHECK_TAG]},
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """The real notebooks/ folder, or a folder holding the example lesson."""
    if WITH_EXERCISES:
        return NOTEBOOK_DIR
    folder = tmp_path_factory.mktemp("notebooks")
    nbformat.write(example_lesson(), folder / EXAMPLE_NAME)
    return folder


@pytest.fixture(scope="module")
def student_dir(teacher_dir, tmp_path_factory):
    """The student edition of the whole series, generated once for this module."""
    out = tmp_path_factory.mktemp("student")
    make_student_edition(teacher_dir, out)
    return out


def _name(path):
    return path.name if path is not None else EXAMPLE_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_exercise_markup_is_well_formed(path):
    """Tagged exercises follow the convention, and the student edition can still Run All.

    A solution block may also sit in an untagged cell (its check is then the lesson's own
    business, not run here); its stub must be inside a function, so that running the
    cell only defines the function instead of raising.
    """
    nb = read_notebook(path)
    exercises = find_exercises(nb, path.name)  # raises ValueError naming the broken cell
    student = student_notebook(nb, path.name)
    changed = {
        i
        for i, (mine, theirs) in enumerate(zip(student.cells, nb.cells, strict=True))
        if mine != theirs
    }
    assert {e.exercise_index for e in exercises} <= changed
    for index in sorted(changed):
        stubs = [line for line in student.cells[index].source.splitlines() if STUB_RAISE in line]
        assert stubs, f"cell {index} changed without a stub"
        top_level = [line for line in stubs if not line[:1].isspace()]
        assert not top_level, (
            f"cell {index}: a solution block outside a function; in the student edition "
            "the cell would raise NotImplementedError when run"
        )


@pytest.mark.parametrize("path", SERIES)
def test_teacher_solutions_pass_their_checks(path, teacher_dir):
    results = run_exercises(read_notebook(teacher_dir / _name(path)), _name(path))
    assert results, "a notebook tagged for exercises has no exercise"
    for result in results:
        assert result.value is True, (
            f"{result.exercise.function}: the check cell gave {result.value!r}\n{result.output}"
        )
        assert "✓" in result.output


@pytest.mark.parametrize("path", SERIES)
def test_student_edition_says_not_implemented(path, student_dir):
    nb = read_notebook(student_dir / _name(path))
    assert "BEGIN SOLUTION" not in "".join(cell.source for cell in nb.cells)
    results = run_exercises(nb, _name(path))
    assert results
    for result in results:
        assert result.value is False, f"{result.exercise.function}: {result.value!r}"
        assert "not implemented yet" in result.output, result.output


def test_example_lesson_follows_the_convention():
    """The example above is what lesson authors copy: it must itself be well formed."""
    exercises = find_exercises(example_lesson())
    assert [(e.function, e.checkers) for e in exercises] == [
        ("my_head_reshape", ("check_head_reshape",))
    ]
