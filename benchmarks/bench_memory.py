"""Peak resident memory of each lesson, executed top to bottom in a fresh kernel.

A classroom JupyterHub gives every student's kernel a memory limit, so every lesson has to
fit in the budget (1.5 GiB) when it is run from the first cell to the last. For each
notebook this script starts a fresh measuring process, which runs `jupyter nbconvert
--execute` (a fresh kernel) as its own child and, once that has exited, reads
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest resident set among the
processes it waited for, directly or through their children, so the kernel (a grandchild,
reaped by nbconvert) counts. One measuring process per notebook keeps the maxima apart.
Prints the peak in GiB, the wall time and PASS/FAIL against the budget per lesson, and exits
non-zero if any lesson is over. The executed notebooks go to a temporary folder, deleted at
the end. Linux and macOS only (the `resource` module).

    uv run python benchmarks/bench_memory.py [--budget-gib 1.5] [notebooks/03_subnets.ipynb ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GIB = 1024**3
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def measure(notebook: Path, output_dir: Path, timeout_s: int) -> dict:
    """Execute `notebook` in a fresh kernel and return its peak RSS (bytes) and exit status.

    Runs in the measuring process: nbconvert is its only child, and the kernel nbconvert's
    only child, so RUSAGE_CHILDREN afterwards holds the larger of the two peaks.
    """
    command = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        f"--ExecutePreprocessor.timeout={timeout_s}", "--output-dir", str(output_dir),
        str(notebook),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * MAXRSS_UNIT
    return {"peak_bytes": peak, "returncode": done.returncode, "stderr": done.stderr[-2000:]}


def measure_in_fresh_process(notebook: Path, output_dir: Path, timeout_s: int) -> tuple[dict, float]:
    """Run `measure` in a new Python process (its own RUSAGE_CHILDREN); return it and the wall s."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(notebook), "--output-dir", str(output_dir),
         "--timeout", str(timeout_s)],
        capture_output=True, text=True,
    )
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"measuring {notebook.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1]), wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=NOTEBOOKS,
                        help="notebooks to measure (default: all in notebooks/)")
    parser.add_argument("--budget-gib", type=float, default=1.5, help="largest allowed peak per lesson")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    # Internal: the measuring process started once per notebook.
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.output_dir, args.timeout)))
        return

    print(f"peak resident set per lesson (largest process: nbconvert or its kernel), "
          f"budget {args.budget_gib:.2f} GiB")
    over = []
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as output_dir:
        for notebook in args.notebooks:
            result, wall_s = measure_in_fresh_process(notebook.resolve(), Path(output_dir), args.timeout)
            peak_gib = result["peak_bytes"] / GIB
            if result["returncode"] != 0:
                verdict = "ERROR"
                print(result["stderr"], file=sys.stderr)
            else:
                verdict = "PASS" if peak_gib <= args.budget_gib else "FAIL"
            if verdict != "PASS":
                over.append(notebook.name)
            print(f"{notebook.name:<34} peak {peak_gib:5.2f} GiB  {wall_s:7.1f} s  {verdict}", flush=True)
    if over:
        print(f"over budget or failed: {', '.join(over)}")
        sys.exit(1)
    print(f"all {len(args.notebooks)} lessons within {args.budget_gib:.2f} GiB")


if __name__ == "__main__":
    main()
