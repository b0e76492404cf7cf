"""The student edition of the lessons: every exercise's solution replaced by a stub.

    uv run python -m retina_lessons.exercises.student_edition student/ [--notebooks notebooks/]

writes a copy of every notebook into ``student/`` (git-ignored) in which each solution
block becomes ``# Your code here`` plus ``raise NotImplementedError(...)``. Everything
else stays as it is: cell ids, metadata, Markdown, the other code cells.

The exercise convention
-----------------------
Lesson authors write exercises in the notebooks' "Exercises" section as follows.

1. **Exercise cell**: a code cell tagged ``exercise`` that defines exactly one
   top-level function (name it ``my_<what it computes>``, e.g. ``my_box_iou``). The
   teacher's solution is the function's body between two comment lines::

       def my_box_iou(boxes1, boxes2):
           # boxes1 (N, 4), boxes2 (M, 4) xyxy -> IoU (N, M)
           # BEGIN SOLUTION
           ...
           return inter / union
           # END SOLUTION

   The markers sit on lines of their own, at the indentation of the body. The
   student edition replaces the two markers and everything between them with
   ``# Your code here`` and ``raise NotImplementedError("Exercise: write my_box_iou")``
   at the same indentation; the signature and the lines above the block stay. A cell may hold
   several blocks (each is replaced); blocks do not nest.
2. **Check cell**: the next code cell, tagged ``check``, calls one or more graders
   of :mod:`retina_lessons.exercises` on the function, through the package name, and ends
   with the call, so the cell shows True or False::

       exercises.check_box_iou(my_box_iou)

   Markdown cells may sit between the two (e.g. "Run the next cell to check").
3. **Self-contained**: an exercise and its check use only their own code plus the
   imports of the notebook's cells tagged ``exercise-setup`` (typically
   ``import torch`` and ``from retina_lessons import exercises``), or import inside
   themselves. No other cell of the notebook calls the exercise function, so the
   student edition runs top to bottom: the stub only raises when its check runs,
   and the checker turns that into "not implemented yet" and False.
4. These cells are plain Python (no ``%`` or ``!`` lines), so the tests can run the
   setup cells, then each exercise with its check, in a fresh namespace without a
   kernel (:func:`run_exercises`). ``tests/exercises/test_exercises.py`` does this for every
   lesson: the teacher's solutions must pass every check, and the student edition
   must report "not implemented yet".
5. A question that no checker covers (a count, a ratio read off the lesson's own
   results) may still use a solution block in an untagged cell, checked by the
   lesson's own code (usually ``exercises.check_answer``, see
   :mod:`retina_lessons.exercises.runner`). The block must sit inside a function, so that the student
   edition's cell only defines a stub; tests/exercises/test_exercises.py checks that, but does
   not run such cells.

No data files are copied: the notebooks import ``retina_lessons`` and find their data
through the package (the repository's ``data/`` via ``retina_lessons.shipped.DATA_DIR``,
the photo from matplotlib's sample data), never by paths relative to the notebook. So
the student edition runs from any folder with the repository's package installed, as
``uv run`` and ``environment.yml`` (``pip install -e .``) install it.

Taught in: every lesson's "Exercises" section; the teacher's guide is TEACHING.md.
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import os
import re
import shutil
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import nbformat

EXERCISE_TAG = "exercise"
CHECK_TAG = "check"
SETUP_TAG = "exercise-setup"
BEGIN_SOLUTION = "# BEGIN SOLUTION"
END_SOLUTION = "# END SOLUTION"
STUB_COMMENT = "# Your code here"

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION[ \t]*$")
_END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
# Anything that looks like a marker (any case, any spacing, a missing "#", a trailing ":" or "S") must be
# exactly one: a near miss would leave the teacher's solution in the student edition.
_NEAR_MARKER = re.compile(r"^[ \t]*#*[ \t]*(BEGIN|END)[ \t_-]*SOLUTIONS?\b", re.IGNORECASE)
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(?P<name>\w+)[ \t]*\(")
_CHECKER_CALL = re.compile(r"\bexercises\.(?P<name>check_\w+)\s*\(")


class Exercise(NamedTuple):
    """One exercise of a notebook: the cell pair and what the check calls."""

    function: str  # the function the student writes, e.g. "my_box_iou"
    exercise_index: int  # position of the exercise cell in nb.cells
    check_index: int  # position of its check cell
    checkers: tuple[str, ...]  # checkers the check cell calls, e.g. ("check_box_iou",)


class ExerciseResult(NamedTuple):
    """What running an exercise cell and its check cell gave."""

    exercise: Exercise
    value: Any  # the check cell's last expression: True or False from the checker
    output: str  # everything printed by the two cells


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _where(where: str, index: int, cell) -> str:
    cell_id = cell.get("id")
    return f"{where}, cell {index}" + (f" (id {cell_id})" if cell_id else "")


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block by a stub.

    The stub keeps the indentation of the BEGIN line and names the nearest enclosing
    ``def``. Raises ValueError for a block that is not closed, an END without a BEGIN,
    or nested blocks.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    function = None
    begin = None  # (line number, indent) of the open block
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if begin is None and (match := _DEF.match(text)):
            function = match.group("name")
        if _NEAR_MARKER.match(text) and not (_BEGIN.match(text) or _END.match(text)):
            raise ValueError(
                f"{where}: line {number} {text.strip()!r} looks like a solution marker but is not one; "
                f"expected exactly '{BEGIN_SOLUTION}' or '{END_SOLUTION}' on a line of its own"
            )
        if match := _BEGIN.match(text):
            if begin is not None:
                raise ValueError(
                    f"{where}: '{BEGIN_SOLUTION}' on line {number} inside the block opened "
                    f"on line {begin[0]}; expected '{END_SOLUTION}' first"
                )
            begin = (number, match.group("indent"))
        elif _END.match(text):
            if begin is None:
                raise ValueError(
                    f"{where}: '{END_SOLUTION}' on line {number} without a '{BEGIN_SOLUTION}'"
                )
            indent = begin[1]
            what = f"write {function}" if function else "your code here"
            newline = line[len(text) :]
            out.append(f"{indent}{STUB_COMMENT}\n")
            out.append(f'{indent}raise NotImplementedError("Exercise: {what}"){newline}')
            begin = None
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise ValueError(
            f"{where}: '{BEGIN_SOLUTION}' on line {begin[0]} is never closed by '{END_SOLUTION}'"
        )
    return "".join(out)


def student_notebook(nb, where: str = "notebook"):
    """A copy of ``nb`` with every solution block replaced by a stub.

    Only code cells are changed, and only their source; a changed cell also loses its
    outputs and execution count (they belong to the teacher's solution).
    """
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stripped = strip_solutions(cell.source, _where(where, index, cell))
        if stripped != cell.source:
            cell.source = stripped
            cell.outputs = []
            cell.execution_count = None
    return nb


def read_notebook(path: str | Path):
    """Read a notebook as it is on disk (no version conversion); ValueError naming the file if it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as a UTF-8 notebook ({error})") from error
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid notebook JSON ({error.msg} at line {error.lineno}, "
                         f"column {error.colno})") from error
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list) or "nbformat" not in content:
        raise ValueError(f"{path}: not a Jupyter notebook (expected a JSON object with 'cells' and 'nbformat')")
    return nbformat.reads(text, as_version=nbformat.NO_CONVERT)


def notebook_paths(src_dir: str | Path) -> list[Path]:
    """The notebooks under ``src_dir`` (recursively), skipping .ipynb_checkpoints."""
    src = Path(src_dir)
    return sorted(path for path in src.rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts)


def write_whole(files: dict[Path, str], out_dir: str | Path, src_dir: str | Path) -> None:
    """Write `files` (relative path -> text) under ``out_dir``: whole or not at all.

    ``out_dir`` must not be ``src_dir`` or inside it. The files are written into a temporary folder
    beside ``out_dir`` and then moved into place, so an error leaves ``out_dir`` as it was.
    """
    src = Path(src_dir).resolve()
    out = Path(out_dir).resolve()
    if out == src or src in out.parents:
        raise ValueError(
            f"out_dir={str(out_dir)!r} is inside the notebooks folder {str(src)!r}; "
            "expected a folder outside it, e.g. student/"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for relative, text in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out.mkdir(exist_ok=True)
        for relative in files:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, out / relative)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_student_edition(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the student edition of every notebook in ``src_dir`` into ``out_dir``.

    - ``src_dir``: the teacher's notebooks (the repository's ``notebooks/``).
    - ``out_dir``: created if needed; must not be ``src_dir`` or inside it.
    - returns: the written notebook paths, keeping the layout under ``src_dir``.

    Every notebook is read and stripped (and every exercise checked) before anything is written;
    the edition is written whole or not at all.
    """
    src = Path(src_dir).resolve()
    if not src.is_dir():
        raise ValueError(f"src_dir={str(src_dir)!r} is not a folder; expected the notebooks folder")
    editions = {}
    for path in notebook_paths(src):
        relative = path.relative_to(src)
        teacher = read_notebook(path)
        find_exercises(teacher, where=str(relative))
        editions[relative] = nbformat.writes(student_notebook(teacher, where=str(relative)),
                                             version=nbformat.NO_CONVERT) + "\n"
    write_whole(editions, out_dir, src)
    return [Path(out_dir).resolve() / relative for relative in editions]


def _top_level_functions(source: str, where: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"{where}: not plain Python ({err.msg} on line {err.lineno})") from err
    return [
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def find_exercises(nb, where: str = "notebook") -> list[Exercise]:
    """The exercises of a notebook, checked against the convention in this module's docstring.

    Raises ValueError, naming the cell, for an exercise cell without a solution block or
    without exactly one function, an exercise not followed by a check cell, a check cell
    without an exercise before it or without a checker call, an unknown checker, or an
    exercise function used by another code cell.
    """
    from retina_lessons.exercises import ALL_CHECKS

    known = {f"check_{name}" for name in ALL_CHECKS}
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    exercises = []
    for position, (index, cell) in enumerate(code):
        tags = _tags(cell)
        here = _where(where, index, cell)
        if CHECK_TAG in tags:
            previous = code[position - 1][1] if position > 0 else None
            if previous is None or EXERCISE_TAG not in _tags(previous):
                raise ValueError(
                    f"{here}: a '{CHECK_TAG}' cell must follow an '{EXERCISE_TAG}' cell"
                )
        if EXERCISE_TAG not in tags:
            continue
        stubbed = f"{STUB_COMMENT}\n" in cell.source  # an exercise in the student edition
        if strip_solutions(cell.source, here) == cell.source and not stubbed:
            raise ValueError(f"{here}: an exercise needs a '{BEGIN_SOLUTION}' block")
        functions = _top_level_functions(cell.source, here)
        if len(functions) != 1:
            raise ValueError(f"{here}: an exercise defines exactly one function, found {functions}")
        following = code[position + 1] if position + 1 < len(code) else None
        if following is None or CHECK_TAG not in _tags(following[1]):
            raise ValueError(f"{here}: the next code cell must be tagged '{CHECK_TAG}'")
        check_index, check_cell = following
        check_here = _where(where, check_index, check_cell)
        _top_level_functions(check_cell.source, check_here)
        checkers = tuple(m.group("name") for m in _CHECKER_CALL.finditer(check_cell.source))
        if not checkers:
            raise ValueError(f"{check_here}: expected a call such as exercises.check_box_iou(...)")
        unknown = sorted(set(checkers) - known)
        if unknown:
            raise ValueError(
                f"{check_here}: unknown checker {unknown}; expected one of {sorted(known)}"
            )
        exercises.append(Exercise(functions[0], index, check_index, checkers))

    pair_cells = {i for ex in exercises for i in (ex.exercise_index, ex.check_index)}
    for index, cell in code:
        if index in pair_cells:
            continue
        for ex in exercises:
            if re.search(rf"\b{re.escape(ex.function)}\b", cell.source):
                raise ValueError(
                    f"{_where(where, index, cell)} uses the exercise function {ex.function!r}; "
                    "only its exercise and check cells may (the student edition stubs it)"
                )
    return exercises


def run_cell(source: str, namespace: dict) -> Any:
    """Execute a cell's source in ``namespace``; return its last expression's value, like Jupyter."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)


def run_exercises(nb, where: str = "notebook") -> list[ExerciseResult]:
    """Run the ``exercise-setup`` cells, then each exercise with its check, without a kernel.

    Every exercise runs in its own copy of the setup namespace, so each pair proves it
    is self-contained. Exceptions raised by the cells propagate.
    """
    exercises = find_exercises(nb, where)
    setup: dict[str, Any] = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type == "code" and SETUP_TAG in _tags(cell):
            run_cell(cell.source, setup)
    results = []
    for exercise in exercises:
        namespace = dict(setup)
        printed = io.StringIO()
        with redirect_stdout(printed):
            run_cell(nb.cells[exercise.exercise_index].source, namespace)
            value = run_cell(nb.cells[exercise.check_index].source, namespace)
        results.append(ExerciseResult(exercise, value, printed.getvalue()))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retina_lessons.exercises.student_edition",
        description="Write the student edition of the lessons (solutions replaced by stubs), "
                    "or with --nbgrader an nbgrader course with one assignment per lesson.",
    )
    parser.add_argument("out_dir", nargs="?", help="folder to write the student edition into (e.g. student/)")
    parser.add_argument("--nbgrader", metavar="COURSE",
                        help="instead, write an nbgrader course folder (nbgrader_config.py, source/lessonNN/)")
    parser.add_argument(
        "--notebooks",
        default=str(DEFAULT_NOTEBOOKS),
        help="the teacher's notebooks (default: the repository's notebooks/)",
    )
    args = parser.parse_args(argv)
    if (args.out_dir is None) == (args.nbgrader is None):
        parser.error("expected either OUT_DIR (the student edition) or --nbgrader COURSE, not both or neither")
    if args.nbgrader is not None:
        from .nbgrader_course import make_nbgrader_course

        try:
            written = make_nbgrader_course(args.notebooks, args.nbgrader)
        except ValueError as err:
            parser.error(str(err))
        print(f"wrote an nbgrader course with {len(written)} assignments to {args.nbgrader}; next, in that folder: "
              "nbgrader generate_assignment lessonNN")
        return 0
    try:
        written = make_student_edition(args.notebooks, args.out_dir)
    except ValueError as err:
        parser.error(str(err))
    num_stubs = sum(
        cell.source.count(STUB_COMMENT)
        for path in written
        for cell in read_notebook(path).cells
        if cell.cell_type == "code"
    )
    print(f"wrote {len(written)} notebooks with {num_stubs} exercise stubs to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
