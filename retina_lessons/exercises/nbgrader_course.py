"""The lessons as an nbgrader course: one assignment per lesson, graded by nbgrader's own commands.

    uv run python -m retina_lessons.exercises.student_edition --nbgrader course/

writes ``course/nbgrader_config.py`` and ``course/source/<assignment>/<notebook>.ipynb`` for every
lesson with exercises (assignment ``lesson04`` holds ``04_anchors.ipynb``). The markers of the
exercise convention (:mod:`retina_lessons.exercises.student_edition`) are nbgrader's own, so the
cells only gain nbgrader's metadata (``schema_version`` 3):

- every cell with a ``# BEGIN SOLUTION`` block (the exercise cells, and quick questions answered
  in a function) is a **solution cell**: ``nbgrader generate_assignment`` replaces the block by
  ``raise NotImplementedError()``;
- every check cell is an **autograded test cell** worth ``POINTS_PER_CHECK`` points; its checker
  call becomes ``assert exercises.check_...(...)``, so the cell fails (and scores 0) whenever the
  checker prints its verdict and returns False;
- so is every **quick-question check**: a cell after a solution cell that ends in a call of
  ``exercises.check_...`` (usually ``check_answer``) or of a ``check_...`` function it defines itself
  (these return False for an unanswered question and raise or return False for a wrong answer), or in
  ``if`` such a call (with no ``else``; the call is asserted and the body runs after it); checks written
  otherwise (a loop of assertions, a ``try`` block) would stay ungraded, locked cells, and the lessons
  have none: every solution cell of the series is graded;
- every other cell is **locked** (read-only for students, restored by nbgrader if changed).

Then, in ``course/``, nbgrader does the rest (TEACHING.md has the whole workflow)::

    nbgrader generate_assignment lesson04      # release/lesson04/04_anchors.ipynb, solutions removed
    nbgrader autograde lesson04 --create       # grades submitted/<student>/lesson04/
    nbgrader export                            # grades.csv

Taught in: TEACHING.md (the teacher's guide).
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat

from .student_edition import (
    BEGIN_SOLUTION,
    CHECK_TAG,
    find_exercises,
    notebook_paths,
    read_notebook,
    write_whole,
)

POINTS_PER_CHECK = 1
COURSE_ID = "retina-lessons"
SCHEMA_VERSION = 3
_LESSON = re.compile(r"^(?P<number>\d+)_")

CONFIG = '''\
"""nbgrader configuration of the RetinaNet Lessons course (written by retina_lessons.exercises.student_edition)."""

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = "."
# Autograding runs each lesson top to bottom: lessons 07 and 10 train for a few minutes on a CPU.
c.ExecutePreprocessor.timeout = 1800
c.Execute.timeout = 1800
'''


def assignment_name(notebook: Path) -> str:
    """``04_anchors.ipynb`` -> ``lesson04``: one assignment per lesson."""
    match = _LESSON.match(notebook.name)
    if not match:
        raise ValueError(f"notebook={notebook.name!r}: expected a lesson notebook named NN_<title>.ipynb")
    return f"lesson{match.group('number')}"


def _checker_call(statement: ast.stmt) -> ast.Call | None:
    """The checker call a check cell ends with: ``check(...)`` or ``if check(...):`` with no ``else``."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        return statement.value
    if isinstance(statement, ast.If) and isinstance(statement.test, ast.Call) and not statement.orelse:
        return statement.test
    return None


def _asserted(source: str, where: str) -> str:
    """The check cell with its checker call asserted, so that a False verdict fails the cell.

    ``check(...)`` becomes ``assert check(...), ...``; ``if check(...):`` and its body (what to show
    after a right answer) become ``assert check(...), ...`` followed by the body, dedented.
    """
    tree = ast.parse(source)
    call = _checker_call(tree.body[-1]) if tree.body else None
    if call is None:
        raise ValueError(f"{where}: expected the check cell to end with the checker call")
    last = tree.body[-1]
    lines = source.splitlines()
    start, end = last.lineno - 1, last.end_lineno  # the last statement's lines
    call_text = ast.get_source_segment(source, call)
    indent = " " * last.col_offset
    asserted = [f"{indent}assert {call_text}, \"the check above did not pass: see its message\""]
    if isinstance(last, ast.If):
        body_start, body_indent = last.body[0].lineno - 1, last.body[0].col_offset - last.col_offset
        asserted += [line[body_indent:] if line.strip() else line for line in lines[body_start:end]]
    return "\n".join([*lines[:start], *asserted, *lines[end:]])


def is_quick_check(source: str) -> bool:
    """Whether a cell ends in a call (or an ``if`` on a call) of ``exercises.check_...`` or of a
    ``check_...`` function defined in it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    call = _checker_call(tree.body[-1]) if tree.body else None
    if call is None:
        return False
    name = ast.unparse(call.func)
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return name.startswith("exercises.check_") or (name.startswith("check_") and name in defined)


def _metadata(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
              points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def nbgrader_notebook(nb, where: str = "notebook"):
    """A copy of ``nb`` with nbgrader's metadata on every cell (see the module docstring)."""
    find_exercises(nb, where)  # the convention holds, or a ValueError names the cell
    nb = copy.deepcopy(nb)
    after_solution = False  # quick-question checks follow the solution cell they grade
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id") or f"cell{index}"
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source:
            meta = _metadata(f"solution_{cell_id}", solution=True)
            after_solution = True
        elif cell.cell_type == "code" and (CHECK_TAG in tags or (after_solution and is_quick_check(cell.source))):
            cell.source = _asserted(cell.source, f"{where}, cell {index}")
            meta = _metadata(f"check_{cell_id}", grade=True, locked=True, points=POINTS_PER_CHECK)
        else:
            meta = _metadata(f"locked_{cell_id}", locked=True)
        cell.metadata["nbgrader"] = meta
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def make_nbgrader_course(src_dir: str | Path, course_dir: str | Path) -> list[Path]:
    """Write an nbgrader course for the lessons of ``src_dir`` that have exercises into ``course_dir``.

    Returns the source notebooks written (``course_dir/source/<assignment>/<notebook>``). Every lesson
    is converted before anything is written; the course is written whole or not at all.
    """
    src = Path(src_dir).resolve()
    if not src.is_dir():
        raise ValueError(f"src_dir={str(src_dir)!r} is not a folder; expected the notebooks folder")
    files: dict[Path, str] = {Path("nbgrader_config.py"): CONFIG.format(course_id=COURSE_ID)}
    for path in notebook_paths(src):
        relative = path.relative_to(src)
        teacher = read_notebook(path)
        if not find_exercises(teacher, str(relative)):
            continue  # a notebook without checked exercises is no assignment
        graded = nbgrader_notebook(teacher, str(relative))
        files[Path("source") / assignment_name(path) / path.name] = nbformat.writes(graded, version=nbformat.NO_CONVERT) + "\n"
    write_whole(files, course_dir, src)
    return [Path(course_dir).resolve() / name for name in files if name.parts[0] == "source"]


# ----------------------------------------------------------------------------- the round trip

UNTOUCHED, SOLVED = "untouched", "solutions"  # the two submissions a round trip grades
NBGRADER_TIMEOUT_S = 1800  # one command; autograding lessons 07 and 10 runs their trainings twice


class NbgraderTimeout(RuntimeError):
    """An nbgrader command ran past its time limit; the message ends with the end of its log."""


def _log_tail(log: str, num_lines: int = 40, line_chars: int = 300) -> str:
    """The last `num_lines` lines of a log, each cut to `line_chars` characters (figures are long lines)."""
    lines = log.splitlines()[-num_lines:]
    return "\n".join(line if len(line) <= line_chars else line[:line_chars] + " ..." for line in lines)


def _nbgrader(course_dir: Path, *args: str, timeout_s: float = NBGRADER_TIMEOUT_S) -> None:
    """Run one nbgrader command in the course folder, with this Python.

    CalledProcessError when it fails; NbgraderTimeout, after stopping the command and the kernels it
    started, when it runs past `timeout_s` seconds. Its log is kept at debug level, so that the message
    of a timeout shows the cell the kernel was executing.
    """
    import os
    import signal
    import subprocess
    import sys

    # nbgrader runs `alembic` (its gradebook's migrations) by name: put this Python's scripts folder first
    # on PATH, as `uv run` or an activated environment would.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    command = [sys.executable, "-m", "nbgrader", *args, "--debug"]
    posix = os.name == "posix"  # a session of its own, so that a timeout stops its kernels too
    with subprocess.Popen(command, cwd=course_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, stdin=subprocess.DEVNULL, start_new_session=posix) as process:
        try:
            log, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            if posix:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            log, _ = process.communicate()
            raise NbgraderTimeout(f"nbgrader {' '.join(args)} ran past {timeout_s:g} s in {course_dir}; "
                                  f"the end of its log:\n{_log_tail(log)}") from None
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, ["nbgrader", *args], log)


def round_trip(course_dir: str | Path, assignment: str,
               timeout_s: float = NBGRADER_TIMEOUT_S) -> dict[str, tuple[float, float]]:
    """Release `assignment`, submit it untouched and with the teacher's solutions, autograde both.

    Uses nbgrader's own commands (``generate_assignment``, ``autograde --create``) and its gradebook;
    returns {"untouched": (score, max_score), "solutions": (score, max_score)}. A working course gives
    (0, max) and (max, max). Each nbgrader command may take at most `timeout_s` seconds.
    """
    import shutil

    from nbgrader.api import Gradebook

    course = Path(course_dir).resolve()
    _nbgrader(course, "generate_assignment", assignment, "--force", timeout_s=timeout_s)
    for student, folder in ((UNTOUCHED, "release"), (SOLVED, "source")):
        submitted = course / "submitted" / student / assignment
        shutil.rmtree(submitted, ignore_errors=True)
        shutil.copytree(course / folder / assignment, submitted)
    _nbgrader(course, "autograde", assignment, "--create", "--force", timeout_s=timeout_s)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {student: (gradebook.find_submission(assignment, student).score,
                          gradebook.find_submission(assignment, student).max_score)
                for student in (UNTOUCHED, SOLVED)}
