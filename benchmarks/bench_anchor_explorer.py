"""How long one move of a control of the anchor explorer takes, picture included.

Builds the explorer on the photo and the generated shapes, warms it up (anchors and IoUs of
every image are computed once, as a student's first look at each would), then times updates
that each change one parameter, every one followed by rendering the PNG the notebook shows.
Prints the median and the worst wall time per kind of change against the 250 ms target, and
the process CPU time (a figure that a busy machine inflates less than the wall time).

    uv run python benchmarks/bench_anchor_explorer.py [--repeats 3] [--format png|jpeg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from retina_lessons.explorers.anchors import ALL, AnchorExplorer

TARGET_MS = 250.0

# One sweep: each entry changes one parameter from the state the previous one left.
SWEEP = [
    ("level", {"level": 4}), ("level", {"level": 5}), ("level", {"level": 6}), ("level", {"level": 7}),
    ("level", {"level": 3}),
    ("scale", {"scale": 1}), ("ratio", {"ratio": 0}), ("scale", {"scale": ALL}), ("ratio", {"ratio": ALL}),
    ("threshold", {"fg_iou": 0.6}), ("threshold", {"bg_iou": 0.3}), ("threshold", {"fg_iou": 0.5}),
    ("threshold", {"bg_iou": 0.4}),
    ("low-quality", {"low_quality": False}), ("low-quality", {"low_quality": True}),
    ("location", {"level": 5, "location": (12, 14)}), ("location", {"location": (13, 14)}),
    ("location", {"location": (13, 15)}), ("location", {"location": ALL, "level": 3}),
    ("convention", {"convention": "centered"}), ("convention", {"convention": "torchvision"}),
    ("image", {"image": 2}), ("level", {"level": 4}), ("threshold", {"fg_iou": 0.7}),
    ("image", {"image": 0, "fg_iou": 0.5}),
]


def time_sweep(explorer: AnchorExplorer) -> list[tuple[str, float, float]]:
    """(kind, wall ms, CPU ms) per update of one sweep."""
    times = []
    for kind, params in SWEEP:
        start, start_cpu = time.perf_counter(), time.process_time()
        explorer.update(**params)
        explorer.render()
        times.append((kind, (time.perf_counter() - start) * 1e3, (time.process_time() - start_cpu) * 1e3))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed sweeps (after one warm-up sweep)")
    parser.add_argument("--format", default="png", choices=("png", "jpeg"), help="picture format")
    args = parser.parse_args()

    start = time.perf_counter()
    explorer = AnchorExplorer(image_format=args.format)
    build_s = time.perf_counter() - start
    for image in range(len(explorer.examples)):  # anchors and IoUs, once per image and convention
        for convention in ("torchvision", "centered"):
            explorer.prepared(image, convention)
    time_sweep(explorer)  # warm-up

    times = [t for _ in range(args.repeats) for t in time_sweep(explorer)]
    wall = [ms for _, ms, _ in times]
    cpu = [ms for _, _, ms in times]
    median = statistics.median(wall)
    print(f"anchor explorer: {len(wall)} updates (each one parameter changed + {args.format.upper()} "
          f"rendered), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"  build (photo + {len(explorer.examples) - 1} shapes images): {build_s:.2f} s")
    for kind in dict.fromkeys(k for k, _ in SWEEP):
        ms = [t for k, t, _ in times if k == kind]
        cpu_ms = [c for k, _, c in times if k == kind]
        print(f"  {kind:12s} median {statistics.median(ms):6.1f} ms   max {max(ms):6.1f} ms   "
              f"CPU median {statistics.median(cpu_ms):6.1f} ms   ({len(ms)} updates)")
    verdict = "within" if median < TARGET_MS else "ABOVE"
    print(f"median {median:.1f} ms per update (CPU {statistics.median(cpu):.1f} ms), max {max(wall):.1f} ms: "
          f"{verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
