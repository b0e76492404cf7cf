"""Table-driven tests of the student edition's boundary: a solution is never handed to students.

A line that looks like a solution marker but is not exactly one, a notebook that cannot be read,
an exercise that breaks the convention: each is an error naming the notebook and the cell, raised
before anything is written, so the edition is written whole or not at all.
"""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from retina_lessons.exercises.student_edition import make_student_edition, strip_solutions

BODY = "def my_f(x):\n    {begin}\n    return x + 1\n    {end}\n"

# (begin line, end line): each a near miss of "# BEGIN SOLUTION" / "# END SOLUTION"
NEAR_MISSES = {
    "no space after #": ("#BEGIN SOLUTION", "# END SOLUTION"),
    "lower case": ("# begin solution", "# end solution"),
    "title case": ("# Begin Solution", "# END SOLUTION"),
    "trailing colon": ("# BEGIN SOLUTION:", "# END SOLUTION"),
    "plural": ("# BEGIN SOLUTIONS", "# END SOLUTIONS"),
    "no #": ("BEGIN SOLUTION", "END SOLUTION"),
    "underscore": ("# BEGIN_SOLUTION", "# END_SOLUTION"),
    "two #": ("## BEGIN SOLUTION", "# END SOLUTION"),
    "end near miss only": ("# BEGIN SOLUTION", "# END SOLUTION."),
    "end lower case": ("# BEGIN SOLUTION", "# end solution"),
    "extra words": ("# BEGIN SOLUTION here", "# END SOLUTION"),
}


@pytest.mark.parametrize("case", NEAR_MISSES)
def test_a_near_miss_marker_is_an_error_naming_the_line(case):
    begin, end = NEAR_MISSES[case]
    with pytest.raises(ValueError) as error:
        strip_solutions(BODY.format(begin=begin, end=end), "lesson.ipynb, cell 3")
    message = str(error.value)
    assert message.startswith("lesson.ipynb, cell 3: line ") and "looks like a solution marker" in message
    assert "expected exactly '# BEGIN SOLUTION' or '# END SOLUTION'" in message


def test_exact_markers_with_spaces_around_still_work():
    stripped = strip_solutions(BODY.format(begin="# BEGIN SOLUTION  ", end="\t# END SOLUTION"), "cell")
    assert "return x + 1" not in stripped and "NotImplementedError" in stripped


def _series(tmp_path, sources):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, source in sources.items():
        if isinstance(source, bytes):
            (folder / name).write_bytes(source)
        else:
            nbformat.write(new_notebook(cells=[new_code_cell(source)]), folder / name)
    return folder


BROKEN_SERIES = {
    "invalid JSON": ({"00_a.ipynb": "x = 1", "01_b.ipynb": b'{"cells": [}'},
                     ["01_b.ipynb", "not valid notebook JSON", "line 1"]),
    "not UTF-8": ({"00_a.ipynb": "x = 1", "01_b.ipynb": b"\xff\xfe{}"}, ["01_b.ipynb", "UTF-8"]),
    "not a notebook": ({"00_a.ipynb": "x = 1", "01_b.ipynb": b'{"hello": 1}'}, ["01_b.ipynb", "not a Jupyter notebook"]),
    "near-miss marker in the last notebook": (
        {"00_a.ipynb": BODY.format(begin="# BEGIN SOLUTION", end="# END SOLUTION"),
         "01_b.ipynb": BODY.format(begin="#BEGIN SOLUTION", end="# END SOLUTION")},
        ["01_b.ipynb, cell 0", "line 2", "looks like a solution marker"]),
    "unclosed block": ({"00_a.ipynb": "def f():\n    # BEGIN SOLUTION\n    return 1\n"},
                       ["00_a.ipynb, cell 0", "never closed"]),
}


@pytest.mark.parametrize("case", BROKEN_SERIES)
def test_a_broken_notebook_writes_nothing_and_is_named(tmp_path, case):
    sources, words = BROKEN_SERIES[case]
    out = tmp_path / "student"
    with pytest.raises(ValueError) as error:
        make_student_edition(_series(tmp_path, sources), out)
    for word in words:
        assert word in str(error.value), f"{case}: {word!r} not in {error.value}"
    assert not out.exists()  # nothing written, not even the notebooks before the broken one
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".student")]  # no staging left behind


def test_an_existing_edition_is_left_alone_when_the_new_one_fails(tmp_path):
    src = _series(tmp_path, {"00_a.ipynb": "x = 1", "01_b.ipynb": "# begin solution\n"})
    out = tmp_path / "student"
    out.mkdir()
    (out / "00_a.ipynb").write_text("the old edition")
    with pytest.raises(ValueError):
        make_student_edition(src, out)
    assert (out / "00_a.ipynb").read_text() == "the old edition"
