"""How long one slider move of the predictions explorer takes, picture included.

Builds the explorer on the held-out shapes (data/shapes_val, 150 images) with the classroom
detector: the forward pass of every image runs once, at construction, and is not timed per
update. Then it times a sweep of updates that each move one control (score threshold, NMS IoU
threshold, detections per image, or the image), every one followed by rendering the PNG the
notebook shows. Each update postprocesses (or cuts, see ``PredictionsExplorer.detections_for``)
and matches the detections of the whole held-out set, for the set-wide precision and recall.

The first sweep is "cold": every NMS threshold, lower score threshold and image is met for the
first time, so postprocessing runs and each image's background is drawn once. The later sweeps
repeat the same moves "warm". Prints the median and the worst wall time per kind of move
against the 150 ms target, and the process CPU time (which a busy machine inflates less).

    uv run python benchmarks/bench_predictions_explorer.py [--repeats 3] [--weights PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from retina_lessons.explorers.predictions import PredictionsExplorer
from retina_lessons.shipped import CLASSROOM_DETECTOR, heldout_shapes, load_classroom_detector

TARGET_MS = 150.0

# One sweep of 20 moves: each entry moves one control from where the previous one left it.
SWEEP = [
    ("score", {"score_thresh": 0.35}), ("score", {"score_thresh": 0.4}), ("score", {"score_thresh": 0.5}),
    ("score", {"score_thresh": 0.3}), ("score", {"score_thresh": 0.2}), ("score", {"score_thresh": 0.1}),
    ("nms", {"nms_thresh": 0.45}), ("nms", {"nms_thresh": 0.4}), ("nms", {"nms_thresh": 0.6}),
    ("nms", {"nms_thresh": 0.5}),
    ("max_dets", {"max_dets": 50}), ("max_dets", {"max_dets": 10}), ("max_dets", {"max_dets": 3}),
    ("max_dets", {"max_dets": 100}),
    ("image", {"image": 1}), ("image", {"image": 2}), ("image", {"image": 3}),
    ("score", {"score_thresh": 0.25}), ("nms", {"nms_thresh": 0.55}), ("image", {"image": 0, "score_thresh": 0.3}),
]


def time_sweep(explorer: PredictionsExplorer) -> list[tuple[str, float, float]]:
    """(kind, wall ms, CPU ms) per update of one sweep."""
    times = []
    for kind, params in SWEEP:
        start, start_cpu = time.perf_counter(), time.process_time()
        explorer.update(**params)
        explorer.render()
        times.append((kind, (time.perf_counter() - start) * 1e3, (time.process_time() - start_cpu) * 1e3))
    return times


def report(label: str, times: list[tuple[str, float, float]]) -> float:
    wall = [ms for _, ms, _ in times]
    cpu = [ms for _, _, ms in times]
    print(f"{label}: {len(times)} updates")
    for kind in dict.fromkeys(k for k, _ in SWEEP):
        ms = [t for k, t, _ in times if k == kind]
        cpu_ms = [c for k, _, c in times if k == kind]
        print(f"  {kind:9s} median {statistics.median(ms):6.1f} ms   max {max(ms):6.1f} ms   "
              f"CPU median {statistics.median(cpu_ms):6.1f} ms   ({len(ms)} updates)")
    median = statistics.median(wall)
    verdict = "within" if median < TARGET_MS else "ABOVE"
    print(f"  median {median:.1f} ms per update (CPU {statistics.median(cpu):.1f} ms), max {max(wall):.1f} ms: "
          f"{verdict} the {TARGET_MS:.0f} ms target")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm sweeps after the cold one")
    parser.add_argument("--weights", type=Path, default=CLASSROOM_DETECTOR,
                        help="state dict of a CLASSROOM detector (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2, as on a classroom laptop)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_classroom_detector(args.weights)
    dataset = heldout_shapes()
    start, start_cpu = time.perf_counter(), time.process_time()
    explorer = PredictionsExplorer.from_dataset(model, dataset)
    build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    explorer.render()

    print(f"predictions explorer: {len(dataset)} held-out images, weights {args.weights.name}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  build (forward pass of every image, first postprocessing): {build_s:.2f} s "
          f"(CPU {build_cpu_s:.2f} s)")
    cold = report("cold sweep (every setting met for the first time)", time_sweep(explorer))
    warm = report(f"warm sweeps ({args.repeats} x the same moves)",
                  [t for _ in range(args.repeats) for t in time_sweep(explorer)])
    print(f"median ms per update: {cold:.1f} cold, {warm:.1f} warm (target {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
