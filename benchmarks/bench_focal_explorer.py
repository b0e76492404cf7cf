"""How long one move of a slider of the focal loss explorer takes, picture included.

Builds the explorer as the notebook's widget does (on the realistic ~100k-anchor
distribution, the moving numbers in an HTML table rather than drawn by matplotlib), warms it
up, then times updates that each move gamma or alpha (as dragging a slider does), every one
followed by rendering the PNG and the table the notebook shows. Prints the median wall time against the 100 ms target,
split into the update (numbers and artists) and the render (blit and PNG), and the process
CPU time (a figure that a busy machine inflates less than the wall time).

    uv run python benchmarks/bench_focal_explorer.py [--updates 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from retina_lessons.explorers.focal import FocalExplorer

TARGET_MS = 100.0


def slider_moves(num_updates: int) -> list[tuple[float, float]]:
    """(gamma, alpha) pairs as a student drags gamma over [0, 5], then alpha over [0, 1]."""
    half = num_updates // 2
    gammas = np.round(np.linspace(0.1, 5.0, half), 1)
    alphas = np.round(np.linspace(0.05, 1.0, num_updates - half), 2)
    return [(float(g), 0.25) for g in gammas] + [(2.0, float(a)) for a in alphas]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=20, help="timed updates (after warm-up)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (a 2-core laptop)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    explorer = FocalExplorer(numbers_in_figure=False)
    explorer.render()  # the first render draws the static background once
    build_s = time.perf_counter() - start
    for gamma, alpha in slider_moves(6):  # warm-up
        explorer.update(gamma, alpha)
        explorer.render()

    wall, cpu, update_ms, render_ms = [], [], [], []
    for gamma, alpha in slider_moves(args.updates):
        start, start_cpu = time.perf_counter(), time.process_time()
        explorer.update(gamma, alpha)
        middle = time.perf_counter()
        explorer.render()
        explorer.table_html()
        end = time.perf_counter()
        wall.append((end - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        update_ms.append((middle - start) * 1e3)
        render_ms.append((end - middle) * 1e3)

    num_anchors = sum(explorer.counts.values())
    width, height = explorer.fig.canvas.get_width_height()
    median = statistics.median(wall)
    print(
        f"focal explorer: {len(wall)} slider moves on {num_anchors:,} anchors (each update + "
        f"{width}x{height} PNG), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  build + first render: {build_s:.2f} s")
    print(f"  update (numbers, artists) median {statistics.median(update_ms):6.1f} ms")
    print(f"  render (blit, PNG, table) median {statistics.median(render_ms):6.1f} ms")
    verdict = "within" if median < TARGET_MS else "ABOVE"
    print(
        f"median {median:.1f} ms per slider move (CPU {statistics.median(cpu):.1f} ms), "
        f"max {max(wall):.1f} ms: {verdict} the {TARGET_MS:.0f} ms target"
    )


if __name__ == "__main__":
    main()
