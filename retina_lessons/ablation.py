"""The focal loss ablation in miniature: the paper's Table 1a and 1b, retrained on the synthetic shapes.

Paper, Section 5.1 ("Training Dense Detection") and Table 1: RetinaNet (ResNet-50-FPN, 600-pixel
images) trained on COCO with

- Table 1a: plain cross-entropy (gamma = 0) balanced by alpha in {.10, .25, .5, .75, .9, .99, .999};
- Table 1b: the focal loss with gamma in {0, .1, .2, .5, 1, 2, 5}, each with its best alpha.

Here the same comparison runs on the ``CLASSROOM`` preset: one short training per (gamma, alpha)
setting, every run from the same initial weights, on the same batches (same seed), for the same
number of steps; only ``focal_gamma`` and ``focal_alpha`` of the config change. Each run is then
evaluated with COCO AP on the held-out shapes. A setting that appears in both tables
(gamma = 0, alpha = .75) is trained once.

Six trainings from scratch do not fit in a lesson, so the runs can start warm, as the paper starts
from an ImageNet-pretrained backbone: `new_model(..., start_from=state_dict)` copies and freezes
everything but the classification subnet of a trained detector and resets that subnet to the paper's
initialisation, so each run retrains exactly the part the classification loss acts on.
`anchor_logits` collects the trained detector's logit for every term of the classification loss,
split by target, to see what each loss did to the scores.

The paper's conditions (a far larger imbalance, a neutral pretrained backbone, SGD) are approached in
:mod:`retina_lessons.table1`; this module's command runs that experiment over seeds::

    uv run python -m retina_lessons.ablation --seeds 0 1 2

Taught in ``notebooks/10_ablation.ipynb``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .config import RetinaNetConfig, get_config
from .training import History, TrainConfig, evaluate, fit

# The paper's Table 1a: CE (gamma = 0) with alpha-balancing. alpha -> COCO AP, AP50, AP75 (in %).
PAPER_TABLE_1A: dict[float, dict[str, float]] = {
    0.10: {"AP": 0.0, "AP50": 0.0, "AP75": 0.0},
    0.25: {"AP": 10.8, "AP50": 16.0, "AP75": 11.7},
    0.50: {"AP": 30.2, "AP50": 46.7, "AP75": 32.8},
    0.75: {"AP": 31.1, "AP50": 49.4, "AP75": 33.0},
    0.90: {"AP": 30.8, "AP50": 49.7, "AP75": 32.3},
    0.99: {"AP": 28.7, "AP50": 47.4, "AP75": 29.9},
    0.999: {"AP": 25.1, "AP50": 41.7, "AP75": 26.1},
}
# The paper's Table 1b: FL with the best alpha for each gamma. gamma -> alpha, COCO AP, AP50, AP75 (in %).
PAPER_TABLE_1B: dict[float, dict[str, float]] = {
    0.0: {"alpha": 0.75, "AP": 31.1, "AP50": 49.4, "AP75": 33.0},
    0.1: {"alpha": 0.75, "AP": 31.4, "AP50": 49.9, "AP75": 33.1},
    0.2: {"alpha": 0.75, "AP": 31.9, "AP50": 50.7, "AP75": 33.4},
    0.5: {"alpha": 0.50, "AP": 32.9, "AP50": 51.7, "AP75": 35.2},
    1.0: {"alpha": 0.25, "AP": 33.7, "AP50": 52.0, "AP75": 36.2},
    2.0: {"alpha": 0.25, "AP": 34.0, "AP50": 52.5, "AP75": 36.5},
    5.0: {"alpha": 0.25, "AP": 32.2, "AP50": 49.6, "AP75": 34.8},
}
CLASSIFIER_PREFIX = "cls_head."  # the classification subnet's weights in a RetinaNet state dict
BEST_ALPHA = {gamma: row["alpha"] for gamma, row in PAPER_TABLE_1B.items()}  # Table 1b's "best alpha" column

# The rows retrained here: three alphas of Table 1a, four gammas of Table 1b.
TABLE_1A_ALPHAS = (0.25, 0.50, 0.75)
TABLE_1B_GAMMAS = (0.0, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Setting:
    """One row of Table 1: the focusing parameter gamma and the class weight alpha."""

    gamma: float
    alpha: float

    def __str__(self) -> str:
        return f"γ={self.gamma:g}, α={self.alpha:g}"


def table_1a_settings(alphas: Iterable[float] = TABLE_1A_ALPHAS) -> list[Setting]:
    """Table 1a's rows: cross-entropy (gamma = 0) with each alpha."""
    return [Setting(0.0, alpha) for alpha in alphas]


def table_1b_settings(gammas: Iterable[float] = TABLE_1B_GAMMAS) -> list[Setting]:
    """Table 1b's rows: each gamma with the paper's best alpha for it."""
    settings = []
    for gamma in gammas:
        if gamma not in BEST_ALPHA:
            raise ValueError(f"gamma={gamma}: Table 1b has no row for it; expected one of {sorted(BEST_ALPHA)}")
        settings.append(Setting(gamma, BEST_ALPHA[gamma]))
    return settings


def unique_settings(*tables: Iterable[Setting]) -> list[Setting]:
    """The settings of all `tables` in order of first appearance, each once (a run serves every table)."""
    return list(dict.fromkeys(setting for table in tables for setting in table))


def shortened(config: TrainConfig, steps: int) -> TrainConfig:
    """`config` compressed to `steps` steps: warm-up and learning-rate milestones scaled in proportion.

    Everything else (optimiser, peak learning rate, batch size, clipping, seed) stays as it is, so a
    short run follows the same schedule shape as the full one, only faster.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}: expected a positive integer")
    scale = steps / config.steps
    milestones = tuple(min(round(m * scale), steps) for m in config.milestones)
    return replace(config, steps=steps, warmup_steps=round(config.warmup_steps * scale), milestones=milestones)


def new_model(setting: Setting, seed: int = 0, config: RetinaNetConfig | None = None,
              start_from: dict[str, Tensor] | None = None) -> nn.Module:
    """A detector (`config`, default ``CLASSROOM``) whose loss uses `setting`'s gamma and alpha.

    Without `start_from`: a fresh detector, every weight initialised from `seed`.

    With `start_from` (the state dict of a trained detector of the same architecture, e.g. the shipped
    classroom detector): a warm start, as the paper starts from an ImageNet-trained backbone. Every
    weight except the classification subnet's is copied from it and frozen: the backbone's BatchNorm
    becomes ``FrozenBatchNorm2d`` (``backbone_norm="frozen_bn"``, as for any pretrained backbone) and
    all other copied weights get ``requires_grad=False``. The classification subnet starts afresh from
    `seed` (the paper's initialisation, with the prior pi), so training changes only the part of the
    network the classification loss acts on, and the features are the same for every setting.

    Either way gamma and alpha do not touch the initial weights: every setting starts alike.
    """
    from .model import RetinaNet

    config = (config or get_config("classroom")).replace(focal_gamma=setting.gamma, focal_alpha=setting.alpha)
    if start_from is not None:
        config = config.replace(backbone_norm="frozen_bn", trainable_layers=0)
    torch.manual_seed(seed)
    model = RetinaNet(config)
    if start_from is not None:
        kept = {name: value for name, value in start_from.items() if not name.startswith(CLASSIFIER_PREFIX)}
        missing, unexpected = model.load_state_dict(kept, strict=False)
        if unexpected or any(not name.startswith(CLASSIFIER_PREFIX) for name in missing):
            raise ValueError(f"start_from: expected the state dict of a detector built like `config`; "
                             f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(CLASSIFIER_PREFIX))
    return model


@dataclass
class Run:
    """One trained setting: its detector, its training history and its held-out COCO metrics."""

    setting: Setting
    model: nn.Module
    history: History
    metrics: dict[str, float]
    cpu_seconds: float  # training and evaluation, process CPU time (all threads together)
    wall_seconds: float

    @property
    def steps_per_second(self) -> float:
        """Training steps per wall-clock second (evaluation not included)."""
        return len(self.history) / self.history.wall_seconds if self.history.wall_seconds > 0 else float("nan")


def train_setting(setting: Setting, dataset, heldout, train_config: TrainConfig, seed: int = 0,
                  config: RetinaNetConfig | None = None, start_from: dict[str, Tensor] | None = None,
                  progress: bool = False) -> Run:
    """Train a fresh detector with `setting`'s loss on `dataset` and evaluate it on `heldout`.

    `seed` sets the initial weights; `train_config.seed` the batches and flips. Runs that share both
    differ only in their loss. `config` and `start_from` are as in `new_model`.
    """
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    model = new_model(setting, seed, config, start_from)
    history = fit(model, dataset, train_config, progress=progress)
    metrics = evaluate(model, heldout)
    return Run(setting, model, history, metrics, time.process_time() - cpu_start, time.perf_counter() - wall_start)


def run_ablation(settings: Sequence[Setting], dataset, heldout, train_config: TrainConfig, seed: int = 0,
                 config: RetinaNetConfig | None = None, start_from: dict[str, Tensor] | None = None,
                 progress: bool = False, report: Callable[[Run], None] | None = None) -> dict[Setting, Run]:
    """Train and evaluate every setting once (duplicates are trained once); `report` is called after each."""
    runs: dict[Setting, Run] = {}
    for setting in settings:
        if setting in runs:
            continue
        runs[setting] = train_setting(setting, dataset, heldout, train_config, seed, config, start_from, progress)
        if report is not None:
            report(runs[setting])
    return runs


# ----------------------------------------------------------------------------- what the loss did to the scores


@torch.no_grad()
def anchor_logits(model: nn.Module, dataset, batch_size: int = 50) -> dict[str, Tensor]:
    """The detector's classification logit for every (anchor, class) pair of `dataset`, split by its target.

    Anchors are matched to the ground truth as in training, and ignored anchors are left out, so these
    are exactly the terms of the classification loss. Returns ``positives``: the logits of the object's
    class on foreground anchors (t = 1), ``negatives``: every other logit of a non-ignored anchor (t = 0),
    both 1-D, and ``num_images``. The probabilities are ``torch.sigmoid`` of them.
    """
    from .losses import classification_targets
    from .matching import IGNORE, match_anchors, pad_ground_truth

    model.eval()
    c = model.config
    positives, negatives = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for _, t in items]
        batch, _, targets = model.preprocess([image for image, _ in items], targets)
        cls_logits, _ = model(batch)  # (B, N, K)
        anchors_xyxy = model.anchors(batch.shape[-2:], batch.dtype, batch.device)  # (N, 4)
        gt_boxes, gt_labels, gt_valid = pad_ground_truth([t["boxes"] for t in targets],
                                                         [t["labels"] for t in targets])
        matched_gt_idx = match_anchors(anchors_xyxy, gt_boxes, gt_valid, c.fg_iou, c.bg_iou,
                                       c.allow_low_quality_matches)  # (B, N)
        is_target = classification_targets(matched_gt_idx, gt_labels, c.num_classes).bool()  # (B, N, K)
        counted = (matched_gt_idx != IGNORE)[..., None].expand_as(is_target)  # (B, N, K)
        positives.append(cls_logits[is_target & counted])
        negatives.append(cls_logits[~is_target & counted])
    return {"positives": torch.cat(positives), "negatives": torch.cat(negatives), "num_images": len(dataset)}


# ----------------------------------------------------------------------------- the table and the chart


def table_rows(runs: dict[Setting, Run]) -> list[dict]:
    """One row per line of Table 1a and 1b that was run: ours (AP, AP50 in %) beside the paper's."""
    rows = []
    for table, settings in (("1a", table_1a_settings()), ("1b", table_1b_settings())):
        for setting in settings:
            if setting not in runs:
                continue
            paper = PAPER_TABLE_1A[setting.alpha] if table == "1a" else PAPER_TABLE_1B[setting.gamma]
            metrics = runs[setting].metrics
            rows.append({"table": table, "gamma": setting.gamma, "alpha": setting.alpha,
                         "AP": 100 * metrics["AP"], "AP50": 100 * metrics["AP50"],
                         "paper AP": paper["AP"], "paper AP50": paper["AP50"]})
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    """`table_rows` as a Markdown table (our numbers and the paper's, in %)."""
    lines = ["| Table | γ | α | AP (ours) | AP50 (ours) | AP (paper) | AP50 (paper) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['table']} | {row['gamma']:g} | {row['alpha']:g} | {row['AP']:.1f} | {row['AP50']:.1f} "
                     f"| {row['paper AP']:.1f} | {row['paper AP50']:.1f} |")
    return "\n".join(lines)


def draw_table_1(rows: Sequence[dict], axes=None):
    """Grouped bars, one group per row of Table 1a (left) and 1b (right): our AP and AP50 beside the paper's.

    Returns the two axes. Our numbers come from short runs on the synthetic shapes, the paper's from
    full COCO trainings: compare the pattern across rows, not the heights across the two sources.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8), width_ratios=(3, 4), sharey=True, layout="constrained")
    bars = (("AP", "ours: AP", "tab:blue", None), ("AP50", "ours: AP50", "tab:blue", "//"),
            ("paper AP", "paper (COCO): AP", "tab:gray", None), ("paper AP50", "paper (COCO): AP50", "tab:gray", "//"))
    width = 0.2
    for ax, table in zip(axes, ("1a", "1b")):
        table_rows_ = [row for row in rows if row["table"] == table]
        x = np.arange(len(table_rows_))
        for i, (key, label, colour, hatch) in enumerate(bars):
            heights = [row[key] for row in table_rows_]
            ax.bar(x + (i - 1.5) * width, heights, width, label=label, color=colour,
                   alpha=1.0 if hatch is None else 0.45, hatch=hatch, edgecolor="white" if hatch is None else colour)
        if table == "1a":
            ax.set_xticks(x, [f"α = {row['alpha']:g}" for row in table_rows_])
            ax.set(title="Table 1a: cross-entropy (γ = 0), varying α", xlabel="class weight α", ylabel="COCO AP (%)")
        else:
            ax.set_xticks(x, [f"γ = {row['gamma']:g}\nα = {row['alpha']:g}" for row in table_rows_])
            ax.set(title="Table 1b: focal loss, varying γ (with the best α)", xlabel="focusing parameter γ")
        ax.set_ylim(0, 122)  # room above 100 % for the legend
        ax.set_yticks(range(0, 101, 20))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left", ncol=2, fontsize=8)
    return axes


# ----------------------------------------------------------------------------- the command


TABLE1_RESULTS = "table1_results.json"  # the command's results file; the committed one is in data/


def main(argv: list[str] | None = None) -> None:
    """Run Table 1 under the paper's conditions (:mod:`retina_lessons.table1`) for the given seeds.

    Prints the imbalance beside COCO's, the table (mean and std over seeds beside the paper), CE without
    the prior against CE with it, and ends with the focal gain over the best CE row.
    """
    import argparse
    import json
    import os
    import platform
    import sys
    from datetime import datetime, timezone

    from . import table1

    parser = argparse.ArgumentParser(description="The paper's Table 1 on sparse shapes, over seeds.")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds of the head's weights and batches")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each (default 2)")
    parser.add_argument("--out", default=TABLE1_RESULTS,
                        help=f"results file (JSON), default ./{TABLE1_RESULTS}; '' for none. The committed "
                             f"results are data/{TABLE1_RESULTS}")
    args = parser.parse_args(argv)
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: expected distinct non-negative integers")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: expected at least 1 process")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        parser.error(f"--out {args.out}: its folder does not exist; expected a file in an existing folder")

    def cpu_seconds() -> float:  # this process and its finished worker processes
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    records = table1.run_seeds(args.seeds, args.workers, log=lambda line: print(line, flush=True))
    imbalance = table1.imbalance(table1.shared_scenes("train"))
    summary = table1.summarise(records)
    cpu = cpu_seconds() - cpu_start
    wall = time.perf_counter() - wall_start

    print(f"\nimbalance: {imbalance['anchors']:,} anchors x {imbalance['classes']} classes per "
          f"{table1.TABLE1_IMAGE_SIZE}-px image, {imbalance['positives_per_image']:.1f} positive anchors per image: "
          f"{imbalance['negatives_per_positive']:,.0f} negative pairs per positive "
          f"(COCO, lesson 06: {table1.COCO_NEGATIVES_PER_POSITIVE:,.0f}; the classroom shapes: ~300)")
    print(f"budget per row: {table1.TABLE1_TRAINING.steps} SGD steps of {table1.TABLE1_TRAINING.batch_size} images, "
          f"lr {table1.TABLE1_TRAINING.lr:g}, the same batches and schedule in every row\n")
    print(table1.format_table(summary))
    print()
    for row in table1.no_prior_summary(records):
        print(table1.no_prior_line(row))
    print(f"per-seed gains (γ=2, α=.25 minus CE α={summary['best_ce_alpha']:g}): {table1.seed_gains(summary)}")
    print(f"{len(records)} runs in {wall:.0f} s wall, {cpu:.0f} CPU s ({args.workers} workers)")
    if args.out:
        results = {"command": "python -m retina_lessons.ablation " + " ".join(sys.argv[1:] if argv is None else argv),
                   "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "machine": f"{platform.machine()}, {torch.__version__}",
                   "wall_seconds": wall, "cpu_seconds": cpu,
                   "design": {"image_size": table1.TABLE1_IMAGE_SIZE, "train_images": table1.TRAIN_IMAGES,
                              "heldout_images": table1.HELDOUT_IMAGES, "steps": table1.TABLE1_TRAINING.steps,
                              "batch_size": table1.TABLE1_TRAINING.batch_size, "lr": table1.TABLE1_TRAINING.lr},
                   "imbalance": imbalance, "coco_negatives_per_positive": table1.COCO_NEGATIVES_PER_POSITIVE,
                   "summary": summary, "gain_line": table1.gain_line(summary), "runs": records}
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.out}")
    print(table1.gain_line(summary))


if __name__ == "__main__":
    main()
