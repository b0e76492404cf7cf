"""Table 1 designs side by side: imbalance, CPU seconds per run, and the focal gain per seed.

For each budget (SGD steps per row) and each seed, trains the rows that decide the verdict of
``python -m retina_lessons.ablation`` (CE with alpha = .75, .9 and .99, the best CE rows on these scenes, and FL
with gamma = 2, alpha = .25)
on the design of ``retina_lessons.table1`` and prints, per seed, the best CE row's AP, the focal
row's AP and the gain, then the mean and sample std of the gain over the seeds.

    uv run python benchmarks/bench_table1_designs.py --steps 400 900 --seeds 0 1 2 --workers 2
    uv run python benchmarks/bench_table1_designs.py --image-size 256   # a design with more anchors

One thread per run; results do not depend on the number of workers. Timings are CPU seconds, which
a busy machine inflates less than wall seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from retina_lessons import table1

ROWS = ((0.0, 0.75), (0.0, 0.9), (0.0, 0.99), table1.FOCAL)
SCENES: dict[str, table1.CachedScenes] = {}  # cached before the workers are forked, shared by them


def run(job: tuple[int, float, float, int]) -> tuple[int, float, float, int, float, float]:
    torch.set_num_threads(1)
    steps, gamma, alpha, seed = job
    record = table1.run_setting(gamma, alpha, seed, SCENES["train"], SCENES["heldout"],
                                train_config=table1.table1_training(steps))
    return steps, gamma, alpha, seed, record["AP"], record["cpu_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[table1.TABLE1_TRAINING.steps])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=table1.TABLE1_IMAGE_SIZE,
                        help=f"side of the scenes in pixels (default {table1.TABLE1_IMAGE_SIZE}, the command's)")
    args = parser.parse_args()
    if args.image_size < 64:
        parser.error(f"--image-size {args.image_size}: expected at least 64 pixels (the shapes are up to 28)")

    torch.set_num_threads(1)
    # run_setting builds each row's detector from table1.TABLE1_CONFIG: the design's image size goes there
    table1.TABLE1_CONFIG = config = table1.TABLE1_CONFIG.replace(min_size=args.image_size, max_size=args.image_size)
    SCENES["train"] = table1.cache_scenes("train", table1.TRAIN_IMAGES, config)
    SCENES["heldout"] = table1.cache_scenes("val", table1.HELDOUT_IMAGES, config)
    counted = table1.imbalance(SCENES["train"], config)
    print(f"design: {args.image_size}-px sparse scenes, {counted['anchors']:,} anchors x "
          f"{counted['classes']} classes, {counted['objects_per_image']:.2f} objects and "
          f"{counted['positives_per_image']:.1f} positive anchors per image: "
          f"{counted['negatives_per_positive']:,.0f} negative pairs per positive "
          f"(COCO: {table1.COCO_NEGATIVES_PER_POSITIVE:,.0f})")
    jobs = [(steps, gamma, alpha, seed) for steps in args.steps for seed in args.seeds for gamma, alpha in ROWS]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = {(s, g, a, seed): (ap, cpu) for s, g, a, seed, ap, cpu in pool.map(run, jobs)}
    print(f"{len(jobs)} runs in {time.perf_counter() - start:.0f} s wall\n")
    print(f"{'steps':>6} {'seed':>5} {'CE α=.75':>9} {'CE α=.9':>8} {'CE α=.99':>9} {'FL γ=2':>7} {'gain':>6} "
          f"{'CPU s/run':>10}")
    for steps in args.steps:
        gains = []
        for seed in args.seeds:
            *ce, focal = (results[(steps, g, a, seed)][0] for g, a in ROWS)
            cpu = sum(results[(steps, g, a, seed)][1] for g, a in ROWS) / len(ROWS)
            gains.append(focal - max(ce))
            print(f"{steps:>6} {seed:>5} {ce[0]:>9.1f} {ce[1]:>8.1f} {ce[2]:>9.1f} {focal:>7.1f} {gains[-1]:>+6.1f} "
                  f"{cpu:>10.1f}")
        gains = torch.tensor(gains, dtype=torch.float64)
        std = float(gains.std()) if len(gains) > 1 else 0.0
        print(f"{steps:>6} {'all':>5} gain (best CE per seed) {float(gains.mean()):+.1f} AP, seed std {std:.1f} AP\n")


if __name__ == "__main__":
    main()
