"""The paper's Table 1 towards the paper's conditions: a far larger imbalance and a neutral, shared start.

Paper, Section 5.1 and Table 1: on COCO, the focal loss (γ = 2, α = .25) beats the best α-balanced
cross-entropy (α = .75) by 2.9 AP (34.0 vs 31.1); Section 5.1 reports that cross-entropy without the
prior initialisation of the classification bias diverges during training (Section 3.3 explains why). Lesson 10's
miniature (:mod:`retina_lessons.ablation`) could not see this: the classroom shapes are ~176 times
less imbalanced than COCO, and its rows retrain a classifier on features learned with the focal loss.

This experiment moves towards both conditions, at classroom cost (the imbalance stays ~15 times milder):

- **imbalance**: sparse scenes (:mod:`retina_lessons.sparse_shapes`: 1-2 shapes of 10-28 pixels on a
  cluttered `TABLE1_IMAGE_SIZE`-pixel image, 4 classes) and the paper's 9 anchors per location
  (3 scales x 3 ratios, Section 4 "Anchors"); `imbalance` measures the negative (anchor, class)
  pairs per positive and `COCO_NEGATIVES_PER_POSITIVE` is lesson 06's figure for COCO;
- **a neutral start**: a backbone pretrained once on a task that favours neither loss (classifying
  shape crops with softmax cross-entropy, :mod:`retina_lessons.neutral_backbone`) in place of ImageNet;
  its BatchNorm frozen as Detectron freezes it, and (this project's choice, for speed) all its
  weights frozen too, where the paper fine-tunes them; every row trains the whole detection head
  (feature pyramid, classification and box subnets) from the same initial weights;
- **the paper's optimiser**: SGD, momentum 0.9, weight decay 1e-4, lr 0.01 with a linear warm-up and
  two drops by 10 (Section 4.1 "Optimization"), scaled to `TABLE1_TRAINING.steps` steps; the same
  budget, batches and schedule for every row.

Because the backbone is frozen, its features (C3-C5) are computed once per image and cached
(`cache_scenes`); each run then trains only the head, which is what makes 3 seeds x 12 runs fit in
about ten minutes on two cores. There is no flip augmentation (it would break the cache); all rows
lose it alike.

Run it with ``uv run python -m retina_lessons.ablation --seeds 0 1 2``. Taught in ``notebooks/10_ablation.ipynb``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from .config import RetinaNetConfig, get_config
from .evaluation import coco_ap
from .neutral_backbone import load_neutral_backbone
from .sparse_shapes import SPARSE_NUM_CLASSES, sparse_scenes
from .training import BatchSampler, TrainConfig, make_optimizer, make_scheduler

TABLE1_IMAGE_SIZE = 192  # 3.4k negative pairs per positive; 128 px gives 1.5k, 256 px 6.2k at 1.8x the cost
TABLE1_CONFIG: RetinaNetConfig = get_config(
    "classroom",
    num_classes=SPARSE_NUM_CLASSES,
    anchor_ratios=(0.5, 1.0, 2.0),  # the paper's 9 anchors per location (the CLASSROOM preset keeps only 1:1)
    backbone_norm="frozen_bn",  # a pretrained backbone, frozen (Section 4.1)
    trainable_layers=0,
    min_size=TABLE1_IMAGE_SIZE,
    max_size=TABLE1_IMAGE_SIZE,
)
TABLE1_STEPS = 400


def table1_training(steps: int) -> TrainConfig:
    """The paper's optimisation (Section 4.1) compressed to `steps` steps: warm-up over the first 10 %,
    drops at 2/3 and 8/9, SGD with lr 0.01 at batch 16, no flips (features are cached once per image)."""
    return TrainConfig(steps=steps, batch_size=16, optimizer="sgd", lr=0.01, warmup_steps=steps // 10,
                       warmup_factor=1 / 3, milestones=(steps * 2 // 3, steps * 8 // 9), hflip_prob=0.0)


TABLE1_TRAINING = table1_training(TABLE1_STEPS)
TRAIN_IMAGES = 1000
HELDOUT_IMAGES = 300  # split "val" of the sparse scenes
# Lesson 06: the photo at 800 pixels, 144,009 anchors x 80 COCO classes, 218 positive anchors.
COCO_ANCHORS, COCO_CLASSES, COCO_POSITIVES = 144_009, 80, 218
COCO_NEGATIVES_PER_POSITIVE = (COCO_ANCHORS * COCO_CLASSES - COCO_POSITIVES) / COCO_POSITIVES
FIRST_STEPS = 50  # losses kept per run to compare the start of training


@dataclass
class CachedScenes:
    """Sparse scenes with their frozen backbone features, ready for head-only training.

    features: [C3 (I, C, H/8, W/8), C4, C5] for the I images; boxes, labels: ground truth per image;
    image_size: (H, W) of the preprocessed batch.
    """

    features: list[Tensor]
    boxes: list[Tensor]
    labels: list[Tensor]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.boxes)

    def batch(self, indices: Tensor) -> tuple[list[Tensor], list[dict]]:
        """Features and targets of the images `indices`."""
        targets = [{"boxes": self.boxes[i], "labels": self.labels[i]} for i in indices.tolist()]
        return [level[indices] for level in self.features], targets


def new_detector(config: RetinaNetConfig = TABLE1_CONFIG, seed: int = 0, prior: bool = True) -> nn.Module:
    """A detector with the shipped neutral backbone (frozen) and a head initialised from `seed`.

    Every weight of the head (pyramid and both subnets) depends only on `seed`: the loss's gamma and
    alpha do not touch it. `prior=False` sets the final classification bias to 0 (sigmoid 0.5, "no
    prior") instead of the paper's -log((1 - pi) / pi) (Section 4.1, "Initialization").
    """
    from .model import RetinaNet

    torch.manual_seed(seed)
    model = RetinaNet(config)
    model.backbone.load_state_dict(load_neutral_backbone().state_dict())
    model.backbone.requires_grad_(False)
    if not prior:
        nn.init.zeros_(model.cls_head.predictor.bias)
    return model


@torch.no_grad()
def cache_scenes(split: str, num_images: int, config: RetinaNetConfig = TABLE1_CONFIG,
                 chunk: int = 100) -> CachedScenes:
    """Draw `num_images` sparse scenes of `split` and compute their C3-C5 features with the neutral backbone.

    The images go through the detector's own preprocessing (normalisation, padding), so the cached
    features are exactly those the detector computes in `detect`.
    """
    model = new_detector(config).eval()
    levels, boxes, labels, image_size = [], [], [], None
    for start in range(0, num_images, chunk):  # `chunk` images drawn and held at a time (memory)
        images, chunk_boxes, chunk_labels = sparse_scenes(min(chunk, num_images - start), split, first=start,
                                                          image_size=config.min_size, num_classes=config.num_classes)
        batch, _, _ = model.preprocess(list(images))
        image_size = tuple(batch.shape[-2:])
        features = model.backbone(batch.contiguous(memory_format=torch.channels_last))  # [C3, C4, C5]
        if not levels:  # one (I, C, H, W) tensor per level, filled chunk by chunk
            levels = [torch.empty((num_images, *f.shape[1:]), dtype=f.dtype) for f in features]
        for level, f in zip(levels, features):
            level[start:start + len(f)] = f
        boxes += chunk_boxes
        labels += chunk_labels
    return CachedScenes(levels, boxes, labels, image_size)


def imbalance(scenes: CachedScenes, config: RetinaNetConfig = TABLE1_CONFIG, chunk: int = 100) -> dict[str, float]:
    """Positive and negative (anchor, class) pairs per image, counted as lesson 06 counts them for COCO.

    A positive is a foreground anchor (its object's class); every other (anchor, class) pair is a
    negative: ``negatives per positive = (N * K - positives) / positives`` over all N anchors. Images are
    matched `chunk` at a time (memory).
    """
    from .matching import match_anchors, pad_ground_truth

    model = new_detector(config)
    anchors_xyxy = model.anchors(scenes.image_size)  # (N, 4)
    positives = 0
    for start in range(0, len(scenes), chunk):
        gt_boxes, _, gt_valid = pad_ground_truth(scenes.boxes[start:start + chunk], scenes.labels[start:start + chunk])
        matched_gt_idx = match_anchors(anchors_xyxy, gt_boxes, gt_valid, config.fg_iou, config.bg_iou,
                                       config.allow_low_quality_matches)  # (chunk, N)
        positives += int((matched_gt_idx >= 0).sum())
    num_anchors, K = len(anchors_xyxy), config.num_classes
    return {"anchors": num_anchors, "classes": K, "objects_per_image": sum(map(len, scenes.boxes)) / len(scenes),
            "positives_per_image": positives / len(scenes),
            "negatives_per_positive": (num_anchors * K * len(scenes) - positives) / positives}


def head_outputs(model: nn.Module, features: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Cached [C3, C4, C5] -> cls_logits (B, N, K), box_deltas (B, N, 4): the detector's forward after its backbone."""
    pyramid = model.fpn(features)
    return model.cls_head(pyramid), model.box_head(pyramid)


@dataclass
class HeadRun:
    """One trained head: its losses step by step, learning rates, batches seen, and CPU seconds."""

    classification: list[float] = field(default_factory=list)
    bbox_regression: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)
    diverged_at: int | None = None  # first step whose loss was not finite (training stops there)
    cpu_seconds: float = 0.0


def train_head(model: nn.Module, scenes: CachedScenes, train_config: TrainConfig = TABLE1_TRAINING,
               steps: int | None = None) -> HeadRun:
    """Train the trainable part of `model` on cached features with `train_config` (SGD, warm-up, drops).

    The loss is the detector's own (`compute_loss`, with the config's gamma and alpha); batches come from
    `BatchSampler` with ``train_config.seed``, the learning rate from `make_scheduler`, and gradients are
    clipped as `fit` clips them when ``clip_grad_norm`` is set. `steps` stops early (the schedule still
    spans the config's steps). A non-finite loss stops the run and is recorded in ``diverged_at``.
    Cached features cannot be flipped: ``hflip_prob`` must be 0.
    """
    if train_config.hflip_prob != 0:
        raise ValueError(f"train_config.hflip_prob={train_config.hflip_prob}: expected 0, cached features "
                         "cannot be flipped")
    cpu_start = time.process_time()
    optimizer = make_optimizer(model, train_config)
    scheduler = make_scheduler(optimizer, train_config)
    parameters = [p for p in model.parameters() if p.requires_grad]
    sampler = BatchSampler(len(scenes), train_config.batch_size, train_config.hflip_prob, train_config.seed)
    anchors_xyxy = model.anchors(scenes.image_size)
    run = HeadRun()
    model.train()
    for step in range(train_config.steps if steps is None else steps):
        indices, _ = sampler(step)
        features, targets = scenes.batch(torch.tensor(indices))
        losses = model.compute_loss(*head_outputs(model, features), anchors_xyxy, targets)
        loss = losses["classification"] + losses["bbox_regression"]
        if not torch.isfinite(loss):
            run.diverged_at = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train_config.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, train_config.clip_grad_norm)
        run.lr.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        run.classification.append(losses["classification"].item())
        run.bbox_regression.append(losses["bbox_regression"].item())
        run.batches.append(indices)
    model.eval()
    run.cpu_seconds = time.process_time() - cpu_start
    return run


@torch.no_grad()
def evaluate_head(model: nn.Module, scenes: CachedScenes, chunk: int = 100) -> dict[str, float]:
    """COCO AP, AP50, ... of `model` on cached held-out scenes (the detector's own postprocessing)."""
    model.eval()
    detections = []
    for start in range(0, len(scenes), chunk):
        indices = torch.arange(start, min(start + chunk, len(scenes)))
        features, _ = scenes.batch(indices)
        cls_logits, box_deltas = head_outputs(model, features)
        detections += model.postprocess(cls_logits, box_deltas, scenes.image_size, [scenes.image_size] * len(indices))
    targets = [{"boxes": b, "labels": lab} for b, lab in zip(scenes.boxes, scenes.labels)]
    return coco_ap(detections, targets)


# ----------------------------------------------------------------------------- the rows, over seeds

# All of Table 1a's alphas for CE (the best CE alpha moves up as the imbalance grows: a shorter list would
# leave CE untuned), and Table 1b's gammas, each with the paper's best alpha (retina_lessons.ablation).
TABLE1_ALPHAS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)
TABLE1_GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)
FOCAL = (2.0, 0.25)  # the paper's choice: gamma, alpha
NO_PRIOR_ALPHA = 0.75  # CE without the prior is run with the paper's best CE alpha (Table 1a)


def _table_rows() -> dict[str, list[tuple[float, float]]]:
    """The (gamma, alpha) of the rows of Table 1a and of Table 1b run here (the settings of ablation.py)."""
    from .ablation import table_1a_settings, table_1b_settings

    return {"1a": [(s.gamma, s.alpha) for s in table_1a_settings(TABLE1_ALPHAS)],
            "1b": [(s.gamma, s.alpha) for s in table_1b_settings(TABLE1_GAMMAS)]}


def table1_settings() -> list[tuple[float, float]]:
    """The (gamma, alpha) of every row of Table 1a and 1b run here, each once (11 trainings)."""
    return list(dict.fromkeys(setting for rows in _table_rows().values() for setting in rows))


def _digest(value) -> str:
    """A short fingerprint of a JSON-able value (the batches a run saw), to compare runs."""
    import hashlib
    import json

    return hashlib.sha1(json.dumps(value).encode()).hexdigest()[:12]


def run_setting(gamma: float, alpha: float, seed: int, train: CachedScenes, heldout: CachedScenes,
                prior: bool = True, train_config: TrainConfig = TABLE1_TRAINING) -> dict:
    """Train one row with `seed` (initial head weights and batches) and evaluate it: a JSON-ready record."""
    config = TABLE1_CONFIG.replace(focal_gamma=gamma, focal_alpha=alpha)
    model = new_detector(config, seed, prior)
    initial = sum(float(p.detach().double().sum()) for p in model.parameters() if p.requires_grad)
    run = train_head(model, train, replace(train_config, seed=seed))
    metrics = evaluate_head(model, heldout) if run.diverged_at is None else {"AP": 0.0, "AP50": 0.0}
    return {"gamma": gamma, "alpha": alpha, "seed": seed, "prior": prior,
            "AP": 100 * metrics["AP"], "AP50": 100 * metrics["AP50"], "diverged_at": run.diverged_at,
            "steps": len(run.classification), "cpu_seconds": run.cpu_seconds,
            "initial_weights_sum": initial, "batches_sha1": _digest(run.batches),
            "lr": run.lr[::max(1, len(run.lr) // 20)],
            "first_classification": run.classification[:FIRST_STEPS],
            "first_bbox_regression": run.bbox_regression[:FIRST_STEPS]}


_SCENES: dict[str, CachedScenes] = {}  # the cached scenes of this process, by name (see shared_scenes)
SCENE_SETS = {"train": ("train", TRAIN_IMAGES), "heldout": ("val", HELDOUT_IMAGES)}  # name -> (split, images)


def shared_scenes(name: str) -> CachedScenes:
    """The runs' cached scenes, `name` "train" or "heldout", computed once per process (on one thread,
    so that the features are the same whoever asks first) and shared by every run after that."""
    if name not in SCENE_SETS:
        raise ValueError(f"name={name!r}: expected one of {sorted(SCENE_SETS)}")
    if name not in _SCENES:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _SCENES[name] = cache_scenes(*SCENE_SETS[name])
        finally:
            torch.set_num_threads(threads)
    return _SCENES[name]


def _run_job(job: tuple[float, float, int, bool]) -> dict:
    torch.set_num_threads(1)  # one thread per run: the same numbers whichever worker runs it
    gamma, alpha, seed, prior = job
    return run_setting(gamma, alpha, seed, shared_scenes("train"), shared_scenes("heldout"), prior)


def run_seeds(seeds: list[int], workers: int = 2, log=None) -> list[dict]:
    """Every row of Table 1 and the no-prior CE run, for every seed: one record per run (see `run_setting`).

    Runs are spread over `workers` fresh processes ("spawn", on every operating system; each caches the
    scenes once, on one thread, and runs on one thread), so their results do not depend on `workers`, and a
    worker holds only what its runs need, not a copy of the caller's memory. With one worker the runs take
    turns in this process, on one thread.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    jobs = [(gamma, alpha, seed, True) for seed in seeds for gamma, alpha in table1_settings()]
    jobs += [(0.0, NO_PRIOR_ALPHA, seed, False) for seed in seeds]
    records = []
    threads = torch.get_num_threads()
    if workers <= 1:
        results = map(_run_job, jobs)
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_run_job, jobs)
    for record in results:
        records.append(record)
        if log is not None:
            log(f"seed {record['seed']}  γ={record['gamma']:g}, α={record['alpha']:g}"
                f"{'' if record['prior'] else ', no prior'}:  AP {record['AP']:.1f}  AP50 {record['AP50']:.1f}  "
                f"({record['cpu_seconds']:.0f} CPU s)")
    if workers > 1:
        pool.shutdown()
    torch.set_num_threads(threads)  # one worker ran the jobs here, on one thread
    return records


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std()) if len(values) > 1 else 0.0


def ap_of(records: list[dict], gamma: float, alpha: float, seed: int) -> float:
    """The AP of the run with the prior of row (`gamma`, `alpha`) and `seed` among `records`."""
    return next(r["AP"] for r in records if r["prior"] and (r["gamma"], r["alpha"], r["seed"]) == (gamma, alpha, seed))


def summarise(records: list[dict]) -> dict:
    """Mean and std over seeds of every row, the best CE row (by mean AP), and the focal gain per seed."""
    from .ablation import PAPER_TABLE_1A, PAPER_TABLE_1B

    with_prior = [r for r in records if r["prior"]]
    seeds = sorted({r["seed"] for r in with_prior})
    rows = []
    for table, settings in _table_rows().items():
        for gamma, alpha in settings:
            runs = {r["seed"]: r for r in with_prior if (r["gamma"], r["alpha"]) == (gamma, alpha)}
            ap, ap_std = _mean_std([runs[s]["AP"] for s in seeds])
            ap50, ap50_std = _mean_std([runs[s]["AP50"] for s in seeds])
            paper = PAPER_TABLE_1A[alpha] if table == "1a" else PAPER_TABLE_1B[gamma]
            rows.append({"table": table, "gamma": gamma, "alpha": alpha, "AP": ap, "AP std": ap_std,
                         "AP50": ap50, "AP50 std": ap50_std, "paper AP": paper["AP"], "paper AP50": paper["AP50"]})
    ce_rows = [row for row in rows if row["table"] == "1a"]
    best_ce = max(ce_rows, key=lambda row: row["AP"])
    gains = [ap_of(records, *FOCAL, s) - ap_of(records, 0.0, best_ce["alpha"], s) for s in seeds]
    gain, gain_std = _mean_std(gains)
    return {"seeds": seeds, "rows": rows, "best_ce_alpha": best_ce["alpha"], "gains": gains,
            "gain": gain, "gain_std": gain_std}


def gain_line(summary: dict) -> str:
    """The experiment's verdict in one line."""
    return f"focal gain over best CE: {summary['gain']:+.1f} AP (seed std {summary['gain_std']:.1f} AP)"


def format_table(summary: dict) -> str:
    """The rows as text: mean ± std over seeds of our AP and AP50 (in %), beside the paper's (COCO)."""
    n = len(summary["seeds"])
    lines = [f"{'table':<6}{'γ':>5}{'α':>6}   {'AP (ours)':>14} {'AP50 (ours)':>14}   {'AP (paper)':>10} "
             f"{'AP50 (paper)':>12}", f"{'':<17}   {f'mean ± std, {n} seeds':>29}"]
    for row in summary["rows"]:
        best = "  <- best CE" if row["table"] == "1a" and row["alpha"] == summary["best_ce_alpha"] else ""
        lines.append(f"{row['table']:<6}{row['gamma']:>5g}{row['alpha']:>6g}   {row['AP']:>7.1f} ± {row['AP std']:<4.1f} "
                     f"{row['AP50']:>7.1f} ± {row['AP50 std']:<4.1f}   {row['paper AP']:>10.1f} {row['paper AP50']:>12.1f}"
                     f"{best}")
    return "\n".join(lines)


def no_prior_summary(records: list[dict]) -> list[dict]:
    """Per seed: CE (alpha = NO_PRIOR_ALPHA) without and with the prior, first losses and AP side by side."""
    out = []
    for seed in sorted({r["seed"] for r in records}):
        with_prior = next(r for r in records if r["seed"] == seed and r["prior"]
                          and (r["gamma"], r["alpha"]) == (0.0, NO_PRIOR_ALPHA))
        without = next(r for r in records if r["seed"] == seed and not r["prior"])
        out.append({"seed": seed, "AP prior": with_prior["AP"], "AP no prior": without["AP"],
                    "diverged_at": without["diverged_at"],
                    "first loss prior": with_prior["first_classification"][0],
                    "first loss no prior": without["first_classification"][0] if without["first_classification"]
                    else float("nan")})
    return out


def no_prior_line(row: dict) -> str:
    """One row of `no_prior_summary` as a line: first loss and fate without the prior, beside with it."""
    fate = f"diverged at step {row['diverged_at']}" if row["diverged_at"] is not None else f"AP {row['AP no prior']:.1f}"
    return (f"seed {row['seed']}: CE α={NO_PRIOR_ALPHA:g} without the prior: first loss {row['first loss no prior']:,.1f} "
            f"(with the prior {row['first loss prior']:,.1f}), {fate} (with the prior: AP {row['AP prior']:.1f})")


def seed_gains(summary: dict) -> str:
    """The focal gain of every seed of a `summarise` result: ``seed 0: +2.9, seed 1: +1.6, ...``."""
    return ", ".join(f"seed {seed}: {gain:+.1f}" for seed, gain in zip(summary["seeds"], summary["gains"]))


def draw_start_of_training(records: list[dict], seed: int, ax=None):
    """Classification loss of the first steps: CE with the prior against CE without it (log scale)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    for prior, colour in ((True, "tab:blue"), (False, "tab:red")):
        record = next(r for r in records if r["seed"] == seed and r["prior"] == prior
                      and (r["gamma"], r["alpha"]) == (0.0, NO_PRIOR_ALPHA))
        label = f"CE, α = {NO_PRIOR_ALPHA:g}, " + ("prior π = 0.01" if prior else "no prior (bias 0)")
        if record["diverged_at"] is not None:
            label += f": diverged at step {record['diverged_at']}"
        ax.plot(range(len(record["first_classification"])), record["first_classification"], color=colour, label=label)
    ax.set(yscale="log", xlabel="step", ylabel="classification loss", title=f"The start of training (seed {seed})")
    ax.legend(fontsize=8)
    return ax
