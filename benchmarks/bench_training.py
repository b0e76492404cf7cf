"""Train the classroom detector with our loop and with torchvision's RetinaNet, same budget, same data.

Both models start from the same weights: torchvision's ``RetinaNet`` is built by
``retina_lessons.torchvision_compat.to_torchvision`` from our freshly initialised CLASSROOM model
(same narrow ResNet-18 body, FPN, P6/P7, anchors, heads with the same number of GroupNorm convs,
box coder, matcher thresholds, image size), so the weights are copied one to one. Both get the
same batches (the seeded `BatchSampler`: same images, same flips, in the same order), the same
optimiser and warm-up/step schedule (`CLASSROOM_TRAINING`) and the same gradient clipping, and
train until the schedule ends or the time budget runs out, whichever comes first. The two are
trained in turn, one step each, so that a busy machine slows both alike; each counts only the time
of its own steps. Each is then
evaluated on the held-out split (data/shapes_val) with the same COCO AP code.

What still differs, by design of the two implementations:

- torchvision computes the loss image by image in Python loops (matching, focal loss, box loss);
  ours does the whole batch at once. Same values (tests/test_model.py), different speed.
- torchvision resizes every image through ``GeneralizedRCNNTransform`` even at scale 1; ours
  skips an identity resize.
- torchvision's postprocessing decodes and filters per image; ours per level for the batch.

Usage (run it on a quiet machine; wall-clock budgets mean little on a shared one)::

    uv run python benchmarks/bench_training.py --budget-seconds 180 --threads 2
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from retina_lessons.config import get_config
from retina_lessons.evaluation import coco_ap
from retina_lessons.model import RetinaNet
from retina_lessons.shipped import heldout_shapes
from retina_lessons.torchvision_compat import to_torchvision
from retina_lessons.training import (
    CLASSROOM_TRAINING,
    BatchSampler,
    classroom_dataset,
    load_batch,
    make_optimizer,
    make_scheduler,
)


class Trainer:
    """One model under our schedule, advanced a step at a time; keeps its own wall and CPU time."""

    def __init__(self, model, loss_fn, dataset, config) -> None:
        self.model, self.loss_fn, self.dataset, self.config = model, loss_fn, dataset, config
        self.optimizer = make_optimizer(model, config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.sampler = BatchSampler(len(dataset), config.batch_size, config.hflip_prob, config.seed)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.steps, self.wall, self.cpu, self.last = 0, 0.0, 0.0, {}

    def step(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.model.train()
        images, targets = load_batch(self.dataset, *self.sampler(self.steps))
        losses = self.loss_fn(images, targets)
        loss = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.config.clip_grad_norm or math.inf)
        self.optimizer.step()
        self.scheduler.step()
        self.steps += 1
        self.last = {k: v.item() for k, v in losses.items()}
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


def train_side_by_side(trainers: dict[str, Trainer], budget_seconds: float) -> None:
    """Step the models in turn, so that both see the same machine load; each stops when its own
    training time reaches the budget or its schedule ends."""
    active = dict(trainers)
    while active:
        for name, trainer in list(active.items()):
            if trainer.steps >= trainer.config.steps or trainer.wall >= budget_seconds:
                del active[name]
            else:
                trainer.step()
    for trainer in trainers.values():
        trainer.model.eval()


@torch.no_grad()
def evaluate(detect, dataset, batch_size: int = 50) -> tuple[dict, float]:
    start = time.perf_counter()
    detections, targets = [], []
    for first in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(first, min(first + batch_size, len(dataset)))]
        detections += detect([image for image, _ in items])
        targets += [target for _, target in items]
    return coco_ap(detections, targets), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-seconds", type=float, default=180.0, help="wall-clock training budget per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    parser.add_argument("--only", choices=["ours", "torchvision"], help="train just one of the two")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = CLASSROOM_TRAINING
    dataset, heldout = classroom_dataset(), heldout_shapes()
    torch.manual_seed(args.seed)
    ours = RetinaNet(get_config("classroom"))
    theirs = to_torchvision(ours)  # the same initial weights, copied before any training
    print(f"classroom preset, {sum(p.numel() for p in ours.parameters()):,} parameters; schedule "
          f"{config.steps} steps of {config.batch_size} images; budget {args.budget_seconds:.0f} s wall each, "
          f"{args.threads} threads")

    runs = {"ours": (ours, ours.loss, ours.detect), "torchvision": (theirs, theirs, theirs)}
    if args.only:
        runs = {args.only: runs[args.only]}
    trainers = {name: Trainer(model, loss_fn, dataset, config) for name, (model, loss_fn, _) in runs.items()}
    train_side_by_side(trainers, args.budget_seconds)
    rows = []
    for name, (_, _, detect) in runs.items():
        result = trainers[name]
        metrics, eval_seconds = evaluate(detect, heldout)
        rows.append((name, result, metrics, eval_seconds))
        print(f"{name:>12}: {result.steps} steps in {result.wall:.1f} s wall ({result.cpu:.1f} s CPU), "
              f"{result.steps / result.wall:.2f} steps/s; AP50 {metrics['AP50']:.3f}, AP {metrics['AP']:.3f}; "
              f"held-out evaluation {eval_seconds:.1f} s", flush=True)

    print("\n| implementation | steps | steps/s (wall) | CPU s/step | AP50 | AP | eval s |")
    print("|---|---|---|---|---|---|---|")
    for name, result, metrics, eval_seconds in rows:
        print(f"| {name} | {result.steps} | {result.steps / result.wall:.2f} | "
              f"{result.cpu / max(result.steps, 1):.3f} | {metrics['AP50']:.3f} | {metrics['AP']:.3f} | "
              f"{eval_seconds:.1f} |")


if __name__ == "__main__":
    main()
