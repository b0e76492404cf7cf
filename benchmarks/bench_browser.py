"""What a student waits for in JupyterLab: "Run All Cells", then each slider move of an explorer.

Starts a private JupyterLab, opens each explorer notebook of ``tests/test_browser.py`` in
headless Chromium, runs all its cells, then moves each slider that the test moves, one step
back and forth, and times each move from the key press to the new picture decoded and painted
in the page (kernel callback, PNG over the websocket, image decode and paint included). The
same helpers as the browser test (``tests/browser_support.py``); needs /usr/bin/chromium.

    uv run python benchmarks/bench_browser.py [--moves 10] [notebooks/06_focal_loss.ipynb ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import NotebookPage, chromium, first_key, jupyter_lab, time_moves  # noqa: E402
from test_browser import EXPLORER_SLIDERS, NOTEBOOKS  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_notebook(context, server, notebook: Path, wanted, num_moves: int) -> None:
    page = NotebookPage(context, server, notebook)
    try:
        start = time.perf_counter()
        page.open()
        open_s = time.perf_counter() - start
        run_s = page.run_all_cells()
        print(f"{notebook.name}: JupyterLab open {open_s:.1f} s, Run All Cells {run_s:.1f} s")
        regions = page.explorers()
        if not regions:
            print("  no explorer found")
        for i, region in enumerate(regions):
            region.evaluate("e => e.scrollIntoView({block: 'start'})")
            sliders = page.sliders(region)
            chosen = [s for s in sliders if s.label in wanted] if wanted else sliders[:1]
            for slider in chosen:
                page.move(region, slider, first_key(slider))  # warm-up move
                slider = next(s for s in page.sliders(region) if s.label == slider.label)
                moves = time_moves(page, region, slider, num_moves, first_key(slider))
                ms = [m.latency_ms for m in moves]
                print(f"  explorer {i}, slider {slider.label!r}: slider move -> new picture shown: "
                      f"median {statistics.median(ms):.0f} ms, p90 {percentile(ms, 0.9):.0f} ms, "
                      f"min {min(ms):.0f}, max {max(ms):.0f} ({len(ms)} moves)")
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="explorer notebooks (default: all those the browser test runs)")
    parser.add_argument("--moves", type=int, default=10, help="timed moves per slider")
    args = parser.parse_args()
    notebooks = [p.resolve() for p in args.notebooks] or [NOTEBOOKS / n for n in sorted(EXPLORER_SLIDERS)]

    print(f"JupyterLab + headless Chromium, {platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores")
    start = time.perf_counter()
    with chromium() as context, jupyter_lab(ROOT) as server:
        print(f"start Chromium + JupyterLab: {time.perf_counter() - start:.1f} s")
        for notebook in notebooks:
            if not notebook.exists():
                print(f"{notebook.name}: missing")
                continue
            bench_notebook(context, server, notebook, EXPLORER_SLIDERS.get(notebook.name), args.moves)
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
