"""coco_ap vs pycocotools' COCOeval on 500 images x 10 classes: agreement and time, in one run.

    uv run python benchmarks/bench_evaluation.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_evaluation import STAT_KEYS, make_dataset, reference_stats  # noqa: E402

from retina_lessons.evaluation import coco_ap  # noqa: E402

if __name__ == "__main__":
    detections, targets = make_dataset(0, num_images=500, num_classes=10, max_gt=10, max_copies=6, max_false=120)
    num_dets = sum(len(d["boxes"]) for d in detections)
    start = time.perf_counter()
    stats = coco_ap(detections, targets)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    expected = reference_stats(detections, targets, category_ids=list(range(1, 11)))
    reference = time.perf_counter() - start
    diff = max(abs(stats[k] - expected[k]) for k in STAT_KEYS)
    print(f"500 images x 10 classes, {num_dets} detections: coco_ap {ours:.2f} s, "
          f"pycocotools {reference:.2f} s, ratio {ours / reference:.2f}, max |diff| {diff:.1e}")
