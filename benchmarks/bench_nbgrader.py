"""Every lesson through nbgrader: the round trip a teacher runs, with nbgrader's own commands.

For each lesson with exercises: write the course (`--nbgrader`), `nbgrader generate_assignment`, submit
the released copy untouched and the teacher's solutions as two students, `nbgrader autograde`, and read
both scores from nbgrader's gradebook. A working course gives 0 points for the untouched copy and full
marks for the solutions. Autograding executes each lesson twice, so the whole series takes about twice
the suite's notebook time (lessons 07 and 10 train for minutes). The course lives in a temporary folder.

    uv run python benchmarks/bench_nbgrader.py [--lessons 00 04 ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from retina_lessons.exercises.nbgrader_course import (
    SOLVED,
    UNTOUCHED,
    make_nbgrader_course,
    round_trip,
)
from retina_lessons.exercises.student_edition import DEFAULT_NOTEBOOKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", nargs="*", help="lesson numbers, e.g. 00 04 (default: every lesson)")
    args = parser.parse_args(argv)
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        written = make_nbgrader_course(DEFAULT_NOTEBOOKS, folder)
        assignments = sorted(path.parent.name for path in written)
        if args.lessons:
            assignments = [a for a in assignments if a.removeprefix("lesson") in args.lessons]
        print(f"{'assignment':<12}{'untouched':>12}{'solutions':>12}{'seconds':>10}  verdict")
        for assignment in assignments:
            start = time.perf_counter()
            scores = round_trip(folder, assignment)
            (zero, total), (full, _) = scores[UNTOUCHED], scores[SOLVED]
            ok = zero == 0 and full == total > 0
            failures += not ok
            print(f"{assignment:<12}{f'{zero:g} / {total:g}':>12}{f'{full:g} / {total:g}':>12}"
                  f"{time.perf_counter() - start:>10.0f}  {'ok' if ok else 'WRONG'}")
    print(f"{len(assignments) - failures} of {len(assignments)} lessons grade as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
