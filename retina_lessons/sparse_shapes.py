"""Sparse scenes: one or two small shapes on a cluttered background, towards the imbalance of a dense detector.

The paper's argument (Section 3.2, Section 5.1) rests on the extreme foreground/background imbalance of
a dense detector on COCO: ~100k anchors per image, a handful of them positive, 80 classes, so about
52,800 negative (anchor, class) pairs per positive. The classroom shapes of :mod:`retina_lessons.synthetic`
(0-6 shapes of 12-100 pixels per 128-pixel image, 3 classes, 3 anchors per location) give only about 300,
which is why lesson 10's ablation could not separate the losses.

These scenes move the classroom task towards COCO's imbalance with the levers that cost no compute:

- **few, small objects**: 1 to `max_objects` shapes (default 2) of 10-28 pixels, so most anchors see
  background and the larger pyramid levels see almost nothing but background;
- **more classes**: all four shapes the generator draws (circle, triangle, square, cross);
- the same clutter as the classroom shapes (gradients, smooth noise, thin lines, soft blobs), drawn by
  the same code: these are the hard negatives.

More anchors per location (3 scales x 3 ratios, the paper's 9) come from the detector's configuration
(:data:`retina_lessons.table1.TABLE1_CONFIG`). Shapes never touch each other, so every box is fully visible.

The drawing reuses :mod:`retina_lessons.synthetic`'s building blocks (background, signed distances,
colour choice, blending), so a sparse scene's shapes and clutter look exactly like the classroom ones.
Image ``i`` is a pure function of ``(seed, split, i)``.

Used by ``retina_lessons.table1`` (Table 1 of the paper, lesson 10).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from . import synthetic
from .synthetic import SHAPE_NAMES, SPLIT_IDS

SPARSE_IMAGE_SIZE = 128
SPARSE_NUM_CLASSES = len(SHAPE_NAMES)  # every shape the generator draws
SPARSE_MAX_OBJECTS = 2
SPARSE_MIN_OBJECT_SIZE = 10.0  # longer side of a box, in pixels
SPARSE_MAX_OBJECT_SIZE = 28.0
SHAPE_GAP = 2.0  # pixels kept free between two shapes' boxes
SPARSE_STREAM = 7  # keeps these scenes' random streams apart from synthetic.py's images


def render_sparse_scene(index: int, seed: int = 0, split: str = "train", image_size: int = SPARSE_IMAGE_SIZE,
                        num_classes: int = SPARSE_NUM_CLASSES, max_objects: int = SPARSE_MAX_OBJECTS,
                        min_object_size: float = SPARSE_MIN_OBJECT_SIZE,
                        max_object_size: float = SPARSE_MAX_OBJECT_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw scene `index` of a split: 1..`max_objects` shapes of `min_object_size`..`max_object_size` pixels.

    Returns ``image`` uint8 (3, H, W), ``boxes`` float32 (M, 4) xyxy in pixels, ``labels`` int64 (M,) in
    [0, num_classes). A shape that finds no free place after a few tries is left out (M may be smaller).
    """
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {sorted(SPLIT_IDS)}")
    if not 1 <= num_classes <= len(SHAPE_NAMES):
        raise ValueError(f"num_classes={num_classes}: expected 1..{len(SHAPE_NAMES)}")
    if not 0 < min_object_size <= max_object_size < image_size:
        raise ValueError(f"min_object_size={min_object_size}, max_object_size={max_object_size}: expected "
                         f"0 < min_object_size <= max_object_size < image_size ({image_size})")
    if index < 0 or seed < 0 or max_objects < 1:
        raise ValueError(f"index={index}, seed={seed}, max_objects={max_objects}: expected index >= 0, seed >= 0, "
                         "max_objects >= 1")
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index, SPARSE_STREAM])
    size = image_size
    canvas = synthetic._background(rng, size)  # (3, H, W) float32
    x, y = synthetic._grid(size)
    boxes, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(num_classes))
        object_size = math.exp(float(rng.uniform(math.log(min_object_size), math.log(max_object_size))))
        sdf, box_w, box_h = synthetic._shape_geometry(rng, label, object_size)
        for _ in range(synthetic.PLACEMENT_TRIES):
            cx = float(rng.uniform(box_w / 2, size - box_w / 2))
            cy = float(rng.uniform(box_h / 2, size - box_h / 2))
            box = (cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2)
            if all(box[2] + SHAPE_GAP < b[0] or b[2] + SHAPE_GAP < box[0] or box[3] + SHAPE_GAP < b[1]
                   or b[3] + SHAPE_GAP < box[1] for b in boxes):
                break
        else:
            continue
        rows, cols = synthetic._window(*box, size)
        alpha = np.clip(sdf(x[:, cols] - cx, y[rows] - cy) + 0.5, 0, 1, dtype=np.float32)  # (h, w) coverage
        under = (canvas[:, rows, cols] * alpha).sum((1, 2)) / alpha.sum()  # (3,)
        synthetic._blend(canvas[:, rows, cols], alpha, synthetic._pick_colour(rng, under)[:, None, None])
        boxes.append(box)
        labels.append(label)
    image = np.rint(np.clip(canvas, 0, 1) * 255).astype(np.uint8)  # (3, H, W)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def sparse_scenes(num_images: int, split: str = "train", seed: int = 0, first: int = 0,
                  **options) -> tuple[Tensor, list, list]:
    """Scenes `first`..`first` + `num_images` - 1 of a split: images float32 (N, 3, H, W) in [0, 1], boxes and
    labels per image.

    `options` are passed to :func:`render_sparse_scene` (image size, classes, objects and their sizes).
    """
    items = [render_sparse_scene(i, seed, split, **options) for i in range(first, first + num_images)]
    images = torch.from_numpy(np.stack([image for image, _, _ in items])).float() / 255  # (N, 3, H, W)
    return images, [torch.from_numpy(b) for _, b, _ in items], [torch.from_numpy(lab) for _, _, lab in items]
