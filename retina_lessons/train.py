"""The training command: any preset, any data set, one process or many (torchrun), float32 or mixed precision.

    python -m retina_lessons.train --preset classroom --data shapes --out runs/classroom
    python -m retina_lessons.train --preset classroom --data folder --images DIR --annotations FILE.json --out DIR
    torchrun --nproc-per-node 2 -m retina_lessons.train --preset classroom --steps 16 --batch-size 8 --out DIR

Every run writes to ``--out``: ``model.pt`` (the model's state dict, for
``model.load_state_dict(torch.load(path, weights_only=True))``), ``checkpoint.pt`` (what ``--resume``
needs), ``metrics.json`` (COCO AP, AP50, AP75, ... on the held-out images) and ``log.jsonl`` (one line
per step, and one per evaluation). ``--preset`` chooses the model and its training recipe
(``CLASSROOM_TRAINING``, ``PAPER_TRAINING``, ``TORCHVISION_TRAINING``); ``--steps``, ``--batch-size``
(the global batch, split over the processes), ``--lr`` and ``--seed`` override the recipe. The number of
classes comes from the data.

The shipped detector ``data/classroom_detector.pt`` is made by::

    python -m retina_lessons.train --preset classroom --data shapes --threads 1 --out runs/classroom \\
        --save-model data/classroom_detector.pt

Taught in ``notebooks/07_training.ipynb`` (the loop) and ``notebooks/11_scaling_up.ipynb`` (this command).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from . import distributed
from .config import get_config
from .training import (
    AMP_DTYPES,
    CLASSROOM_TRAIN_IMAGES,
    CLASSROOM_TRAINING,
    PAPER_TRAINING,
    TORCHVISION_TRAINING,
    TrainConfig,
    evaluate,
    fit,
)

RECIPES = {
    "classroom": CLASSROOM_TRAINING,
    "paper": PAPER_TRAINING,
    "torchvision_v1": TORCHVISION_TRAINING,
    "torchvision_v2": TORCHVISION_TRAINING,
}
DATA = ("shapes", "coco", "voc", "folder")
OUTPUTS = ("model.pt", "checkpoint.pt", "metrics.json", "log.jsonl")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive, finite number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m retina_lessons.train", description=__doc__.split("\n")[0])
    recipe = parser.add_argument_group("model and recipe")
    recipe.add_argument("--preset", default="classroom", choices=sorted(RECIPES),
                        help="model preset and its training recipe (default: classroom)")
    recipe.add_argument("--steps", type=_positive_int, help="optimiser steps (default: the recipe's)")
    recipe.add_argument("--batch-size", type=_positive_int,
                        help="global batch: images per step over all processes (default: the recipe's)")
    recipe.add_argument("--lr", type=_positive_float, help="peak learning rate (default: the recipe's)")
    recipe.add_argument("--seed", type=_count, help="seeds the weights, batch order and flips (default: the recipe's)")
    data = parser.add_argument_group("data")
    data.add_argument("--data", default="shapes", choices=DATA, help="data set (default: the synthetic shapes)")
    data.add_argument("--data-root", type=Path, help="folder holding COCO 2017 or VOC 2007 in their standard "
                      "layouts (default: $RETINA_LESSONS_DATA, else ~/data)")
    data.add_argument("--images", type=Path, help="--data folder: the images' folder")
    data.add_argument("--annotations", type=Path, help="--data folder: their COCO-format annotation file")
    data.add_argument("--val-images", type=Path, help="held-out images' folder (--data folder)")
    data.add_argument("--val-annotations", type=Path, help="held-out COCO-format annotation file (--data folder)")
    run = parser.add_argument_group("run")
    run.add_argument("--out", type=Path, required=True, help="folder for model.pt, checkpoint.pt, metrics.json, log.jsonl")
    run.add_argument("--save-model", type=Path, help="also write the model's state dict to this file")
    run.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    run.add_argument("--until", type=_count, help="stop after this step (the schedule still spans --steps)")
    run.add_argument("--eval-every", type=_count, default=0, help="evaluate on the held-out images every N steps")
    run.add_argument("--workers", type=_count, default=0, help="DataLoader worker processes (default: 0)")
    run.add_argument("--amp", default="off", choices=sorted(AMP_DTYPES), help="mixed precision (fp16: CUDA only)")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--threads", type=_positive_int, help="torch CPU threads per process (default: torch's)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    # float64 weights and images: to check that runs differing only in rounding (1 vs N processes) agree
    run.add_argument("--float64", action="store_true", help=argparse.SUPPRESS)
    return parser


# ----------------------------------------------------------------------------- data


def _missing_root(name: str, root: Path, missing: Path) -> FileNotFoundError:
    from .datasets import download_instructions

    return FileNotFoundError(f"--data {name}: {missing} does not exist.\n{download_instructions(name, root)}")


def load_data(args) -> tuple[object, object | None, list[str]]:
    """(training set, held-out set or None, class names) for ``--data``; nothing is downloaded."""
    from .datasets import CocoDetection, VocDetection, default_data_root

    if args.data != "folder" and (args.images or args.annotations):
        raise ValueError(f"--images / --annotations: only for --data folder (got --data {args.data})")
    if args.data == "shapes":
        from .shipped import heldout_shapes
        from .synthetic import CLASS_NAMES, cached_shapes_dataset

        return cached_shapes_dataset(CLASSROOM_TRAIN_IMAGES), heldout_shapes(), list(CLASS_NAMES)
    if args.data == "folder":
        if args.images is None or args.annotations is None:
            raise ValueError("--data folder needs --images DIR and --annotations FILE.json (COCO format)")
        for flag, path in (("--images", args.images), ("--annotations", args.annotations)):
            if not path.exists():
                raise FileNotFoundError(f"{flag} {path} does not exist")
        train = CocoDetection(args.images, args.annotations)
        heldout = None
        if (args.val_images is None) != (args.val_annotations is None):
            raise ValueError("--val-images and --val-annotations go together")
        if args.val_images is not None:
            heldout = CocoDetection(args.val_images, args.val_annotations)
            if heldout.class_names != train.class_names:
                raise ValueError(f"--val-annotations: categories {heldout.class_names} differ from the training "
                                 f"set's {train.class_names}")
        return train, heldout, list(train.class_names)
    root = args.data_root or default_data_root()
    if args.data == "coco":
        for needed in (root / "annotations" / "instances_train2017.json", root / "train2017",
                       root / "annotations" / "instances_val2017.json", root / "val2017"):
            if not needed.exists():
                raise _missing_root("coco", root, needed)
        train = CocoDetection(root / "train2017", root / "annotations" / "instances_train2017.json")
        heldout = CocoDetection(root / "val2017", root / "annotations" / "instances_val2017.json")
        return train, heldout, list(train.class_names)
    voc = root / "VOCdevkit" / "VOC2007"
    for needed in (voc / "ImageSets" / "Main" / "trainval.txt", voc / "ImageSets" / "Main" / "test.txt"):
        if not needed.exists():
            raise _missing_root("voc", root, needed)
    train, heldout = VocDetection(voc, "trainval"), VocDetection(voc, "test")
    return train, heldout, list(train.class_names)


# ----------------------------------------------------------------------------- outputs


def _write_atomically(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model: torch.nn.Module, path: Path) -> None:
    """The model's state dict, on the CPU, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _write_atomically(path, lambda tmp: torch.save(state, tmp))


class StepLog:
    """A `fit` callback appending one JSON line per step to ``log.jsonl`` (and evaluations every N steps)."""

    def __init__(self, path: Path, start: int, evaluate_every: int = 0, model=None, heldout=None) -> None:
        self.path, self.evaluate_every, self.model, self.heldout = path, evaluate_every, model, heldout
        kept = []
        if path.exists():  # a resumed run: keep the lines of the steps the checkpoint holds
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] < start]
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, entry: dict) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(entry) + "\n")

    def __call__(self, step: int, history) -> None:
        self.write({"step": step, "classification": history.classification[-1],
                    "bbox_regression": history.bbox_regression[-1], "loss": history.loss[-1], "lr": history.lr[-1],
                    "grad_norm": history.grad_norm[-1], "wall_seconds": round(history.wall_seconds, 3),
                    "data_seconds": round(history.data_seconds, 3)})
        if self.evaluate_every and self.heldout is not None and (step + 1) % self.evaluate_every == 0:
            metrics = evaluate(self.model, self.heldout)
            self.model.train()
            self.write({"step": step, "heldout": {k: round(v, 4) for k, v in metrics.items()}})


# ----------------------------------------------------------------------------- the command


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device here; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_config(args) -> TrainConfig:
    """The preset's recipe with the command line's overrides."""
    recipe = RECIPES[args.preset]
    changes = {name: getattr(args, name) for name in ("steps", "batch_size", "lr", "seed")
               if getattr(args, name) is not None}
    try:
        return replace(recipe, **changes)
    except ValueError as error:
        name = str(error).split("=", 1)[0]
        raise ValueError(f"--{name.replace('_', '-')}: {error}") from error


def run(argv: list[str] | None = None) -> dict:
    """Parse `argv`, train, write the outputs; returns the held-out metrics (empty without a held-out set)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config = train_config(args)
    if args.until is not None and args.until > config.steps:
        parser.error(f"argument --until: {args.until} is beyond --steps ({config.steps})")
    device = _device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device, rank, world_size = distributed.setup(device)
    try:
        return _train(args, config, device, rank, world_size)
    finally:
        distributed.teardown()


def _train(args, config: TrainConfig, device: torch.device, rank: int, world_size: int) -> dict:
    if config.batch_size % world_size:
        raise ValueError(f"--batch-size {config.batch_size}: expected a multiple of the number of processes "
                         f"({world_size}), so that each takes the same number of images")

    train_set, heldout, class_names = load_data(args)
    from .model import RetinaNet

    model_config = get_config(args.preset, num_classes=len(class_names))
    torch.manual_seed(config.seed)  # the initial weights: the same on every machine for a given seed
    model = RetinaNet(model_config).to(device, torch.float64 if args.float64 else None)
    if world_size > 1:  # BatchNorm layers that train see the global batch's statistics
        distributed.synchronise_batchnorm(model, device)

    out = args.out
    checkpoint = out / "checkpoint.pt"
    if not args.resume and checkpoint.exists():
        raise FileExistsError(f"--out {out} already holds a checkpoint.pt: add --resume to continue it, or choose "
                              f"another --out")
    if args.resume and not checkpoint.exists():
        raise FileNotFoundError(f"--resume: {checkpoint} does not exist (nothing to continue)")
    if world_size > 1:
        torch.distributed.barrier()  # every process has looked for the checkpoint before rank 0 writes one
    out.mkdir(parents=True, exist_ok=True)
    start = 0
    if args.resume:
        from .training import read_checkpoint

        start = read_checkpoint(checkpoint)["step"]
    log = StepLog(out / "log.jsonl", start, args.eval_every, model, heldout) if rank == 0 else None
    history = fit(model, train_set, config, until=args.until, checkpoint=checkpoint, resume=args.resume,
                  callbacks=[log] if log else [], progress=not args.no_progress, amp=args.amp, workers=args.workers)
    if rank > 0:  # rank 0 alone writes the files and evaluates
        return {}
    save_model(model, out / "model.pt")
    if args.save_model is not None:
        save_model(model, args.save_model)
    metrics = evaluate(model, heldout) if heldout is not None else {}
    summary = {"preset": args.preset, "data": args.data, "class_names": class_names,
               "steps": history.step[-1] + 1 if history.step else start, "heldout_images": len(heldout or []),
               **metrics}
    _write_atomically(out / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
    if not args.no_progress:
        shown = f"held-out AP50 {metrics['AP50']:.3f}, AP {metrics['AP']:.3f}" if metrics else "no held-out set"
        print(f"{summary['steps']} steps in {history.wall_seconds:.0f} s ({history.data_seconds:.1f} s waiting for "
              f"data); {shown}; wrote {out}")
    return metrics


def main(argv: list[str] | None = None) -> None:
    try:
        run(argv)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
