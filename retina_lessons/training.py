"""Training RetinaNet: the paper's recipe, and a classroom version that trains on a 2-core CPU.

Paper, Section 4.1 ("Optimization"): synchronized SGD over 8 GPUs, 16 images per minibatch, momentum
0.9, weight decay 1e-4, learning rate 0.01 for 90k iterations, divided by 10 at 60k and again at 80k;
horizontal image flipping is the only augmentation, and the training loss is the focal loss plus the
smooth L1 box loss. The paper mentions no warm-up and no flip probability: the Detectron code behind it
warms the learning rate up linearly over the first 500 iterations from a third of it (its defaults
``SOLVER.WARM_UP_ITERS`` and ``WARM_UP_FACTOR``) and adds a mirrored copy of every training image
(``TRAIN.USE_FLIPPED``); this project flips each image with probability 0.5, as torchvision's reference
training does.

`fit` is that loop, written out: batches drawn in a seeded order with seeded flips, warm-up then
step schedule, SGD (or AdamW), gradient clipping, a progress bar, a `History` of every step,
callbacks (a live loss plot), atomic checkpoints that resume to exactly the same weights (and refuse,
naming the path and the differing fields, a file that is not such a checkpoint or belongs to another
run), and a clear stop on a non-finite loss. `CLASSROOM_TRAINING` is the schedule that trains the ``CLASSROOM``
preset from scratch on the synthetic shapes; ``notebooks/07_training.ipynb`` explains every choice.

The command line is :mod:`retina_lessons.train`; the detector shipped as ``data/classroom_detector.pt`` is::

    python -m retina_lessons.train --preset classroom --data shapes --threads 1 --out runs/classroom \\
        --save-model data/classroom_detector.pt

Taught in ``notebooks/07_training.ipynb``.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import tempfile
import time
import warnings
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .config import get_config
from .datasets import hflip
from .distributed import average_over_processes, data_parallel_loss, rank_and_world_size
from .validation import check_int, check_number

# The paper's optimisation (Section 4.1).
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
LR_DROP = 0.1  # the learning rate is multiplied by this at each milestone
LOSS_NAMES = {"classification": "classification (focal)", "bbox_regression": "bbox_regression (box)"}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, batches, augmentation. The model is configured separately."""

    steps: int  # optimiser steps (the paper: 90k)
    batch_size: int = 16  # images per step (the paper: 16 over 8 GPUs)
    optimizer: str = "sgd"  # "sgd" (paper: momentum 0.9) or "adamw"
    lr: float = 0.01  # peak learning rate, reached after warm-up
    momentum: float = MOMENTUM  # SGD momentum (AdamW: beta1)
    weight_decay: float = WEIGHT_DECAY
    warmup_steps: int = 500  # linear warm-up from warmup_factor * lr to lr (Detectron's; not in the paper)
    warmup_factor: float = 1 / 3
    milestones: tuple[int, ...] = (60_000, 80_000)  # from each of these steps on, the lr is times LR_DROP
    clip_grad_norm: float | None = None  # clip the gradients' total L2 norm to this (None: no clipping)
    hflip_prob: float = 0.5  # the paper's only augmentation (Section 4.1); 0.5 as torchvision's reference
    seed: int = 0  # seeds the batch order and the flips (and torch's RNG when training starts)

    def __post_init__(self) -> None:
        """Every field checked at construction, naming the field, its value and what is expected."""
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer={self.optimizer!r}: expected 'sgd' or 'adamw'")
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_number("lr", self.lr, 0.0, math.inf, "a positive, finite learning rate", low_open=True, high_open=True)
        check_number("momentum", self.momentum, 0.0, 1.0, "a momentum in [0, 1)", high_open=True)
        check_number("weight_decay", self.weight_decay, 0.0, math.inf, "a finite weight decay >= 0", high_open=True)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_number("warmup_factor", self.warmup_factor, 0.0, 1.0, "a factor in (0, 1]", low_open=True)
        if not isinstance(self.milestones, (tuple, list)) or not all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in self.milestones):
            raise ValueError(f"milestones={self.milestones!r}: expected a tuple of positive step numbers")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones={self.milestones}: expected increasing steps")
        if self.clip_grad_norm is not None:
            check_number("clip_grad_norm", self.clip_grad_norm, 0.0, math.inf, "a positive, finite norm or None",
                         low_open=True, high_open=True)
        check_number("hflip_prob", self.hflip_prob, 0.0, 1.0, "a probability in [0, 1]")
        check_int("seed", self.seed, 0)


# The paper's schedule: 90k iterations of 16 images, lr 0.01, /10 at 60k and 80k; Detectron's warm-up.
PAPER_TRAINING = TrainConfig(steps=90_000)
# The classroom schedule for the CLASSROOM preset (notebooks/07_training.ipynb explains each change).
CLASSROOM_TRAINING = TrainConfig(
    steps=900,  # about a minute on a quiet 2-core machine (lesson 07 prints the time on yours)
    batch_size=16,
    optimizer="adamw",
    lr=3e-3,
    weight_decay=1e-4,
    warmup_steps=50,
    warmup_factor=0.1,
    milestones=(650, 800),
    clip_grad_norm=10.0,
)
# torchvision's references/detection recipe for RetinaNet (26 epochs of COCO train2017, 117,266 images with
# boxes, 16 images per step over 8 GPUs, lr 0.01, /10 after epochs 16 and 22, warm-up from lr/1000 over
# 1000 iterations), in steps.
COCO_STEPS_PER_EPOCH = 117_266 // 16
TORCHVISION_TRAINING = TrainConfig(
    steps=26 * COCO_STEPS_PER_EPOCH,
    batch_size=16,
    lr=0.01,
    warmup_steps=1000,
    warmup_factor=1e-3,
    milestones=(16 * COCO_STEPS_PER_EPOCH, 22 * COCO_STEPS_PER_EPOCH),
)
CLASSROOM_TRAIN_IMAGES = 2000  # synthetic training images (cached after the first run)


def lr_factor(step: int, warmup_steps: int, warmup_factor: float, milestones: Sequence[int],
              drop: float = LR_DROP) -> float:
    """The learning rate of step `step` (0-based) as a multiple of the peak rate.

    Linear warm-up from `warmup_factor` to 1 over `warmup_steps`, times `drop` per milestone passed.
    """
    warmup = 1.0
    if step < warmup_steps:
        alpha = step / warmup_steps
        warmup = warmup_factor * (1 - alpha) + alpha
    return warmup * drop ** bisect_right(milestones, step)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper) or AdamW, over the trainable parameters."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(parameters, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then step schedule, stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.warmup_steps, config.warmup_factor, config.milestones))


# ----------------------------------------------------------------------------- batches


def _seed_for(*numbers: int) -> int:
    """A 63-bit seed from a tuple of integers (NumPy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint64)[0] >> np.uint64(1))


class BatchSampler:
    """Which images, and which of them flipped, make up step `step`: a pure function of (seed, step).

    The images are visited epoch after epoch, each epoch in its own seeded random order, so a
    resumed run draws exactly the batches the uninterrupted run would have drawn.
    """

    def __init__(self, num_images: int, batch_size: int, hflip_prob: float = 0.5, seed: int = 0) -> None:
        if num_images < 1:
            raise ValueError(f"num_images={num_images}: expected a non-empty dataset")
        self.num_images, self.batch_size, self.hflip_prob, self.seed = num_images, batch_size, hflip_prob, seed
        self._orders: dict[int, Tensor] = {}

    def order(self, epoch: int) -> Tensor:
        """The random order of the images in `epoch`: (num_images,)."""
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(_seed_for(self.seed, 0, epoch))
            self._orders = {epoch: torch.randperm(self.num_images, generator=generator)}  # keep one epoch
        return self._orders[epoch]

    def __call__(self, step: int) -> tuple[list[int], list[bool]]:
        positions = range(step * self.batch_size, (step + 1) * self.batch_size)
        indices = [int(self.order(p // self.num_images)[p % self.num_images]) for p in positions]
        generator = torch.Generator().manual_seed(_seed_for(self.seed, 1, step))
        flips = (torch.rand(self.batch_size, generator=generator) < self.hflip_prob).tolist()
        return indices, flips


def load_item(dataset, index: int, flip: bool) -> tuple[Tensor, dict]:
    """Image and target (`boxes`, `labels`) of `dataset[index]`, mirrored left to right if `flip`."""
    image, target = dataset[index]
    if flip:
        image, target = hflip(image, target)
    return image, {"boxes": target["boxes"], "labels": target["labels"]}


def load_batch(dataset, indices: Sequence[int], flips: Sequence[bool]) -> tuple[list[Tensor], list[dict]]:
    """Images and targets of `indices`, mirrored left to right where `flips` says so."""
    items = [load_item(dataset, index, flip) for index, flip in zip(indices, flips)]
    return [image for image, _ in items], [target for _, target in items]


class FlippedItems(torch.utils.data.Dataset):
    """`dataset` indexed by (index, flip) pairs: what a DataLoader's workers load for `StepBatches`."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, bool]) -> tuple[Tensor, dict]:
        return load_item(self.dataset, *item)


class StepBatches(torch.utils.data.Sampler):
    """A DataLoader's batch sampler: for each step in [start, until), this process's share of `sampler(step)`.

    The global batch of a step is cut into `world_size` equal, consecutive shares; process `rank` loads
    share `rank`. Which images and flips make up a step stays a pure function of (seed, step), however
    many workers load them and in whatever order they finish.
    """

    def __init__(self, sampler: BatchSampler, start: int, until: int, rank: int = 0, world_size: int = 1) -> None:
        if sampler.batch_size % world_size:
            raise ValueError(f"batch_size={sampler.batch_size}: expected a multiple of the number of processes "
                             f"({world_size}), so that each loads the same number of images")
        self.sampler, self.start, self.until, self.rank, self.world_size = sampler, start, until, rank, world_size

    def __len__(self) -> int:
        return max(self.until - self.start, 0)

    def __iter__(self):
        share = self.sampler.batch_size // self.world_size
        first = self.rank * share
        for step in range(self.start, self.until):
            indices, flips = self.sampler(step)
            yield list(zip(indices[first:first + share], flips[first:first + share]))


def step_loader(dataset, sampler: BatchSampler, start: int, until: int, workers: int = 0, rank: int = 0,
                world_size: int = 1) -> torch.utils.data.DataLoader:
    """Batches (images, targets) of steps start..until-1 for process `rank`, loaded by `workers` processes."""
    from .datasets import collate

    check_int("workers", workers, 0)
    return torch.utils.data.DataLoader(FlippedItems(dataset), batch_sampler=StepBatches(sampler, start, until, rank,
                                                                                        world_size),
                                       num_workers=workers, collate_fn=collate)


# ----------------------------------------------------------------------------- history


@dataclass
class History:
    """One entry per optimiser step: the two losses, their sum, the learning rate, the gradient norm."""

    step: list[int] = field(default_factory=list)
    classification: list[float] = field(default_factory=list)
    bbox_regression: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # process CPU time spent in fit (all threads together)
    wall_seconds: float = 0.0
    data_seconds: float = 0.0  # wall time the loop waited for its batches (part of wall_seconds)

    def append(self, step: int, losses: dict[str, float], lr: float, grad_norm: float) -> None:
        self.step.append(step)
        self.classification.append(losses["classification"])
        self.bbox_regression.append(losses["bbox_regression"])
        self.loss.append(losses["classification"] + losses["bbox_regression"])
        self.lr.append(lr)
        self.grad_norm.append(grad_norm)

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        return cls(**state)

    def __len__(self) -> int:
        return len(self.step)


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Running mean over the last `window` values (fewer at the start): the curve a reader can follow."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.arange(values.size) + 1 - counts]) / counts


def plot_history(history: History, axes=None, window: int = 20):
    """Draw the losses (raw and smoothed, log scale) and the learning rate; returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5), width_ratios=(3, 1.3), layout="constrained")
    loss_ax, lr_ax = axes
    loss_ax.clear()
    lr_ax.clear()
    for name, colour in (("classification", "tab:blue"), ("bbox_regression", "tab:orange"), ("loss", "black")):
        values = getattr(history, name)
        if values:
            loss_ax.plot(history.step, values, color=colour, alpha=0.25, linewidth=0.8)
            loss_ax.plot(history.step, smooth(values, window), color=colour, label=f"{name} (mean of {window})")
    loss_ax.set(xlabel="step", ylabel="training loss", yscale="log", title="Training loss")
    if history.loss:
        loss_ax.legend(loc="upper right")
    lr_ax.plot(history.step, history.lr, color="tab:green")
    lr_ax.set(xlabel="step", ylabel="learning rate", title="Schedule")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    return axes


class LiveLossPlot:
    """A callback that redraws `plot_history` in place in a notebook every `every` steps."""

    def __init__(self, every: int = 25, window: int = 20) -> None:
        import matplotlib.pyplot as plt

        self.every, self.window = every, window
        self.figure, self.axes = plt.subplots(1, 2, figsize=(10, 3.5), width_ratios=(3, 1.3), layout="constrained")
        plt.close(self.figure)  # shown through the display handle only, not again at the end of the cell
        self.handle = None

    def __call__(self, step: int, history: History) -> None:
        if (step + 1) % self.every == 0:
            self.draw(history)

    def draw(self, history: History) -> None:
        from IPython.display import display

        plot_history(history, self.axes, self.window)
        if self.handle is None:
            self.handle = display(self.figure, display_id=True)
        else:
            self.handle.update(self.figure)


# ----------------------------------------------------------------------------- checkpoints


# what save_checkpoint writes; a file without these keys is not a training checkpoint
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "step", "rng", "history", "train_config")
STATE_DICT_ADVICE = "load it with model.load_state_dict(torch.load(path, weights_only=True))"


def _model_config(model: nn.Module) -> dict | None:
    """The model's configuration as a plain dict, if it has one (`RetinaNet.config`)."""
    config = getattr(model, "config", None)
    return asdict(config) if is_dataclass(config) and not isinstance(config, type) else None


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, step: int, history: History,
                    config: TrainConfig) -> Path:
    """Write everything a resumed run needs, atomically: a crash mid-write never leaves a broken file.

    The bytes reach the disk (fsync) before the temporary file is renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,  # optimiser steps completed
        "rng": {"torch": torch.get_rng_state()},
        "history": history.state_dict(),
        "train_config": asdict(config),
    }
    model_config = _model_config(model)
    if model_config is not None:
        state["model_config"] = model_config
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
        if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _is_state_dict(state: object) -> bool:
    """A plain ``model.state_dict()``: a non-empty dict of tensors (the shipped detector is one)."""
    return isinstance(state, dict) and bool(state) and all(isinstance(v, Tensor) for v in state.values())


def _reason(error: Exception) -> str:
    """The telling line of torch.load's (often many-line) error."""
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [repr(error)]
    line = unpickler.group(1).strip() if unpickler else lines[0]
    return line if len(line) <= 160 else line[:157] + "..."


def read_checkpoint(path: str | Path) -> dict:
    """The dict `save_checkpoint` wrote to `path`, or one clear error saying what the file is instead."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise ValueError(f"checkpoint {path} is a folder; expected a file written by save_checkpoint")
    expected = "expected a training checkpoint written by save_checkpoint"
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes), perhaps from an interrupted copy; {expected}")
    try:
        with warnings.catch_warnings():  # torch warns about a foreign pickle before failing on it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"checkpoint {path} holds what torch.load(weights_only=True) refuses: objects other "
                         f"than tensors and plain containers, or a pickle not written by torch.save "
                         f"({_reason(error)}); {expected}") from error
    except Exception as error:  # torch.load fails on foreign bytes with whatever its parser meets first
        raise ValueError(f"checkpoint {path} cannot be read by torch.load: truncated, or not a PyTorch file "
                         f"({type(error).__name__}: {_reason(error)}); {expected}") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a training checkpoint; {expected}")
    if _is_state_dict(state):
        raise ValueError(f"checkpoint {path} is a model state dict ({len(state)} tensors), not a training "
                         f"checkpoint: {STATE_DICT_ADVICE}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise ValueError(f"checkpoint {path} is a dict without {missing} (its keys: {sorted(map(str, state))}); "
                         f"{expected}")
    if not isinstance(state["step"], int) or state["step"] < 0:
        raise ValueError(f"checkpoint {path} has step={state['step']!r}; expected a count of steps >= 0")
    return state


def _holds_state_dict(path: str | Path) -> bool:
    """Whether `path` holds a plain model state dict (an unreadable file is not one: it may be overwritten)."""
    try:
        return _is_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        return False


def _differences(saved: dict, given: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """'name: checkpoint a, given b' for every field that differs."""
    absent = "<absent>"
    return [f"{name}: checkpoint {saved.get(name, absent)!r}, given {given.get(name, absent)!r}"
            for name in [*given, *(n for n in saved if n not in given)]
            if name not in skip and saved.get(name, absent) != given.get(name, absent)]


def _check_compatible(state: dict, path: Path, model: nn.Module, config: TrainConfig | None) -> None:
    """Refuse a checkpoint of another model configuration, or (if `config` is given) another training one."""
    model_config = _model_config(model)
    if model_config is not None and "model_config" in state:
        differences = _differences(state["model_config"], model_config)
        if differences:
            raise ValueError(f"checkpoint {path} was trained with another model configuration; "
                             f"differing fields: {'; '.join(differences)}")
    if config is not None:
        # `steps` may grow: the schedule and the batches do not depend on it
        differences = _differences(state["train_config"], asdict(config), skip=("steps",))
        if differences:
            raise ValueError(f"checkpoint {path} was trained with another TrainConfig (resuming would mix two "
                             f"runs); differing fields: {'; '.join(differences)}. Start a new checkpoint file, "
                             f"or resume with the checkpoint's configuration.")


def _restore(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer | None,
             scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> tuple[int, History]:
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    return state["step"], History.from_state_dict(state["history"])


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    config: TrainConfig | None = None) -> tuple[int, History]:
    """Restore a checkpoint of `save_checkpoint` into fresh objects; returns (step, history).

    Raises `ValueError` naming the path for a file that is not such a checkpoint (empty, truncated, a
    plain model state dict, anything else), for a checkpoint of another model configuration, and, when
    `config` is given, for one trained with another `TrainConfig`. Nothing is changed before those checks.
    """
    state = read_checkpoint(path)
    _check_compatible(state, Path(path), model, config)
    return _restore(state, model, optimizer, scheduler)


# ----------------------------------------------------------------------------- mixed precision

AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def mixed_precision(amp: str, device: torch.device):
    """(autocast context factory, GradScaler or None) for `amp` in AMP_DTYPES on `device`.

    bfloat16 keeps float32's exponent range, so it trains without loss scaling (CPU and CUDA);
    float16 underflows small gradients to zero and needs a `torch.amp.GradScaler`, used on CUDA only.
    """
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp={amp!r}: expected one of {sorted(AMP_DTYPES)}")
    device = torch.device(device)
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device (float16 with a GradScaler), but training runs on "
                         f"{device.type!r}; on the CPU use amp='bf16'")
    dtype = AMP_DTYPES[amp]
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return (lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)), scaler


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the message names the step and the loss."""


# ----------------------------------------------------------------------------- the loop


def fit(model: nn.Module, dataset, config: TrainConfig, *, until: int | None = None,
        checkpoint: str | Path | None = None, checkpoint_every: int = 0, resume: bool = False,
        callbacks: Sequence[Callable[[int, History], None]] = (), progress: bool = True,
        amp: str = "off", workers: int = 0) -> History:
    """Train `model` on `dataset` (items `(image, target)`) as `config` says; returns the `History`.

    Args:
        until: stop after this many steps (default: ``config.steps``); the schedule still spans
            ``config.steps``, so a run stopped early and resumed equals an uninterrupted one.
        checkpoint: file for checkpoints, written every `checkpoint_every` steps (0: only at the
            end) and kept at the last good state when a loss turns non-finite.
        resume: continue from `checkpoint` (model, optimiser, schedule, step, RNG, history). The
            checkpoint must come from the same model configuration and the same `config` (only
            ``steps`` may differ) and stop at or before `until`; a checkpoint file that does not exist
            yet gives a warning, and training starts from step 0.
        callbacks: called as ``callback(step, history)`` after every step (e.g. `LiveLossPlot`).
        progress: show a tqdm progress bar.
        amp: mixed precision, "off", "bf16" (autocast to bfloat16, CPU or CUDA) or "fp16" (float16 with
            loss scaling, CUDA only); the losses are computed in float32 either way.
        workers: DataLoader worker processes loading the batches ahead (0: load in this process).

    Under torchrun (a process group is set up, see :mod:`retina_lessons.distributed`) each process trains
    on its share of every step's batch through DistributedDataParallel; only rank 0 shows progress, runs
    the callbacks and writes the checkpoint, and the history holds the global batch's losses.
    """
    from tqdm.auto import tqdm

    until = config.steps if until is None else until
    if not 0 <= until <= config.steps:
        raise ValueError(f"until={until}: expected 0 <= until <= config.steps ({config.steps})")
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    sampler = BatchSampler(len(dataset), config.batch_size, config.hflip_prob, config.seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    device = next(model.parameters()).device
    autocast, scaler = mixed_precision(amp, device)
    rank, world_size = rank_and_world_size()
    compute_losses = data_parallel_loss(model, device)  # model.loss, or its DistributedDataParallel form

    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every={checkpoint_every}: expected a number of steps >= 0 (0: only at the end)")
    if checkpoint is None and (resume or checkpoint_every):
        given = "resume=True" if resume else f"checkpoint_every={checkpoint_every}"
        raise ValueError(f"{given} needs checkpoint=, the file to {'resume from' if resume else 'write'}")

    start, history = 0, History()
    if resume and Path(checkpoint).exists():
        state = read_checkpoint(checkpoint)
        _check_compatible(state, Path(checkpoint), model, config)
        if until < state["step"]:
            raise ValueError(f"until={until} is below the {state['step']} steps already in checkpoint {checkpoint}; "
                             f"expected until >= {state['step']} (or a new checkpoint file)")
        start, history = _restore(state, model, optimizer, scheduler)
    else:
        if resume:
            warnings.warn(f"resume=True but checkpoint {checkpoint} does not exist yet: training starts from step 0",
                          stacklevel=2)
        elif checkpoint is not None and Path(checkpoint).is_file() and _holds_state_dict(checkpoint):
            raise ValueError(f"checkpoint {checkpoint} is a model state dict, not a training checkpoint; fit "
                             "would overwrite it: choose another checkpoint file")
        torch.manual_seed(config.seed)

    def save(step: int) -> None:
        if checkpoint is not None and rank == 0:
            save_checkpoint(checkpoint, model, optimizer, scheduler, step, history, config)

    def stop(step: int, buffers: list[Tensor], what: str, advice: str = "") -> None:
        """Keep the last good state (weights and BatchNorm statistics before this step) and raise."""
        with torch.no_grad():
            for buffer, kept in zip(model.buffers(), buffers):
                buffer.copy_(kept)
        save(step)
        where = f"; the last good state (after {step} steps) is in {checkpoint}" if checkpoint else ""
        raise NonFiniteLossError(f"step {step}: {what}{where}." + (f" {advice}" if advice else ""))

    model.train()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    cpu_before, wall_before = history.cpu_seconds, history.wall_seconds
    batches = iter(step_loader(dataset, sampler, start, until, workers, rank, world_size))
    bar = tqdm(range(start, until), initial=start, total=until, desc="training", disable=not progress or rank > 0)
    for step in bar:
        waited = time.perf_counter()
        images, targets = next(batches)
        history.data_seconds += time.perf_counter() - waited
        images = [image.to(device) for image in images]
        targets = [{k: v.to(device) for k, v in target.items()} for target in targets]
        # the forward pass updates BatchNorm's running statistics: keep them to restore on a bad step
        buffers = [b.clone() for b in model.buffers()]
        with autocast():
            losses = compute_losses(images, targets)
        logged = average_over_processes(losses)  # the global batch's losses, the same in every process
        for name, value in logged.items():
            if not torch.isfinite(value):
                stop(step, buffers, f"the {LOSS_NAMES.get(name, name)} loss is {value.item()}",
                     "Try a lower learning rate, a longer warm-up or gradient clipping.")
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
        else:  # float16: scale the loss up so small gradients survive, then unscale before clipping
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        max_norm = config.clip_grad_norm if config.clip_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        if not torch.isfinite(grad_norm) and scaler is None:  # (the scaler skips such a step and scales down)
            stop(step, buffers, f"the gradient norm is {grad_norm.item()} although both losses are finite")
        history.append(step, {k: v.item() for k, v in logged.items()}, scheduler.get_last_lr()[0], grad_norm.item())
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        history.cpu_seconds = cpu_before + time.process_time() - cpu_start
        history.wall_seconds = wall_before + time.perf_counter() - wall_start
        if progress and (step % 10 == 0 or step + 1 == until):
            bar.set_postfix(cls=f"{history.classification[-1]:.3f}", box=f"{history.bbox_regression[-1]:.3f}",
                            lr=f"{history.lr[-1]:.1e}")
        for callback in callbacks if rank == 0 else ():
            callback(step, history)
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < until:
            save(step + 1)
    bar.close()
    save(until)
    if world_size > 1:
        torch.distributed.barrier()  # the checkpoint is written before any process goes on
    model.eval()
    return history


# ----------------------------------------------------------------------------- evaluation, the shipped detector


@torch.no_grad()
def predict(model: nn.Module, dataset, batch_size: int = 50) -> tuple[list[dict], list[dict]]:
    """Detections and ground truth for every image of `dataset`, in order."""
    model.eval()
    device = next(model.parameters()).device
    detections, targets = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        found = model.detect([image.to(device) for image, _ in items])
        detections += [{k: v.cpu() for k, v in d.items()} for d in found]
        targets += [{"boxes": t["boxes"], "labels": t["labels"]} for _, t in items]
    return detections, targets


def evaluate(model: nn.Module, dataset, batch_size: int = 50) -> dict[str, float]:
    """COCO AP, AP50, ... of `model` on `dataset` (e.g. the held-out shapes)."""
    from .evaluation import coco_ap

    return coco_ap(*predict(model, dataset, batch_size))


def classroom_dataset(num_images: int = CLASSROOM_TRAIN_IMAGES):
    """The synthetic training split the classroom detector is trained on (cached after the first call)."""
    from .synthetic import cached_shapes_dataset

    return cached_shapes_dataset(num_images)


def new_classroom_model(seed: int = CLASSROOM_TRAINING.seed) -> nn.Module:
    """A freshly initialised CLASSROOM detector, the same on every machine for a given seed."""
    from .model import RetinaNet

    torch.manual_seed(seed)
    return RetinaNet(get_config("classroom"))
