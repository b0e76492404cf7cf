"""A backbone pretrained on a neutral task: classifying shape crops with plain cross-entropy.

The paper's detectors start from a ResNet pretrained on ImageNet classification (Section 4.1,
"Initialization"): a task that favours neither the focal loss nor cross-entropy, so every row of
Table 1 trains its detection head from the same, neutral features. The classroom has no ImageNet
weights, and the shipped classroom detector's features were learned with the focal loss (γ = 2,
α = .25), which would favour that row. This module makes the classroom's stand-in for ImageNet:

- **the task**: 32 x 32 windows cut at native scale from sparse scenes (:mod:`retina_lessons.sparse_shapes`,
  split ``"test"``, never used for detection), centred on a shape (label: its kind) or on background
  (label: K, "no shape"); a softmax over K + 1 classes, plain cross-entropy. This project's choice.
- **the network**: the ``CLASSROOM`` preset's ResNet-18 of width 0.25 with BatchNorm, global average
  pooling of C5 and one linear layer, trained with AdamW and a cosine schedule, left-right flips.

The trained backbone is shipped as ``data/neutral_backbone.pt`` (its provenance in ``data/README.md``)
and loaded frozen (``FrozenBatchNorm2d``, as any pretrained backbone) by :mod:`retina_lessons.table1`.

Rebuild it (about 30 CPU seconds)::

    uv run python -m retina_lessons.neutral_backbone
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbone import ResNetTaps
from .config import IMAGENET_MEAN, IMAGENET_STD
from .shipped import DATA_DIR
from .sparse_shapes import SPARSE_NUM_CLASSES, sparse_scenes
from .transform import normalize

NEUTRAL_BACKBONE = DATA_DIR / "neutral_backbone.pt"
CROP_SIZE = 32  # pixels: every object of a sparse scene (at most 28 pixels) fits whole
CROP_JITTER = 3.0  # pixels a shape's crop centre may move off the shape's centre
BACKGROUND_CROPS_PER_IMAGE = 2
BACKGROUND_MARGIN = 4  # pixels a background crop may overlap a box by
PRETRAIN_IMAGES = 1500
PRETRAIN_SPLIT = "test"  # the detection experiment trains on "train" and evaluates on "val"
PRETRAIN_STEPS = 600
PRETRAIN_BATCH = 128
PRETRAIN_LR = 3e-3
BACKBONE = ("resnet18", 0.25)  # the CLASSROOM preset's backbone and width


def shape_crops(images: Tensor, boxes: list[Tensor], labels: list[Tensor], num_classes: int,
                seed: int = 0) -> tuple[Tensor, Tensor]:
    """Native-scale crops: one per shape (its label) and `BACKGROUND_CROPS_PER_IMAGE` of background (label K).

    images (N, 3, H, W) -> crops (C, 3, CROP_SIZE, CROP_SIZE), classes (C,) in [0, num_classes].
    """
    rng = np.random.default_rng(seed)
    _, _, H, W = images.shape
    crops, classes = [], []

    def cut(image: Tensor, x0: float, y0: float) -> Tensor:
        x0 = int(min(max(round(x0), 0), W - CROP_SIZE))
        y0 = int(min(max(round(y0), 0), H - CROP_SIZE))
        return image[:, y0:y0 + CROP_SIZE, x0:x0 + CROP_SIZE]

    for image, image_boxes, image_labels in zip(images, boxes, labels):
        for (x1, y1, x2, y2), label in zip(image_boxes.tolist(), image_labels.tolist()):
            cx = (x1 + x2) / 2 + rng.uniform(-CROP_JITTER, CROP_JITTER)
            cy = (y1 + y2) / 2 + rng.uniform(-CROP_JITTER, CROP_JITTER)
            crops.append(cut(image, cx - CROP_SIZE / 2, cy - CROP_SIZE / 2))
            classes.append(label)
        for _ in range(BACKGROUND_CROPS_PER_IMAGE):
            for _ in range(20):  # tries to find a window clear of every shape
                x0, y0 = int(rng.integers(0, W - CROP_SIZE + 1)), int(rng.integers(0, H - CROP_SIZE + 1))
                m = BACKGROUND_MARGIN
                if all(x2 <= x0 + m or x1 >= x0 + CROP_SIZE - m or y2 <= y0 + m or y1 >= y0 + CROP_SIZE - m
                       for x1, y1, x2, y2 in image_boxes.tolist()):
                    crops.append(cut(image, x0, y0))
                    classes.append(num_classes)
                    break
    return torch.stack(crops), torch.tensor(classes)


def new_backbone(norm: str = "bn") -> ResNetTaps:
    """The classroom's ResNet-18 of width 0.25 (BatchNorm to pretrain it, ``frozen_bn`` to use it)."""
    name, width = BACKBONE
    return ResNetTaps(name, norm, trainable_layers=5 if norm == "bn" else 0, width=width)


def pretrain(crops: Tensor, classes: Tensor, steps: int = PRETRAIN_STEPS, batch_size: int = PRETRAIN_BATCH,
             lr: float = PRETRAIN_LR, seed: int = 0, log=None) -> tuple[ResNetTaps, nn.Linear]:
    """Train a fresh backbone and a linear classifier on `crops` with softmax cross-entropy.

    Returns the backbone (BatchNorm statistics included) and the classifier.
    """
    torch.manual_seed(seed)
    backbone = new_backbone("bn")
    classifier = nn.Linear(backbone.out_channels[-1], int(classes.max()) + 1)
    parameters = [*backbone.parameters(), *classifier.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    inputs = normalize(crops, IMAGENET_MEAN, IMAGENET_STD)  # as the detector normalises its images
    backbone.train()
    for step in range(steps):
        idx = torch.randint(len(classes), (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], inputs[idx].flip(-1), inputs[idx])  # (B, 3, S, S)
        logits = classifier(backbone(x)[-1].mean((2, 3)))  # C5 pooled: (B, K + 1)
        loss = F.cross_entropy(logits, classes[idx])
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log is not None and step % 100 == 0:
            log(f"step {step}: loss {loss.item():.3f}, batch accuracy "
                f"{(logits.argmax(1) == classes[idx]).float().mean().item():.2f}")
    backbone.eval()
    return backbone, classifier


def load_neutral_backbone(path: str | Path = NEUTRAL_BACKBONE) -> ResNetTaps:
    """The shipped neutral backbone, frozen: ``FrozenBatchNorm2d`` and no trainable parameter."""
    backbone = new_backbone("frozen_bn")
    backbone.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return backbone.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(NEUTRAL_BACKBONE.name),
                        help=f"where to save the weights (default ./{NEUTRAL_BACKBONE.name}; the shipped file is data/{NEUTRAL_BACKBONE.name})")
    parser.add_argument("--steps", type=int, default=PRETRAIN_STEPS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: expected at least 1 training step")
    if not args.out.resolve().parent.is_dir():
        parser.error(f"--out {args.out}: its folder does not exist; expected a file in an existing folder")
    torch.set_num_threads(1)  # one thread: the same weights on every machine
    scenes = sparse_scenes(PRETRAIN_IMAGES, PRETRAIN_SPLIT)
    crops, classes = shape_crops(*scenes, SPARSE_NUM_CLASSES)
    print(f"{len(classes)} crops, per class {torch.bincount(classes).tolist()}")
    backbone, _ = pretrain(crops, classes, steps=args.steps, log=print)
    torch.save(backbone.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
