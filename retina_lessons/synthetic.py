"""A synthetic detection dataset: coloured shapes on cluttered backgrounds.

RetinaNet is trained on COCO (paper Section 5), which no CPU classroom can afford. The
lessons train on images drawn here instead: each holds 0-6 shapes of a few classes with
distinct geometry (circle, triangle, square; a cross as an optional fourth class), of
random colour and a size from ~10 % to ~80 % of the image side, so that every pyramid
level P3-P7 sees objects of its own scale. Backgrounds carry gradients, smooth noise,
thin lines and soft blobs that are not objects, and shapes may overlap a little (at most 5 % of a
shape hidden). Overlaps and clutter are what make the task hard: with up to 30 % hidden and opaque
lines, the classroom detector needed about twice the training steps for the same AP.

Image ``i`` is a pure function of ``(seed, split, i)``: its random generator is seeded
from those three numbers, so any subset in any order gives the same pixels and boxes,
on every machine (a vectorised maths library may at most move a rare pixel by one level).
Images are quantised to uint8, so an image rendered on the fly equals the one read back
from the cache or from the PNGs of the held-out split.

Boxes are float ``xyxy`` in pixels, tight around the whole shape (also where a later
shape covers part of it; every shape keeps at least ``MIN_VISIBLE`` of its area visible).

Taught by ``notebooks/07_training.ipynb``, which trains on :func:`cached_shapes_dataset`
and evaluates on the committed held-out split ``data/shapes_val`` (COCO format).

Command line::

    python -m retina_lessons.synthetic heldout           # rewrite data/shapes_val
    python -m retina_lessons.synthetic cache -n 2000     # pre-build the training cache
    python -m retina_lessons.synthetic speed -n 2000     # time the drawing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pickle
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .datasets import collate
from .shipped import HELDOUT_DIR

__all__ = [
    "CLASS_NAMES",
    "SHAPE_NAMES",
    "ShapesDataset",
    "cached_shapes_dataset",
    "collate",
    "default_cache_dir",
    "generate_shapes",
    "render_shapes_image",
    "write_coco_split",
]

# Every shape the generator can draw; a dataset with K classes uses the first K.
SHAPE_NAMES = ("circle", "triangle", "square", "cross")
DEFAULT_NUM_CLASSES = 3
CLASS_NAMES = SHAPE_NAMES[:DEFAULT_NUM_CLASSES]

DEFAULT_IMAGE_SIZE = 128
# Object size (the longer side of its box) for a 128-px image; scaled with the image.
MIN_OBJECT_SIZE = 12.0
MAX_OBJECT_SIZE = 100.0
MAX_OBJECTS = 6
EMPTY_FRACTION = 0.07  # share of images drawn with no object at all
MIN_VISIBLE = 0.95  # a shape keeps at least this share of its area uncovered
MIN_CONTRAST = 0.45  # RGB distance between a shape and what lies under it
PLACEMENT_TRIES = 12
CROSS_THICKNESS = 0.34  # arm width of a cross, as a share of its size
MAX_LINES = 2  # thin lines across the background: 0 to MAX_LINES per image
LINE_OPACITY = 0.6  # how strongly a line covers the background (1: fully)

# Each split has its own random streams, so train and val never share an image.
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}

# The committed held-out split (data/shapes_val), evaluated by the training lesson.
HELDOUT_SEED = 2017
HELDOUT_SPLIT = "val"
HELDOUT_NUM_IMAGES = 150

# Bump when the drawing changes, so that stale caches are not reused.
GENERATOR_VERSION = 2


# ----------------------------------------------------------------------------- drawing


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: pixel (row i, column j) covers [j, j+1] x [i, i+1]."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    return centres[None, :], centres[:, None]  # x (1, W), y (H, 1)


def _blend(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """In place: canvas = (1 - alpha) * canvas + alpha * colour.

    canvas (3, h, w), alpha (h, w), colour (3, 1, 1) or (3, h, w).
    """
    canvas += alpha * (colour - canvas)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Gaussian noise on a (cells+1)^2 grid, bilinearly upsampled to (3, size, size)."""
    coarse = rng.standard_normal((3, cells + 1, cells + 1), dtype=np.float32)
    u = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(cells / size)
    i0 = np.minimum(u.astype(np.int64), cells - 1)
    f = u - i0.astype(np.float32)  # (size,) position between grid points i0 and i0 + 1
    rows = coarse[:, i0] * (1 - f)[:, None] + coarse[:, i0 + 1] * f[:, None]  # (3, size, cells+1)
    return rows[:, :, i0] * (1 - f) + rows[:, :, i0 + 1] * f  # (3, size, size)


def _window(x1: float, y1: float, x2: float, y2: float, size: int) -> tuple[slice, slice]:
    """Rows and columns of the pixels that touch the box (x1, y1, x2, y2), plus one."""
    c0, r0 = max(math.floor(x1) - 1, 0), max(math.floor(y1) - 1, 0)
    c1, r1 = min(math.ceil(x2) + 1, size), min(math.ceil(y2) + 1, size)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gradient + two octaves of smooth noise + lines and soft blobs: (3, size, size)."""
    x, y = _grid(size)
    start, end = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
    angle = float(rng.uniform(0, 2 * math.pi))
    t = x * math.cos(angle) + y * math.sin(angle)  # (H, W)
    t = (t - t.min()) / (t.max() - t.min())  # 0 at one corner, 1 at the opposite one
    canvas = start[:, None, None] + (end - start)[:, None, None] * t  # (3, H, W)
    canvas += float(rng.uniform(0.03, 0.10)) * _smooth_noise(rng, size, 4)
    canvas += float(rng.uniform(0.02, 0.06)) * _smooth_noise(rng, size, 16)

    for _ in range(int(rng.integers(0, MAX_LINES + 1))):  # thin lines across the image
        px, py, qx, qy = rng.uniform(0, size, 4).tolist()
        half_width = float(rng.uniform(0.5, 1.5))
        rows, cols = _window(
            min(px, qx) - 2, min(py, qy) - 2, max(px, qx) + 2, max(py, qy) + 2, size
        )
        lx, ly = x[:, cols] - px, y[rows] - py
        dx, dy = qx - px, qy - py
        s = np.clip((lx * dx + ly * dy) / (dx * dx + dy * dy + 1e-6), 0, 1)
        dist = np.sqrt((lx - s * dx) ** 2 + (ly - s * dy) ** 2)
        colour = rng.random(3, dtype=np.float32)
        _blend(canvas[:, rows, cols], LINE_OPACITY * np.clip(half_width + 0.5 - dist, 0, 1),
               colour[:, None, None])
    for _ in range(int(rng.integers(0, 3))):  # soft blobs: no edge, so never mistaken for a shape
        cx, cy = rng.uniform(0, size, 2).tolist()
        sigma = float(rng.uniform(0.04, 0.15)) * size
        strength = float(rng.uniform(0.2, 0.5))
        rows, cols = _window(cx - 3 * sigma, cy - 3 * sigma, cx + 3 * sigma, cy + 3 * sigma, size)
        alpha = strength * np.exp(
            ((x[:, cols] - cx) ** 2 + (y[rows] - cy) ** 2) * (-0.5 / sigma**2)
        )
        _blend(canvas[:, rows, cols], alpha, rng.random((3, 1, 1), dtype=np.float32))
    return canvas


def _shape_geometry(
    rng: np.random.Generator, label: int, size: float
) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], float, float]:
    """Signed distance (positive inside, in pixels) of a shape centred at the origin.

    Returns (sdf(x, y), box width, box height); the box is tight and centred on the origin.
    """
    name = SHAPE_NAMES[label]
    if name == "circle":
        r = size / 2
        return (lambda x, y: r - np.sqrt(x * x + y * y)), size, size
    if name == "square":  # a square-ish rectangle, axis aligned
        aspect = math.exp(float(rng.uniform(-0.3, 0.3)))
        hw, hh = size / 2 * min(1, aspect), size / 2 * min(1, 1 / aspect)
        return (lambda x, y: np.minimum(hw - np.abs(x), hh - np.abs(y))), 2 * hw, 2 * hh
    if name == "cross":
        h, t = size / 2, size / 2 * CROSS_THICKNESS
        return (
            lambda x, y: np.maximum(
                np.minimum(h - np.abs(x), t - np.abs(y)), np.minimum(t - np.abs(x), h - np.abs(y))
            ),
            size,
            size,
        )
    # triangle: equilateral on a circle, randomly turned, then rescaled so its box side = size
    turn = float(rng.uniform(0, 2 * math.pi))
    corners = [
        (math.cos(turn + k * 2 * math.pi / 3), math.sin(turn + k * 2 * math.pi / 3))
        for k in range(3)
    ]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    scale = size / max(max(xs) - min(xs), max(ys) - min(ys))
    ox, oy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2  # centre the box on the origin
    corners = [((cx - ox) * scale, (cy - oy) * scale) for cx, cy in corners]
    edges = []
    for k in range(3):  # inward unit normal n and offset c per edge: inside where n.p + c > 0
        (ax, ay), (bx, by) = corners[k], corners[(k + 1) % 3]
        length = math.hypot(bx - ax, by - ay)
        nx, ny = -(by - ay) / length, (bx - ax) / length  # corners run counter-clockwise
        edges.append((nx, ny, -(nx * ax + ny * ay)))

    def triangle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.minimum.reduce([nx * x + ny * y + c for nx, ny, c in edges])

    return triangle, scale * (max(xs) - min(xs)), scale * (max(ys) - min(ys))


def _pick_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random colour far (in RGB) from `under`, the mean colour the shape will cover."""
    candidates = rng.random((8, 3), dtype=np.float32)
    distance = np.linalg.norm(candidates - under, axis=1)
    good = np.flatnonzero(distance >= MIN_CONTRAST)
    return candidates[good[0] if good.size else distance.argmax()]


def render_shapes_image(
    index: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str = "train",
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw image `index` of a split.

    Returns:
        image: uint8 (3, H, W)
        boxes: float32 (M, 4) xyxy in pixels, 0 <= x1 < x2 <= W
        labels: int64 (M,) in [0, num_classes)
    """
    _check_args(image_size, seed, split, num_classes)
    if index < 0:
        raise ValueError(f"index={index} must be >= 0")
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    size = image_size
    canvas = _background(rng, size)  # (3, H, W) float32
    x, y = _grid(size)

    num_wanted = 0 if rng.random() < EMPTY_FRACTION else int(rng.integers(1, MAX_OBJECTS + 1))
    scale = size / DEFAULT_IMAGE_SIZE
    log_min, log_max = math.log(MIN_OBJECT_SIZE * scale), math.log(MAX_OBJECT_SIZE * scale)
    boxes, labels = [], []
    visible, num_visible, areas = [], [], []  # per shape: uncovered share (H, W), its sum, area
    for _ in range(num_wanted):
        label = int(rng.integers(num_classes))
        object_size = math.exp(float(rng.uniform(log_min, log_max)))
        sdf, box_w, box_h = _shape_geometry(rng, label, object_size)
        for _ in range(PLACEMENT_TRIES):
            cx = float(rng.uniform(box_w / 2, size - box_w / 2))
            cy = float(rng.uniform(box_h / 2, size - box_h / 2))
            box = (cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2)
            window = rows, cols = _window(*box, size)
            # coverage of each pixel, anti-aliased over one pixel: (h, w) in [0, 1]
            alpha = np.clip(sdf(x[:, cols] - cx, y[rows] - cy) + 0.5, 0, 1, dtype=np.float32)
            covered = [(v[window] * alpha).sum() for v in visible]
            if all(
                n - c >= MIN_VISIBLE * a
                for n, c, a in zip(num_visible, covered, areas, strict=True)
            ):
                break
        else:
            continue  # no room left for this shape: the image gets fewer objects
        under = (canvas[:, rows, cols] * alpha).sum((1, 2)) / alpha.sum()  # (3,)
        colour = _pick_colour(rng, under)[:, None, None]  # (3, 1, 1)
        # a gentle shading across the shape, so that it is not a flat patch
        shade = 1 + float(rng.uniform(-0.15, 0.15)) * (x[:, cols] - cx) / box_w  # (1, w)
        _blend(canvas[:, rows, cols], alpha, np.clip(colour * shade, 0, 1))
        for v in visible:
            v[window] *= 1 - alpha
        num_visible = [n - c for n, c in zip(num_visible, covered, strict=True)]
        full = np.zeros((size, size), np.float32)
        full[window] = alpha
        visible.append(full)
        num_visible.append(alpha.sum())
        areas.append(alpha.sum())
        boxes.append(box)
        labels.append(label)

    image = np.rint(np.clip(canvas, 0, 1) * 255).astype(np.uint8)  # (3, H, W)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def _check_args(image_size: int, seed: int, split: str, num_classes: int) -> None:
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}; expected one of {sorted(SPLIT_IDS)}")
    if not 1 <= num_classes <= len(SHAPE_NAMES):
        raise ValueError(f"num_classes={num_classes}; expected 1..{len(SHAPE_NAMES)}")
    if image_size < 32:
        raise ValueError(f"image_size={image_size}; expected at least 32 pixels")
    if seed < 0:
        raise ValueError(f"seed={seed}; expected a non-negative integer")


# ----------------------------------------------------------------------------- dataset


class ShapesDataset(Dataset):
    """`num_images` synthetic images, drawn on the fly (or read from memory once cached).

    Item `i` is ``(image, target)``: image float (3, H, W) in [0, 1]; target a dict with
    ``boxes`` float32 (M, 4) xyxy in pixels, ``labels`` int64 (M,) in [0, K) and
    ``image_id`` (= i). `transforms(image, target) -> (image, target)` is applied last.
    """

    def __init__(
        self,
        num_images: int,
        image_size: int = DEFAULT_IMAGE_SIZE,
        seed: int = 0,
        split: str = "train",
        num_classes: int = DEFAULT_NUM_CLASSES,
        transforms: Callable[[Tensor, dict], tuple[Tensor, dict]] | None = None,
    ) -> None:
        _check_args(image_size, seed, split, num_classes)
        if num_images < 0:
            raise ValueError(f"num_images={num_images}; expected a non-negative integer")
        self.num_images = num_images
        self.image_size = image_size
        self.seed = seed
        self.split = split
        self.num_classes = num_classes
        self.class_names = list(SHAPE_NAMES[:num_classes])
        self.transforms = transforms
        # Filled by cached_shapes_dataset: images uint8 (N, 3, H, W), per-image boxes and labels.
        self._images: Tensor | None = None
        self._boxes: list[Tensor] | None = None
        self._labels: list[Tensor] | None = None

    def __len__(self) -> int:
        return self.num_images

    def raw(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        """Image `index` as uint8 (3, H, W), boxes (M, 4) float32, labels (M,) int64."""
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"index={index} out of range for {self.num_images} images")
        index %= self.num_images
        if self._images is not None:
            return self._images[index], self._boxes[index], self._labels[index]
        image, boxes, labels = render_shapes_image(
            index, self.image_size, self.seed, self.split, self.num_classes
        )
        return torch.from_numpy(image), torch.from_numpy(boxes), torch.from_numpy(labels)

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        image, boxes, labels = self.raw(index)
        target = {
            "boxes": boxes.clone(),
            "labels": labels.clone(),
            "image_id": index % self.num_images,
        }
        image = image.float() / 255
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def generate_shapes(
    num_images: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str = "train",
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Draw a whole split: images uint8 (N, 3, H, W), boxes [(M_i, 4)], labels [(M_i,)]."""
    _check_args(image_size, seed, split, num_classes)
    images = np.empty((num_images, 3, image_size, image_size), dtype=np.uint8)  # (N, 3, H, W)
    boxes, labels = [], []
    for i in range(num_images):
        images[i], b, lab = render_shapes_image(i, image_size, seed, split, num_classes)
        boxes.append(torch.from_numpy(b))
        labels.append(torch.from_numpy(lab))
    return torch.from_numpy(images), boxes, labels


def default_cache_dir() -> Path:
    """$RETINA_LESSONS_CACHE, else `cache/` in a source checkout, else ~/.cache/retina_lessons."""
    if env := os.environ.get("RETINA_LESSONS_CACHE"):
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").exists():
        return repo / "cache"
    return Path.home() / ".cache" / "retina_lessons"


def cached_shapes_dataset(
    num_images: int = 2000,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    split: str = "train",
    num_classes: int = DEFAULT_NUM_CLASSES,
    cache_dir: str | Path | None = None,
    transforms: Callable[[Tensor, dict], tuple[Tensor, dict]] | None = None,
) -> ShapesDataset:
    """A ShapesDataset held in memory; drawn once, then read back from one .pt file.

    The file (uint8 images + boxes + labels, ~50 kB per 128-px image) is named after all
    the arguments and ``GENERATOR_VERSION``, so changing any of them draws a fresh one.
    The file also records a fingerprint of this module's source and of NumPy's version,
    and the first and last images are drawn again on loading: a cache left by other code
    is noticed (with a warning) and replaced.
    """
    dataset = ShapesDataset(num_images, image_size, seed, split, num_classes, transforms)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / (
        f"shapes_{split}_n{num_images}_size{image_size}_seed{seed}_k{num_classes}"
        f"_v{GENERATOR_VERSION}.pt"
    )
    cached = _read_cache(path, dataset) if path.exists() else None
    if cached is not None:
        images, boxes, labels = cached
    else:
        images, boxes, labels = generate_shapes(num_images, image_size, seed, split, num_classes)
        data = {
            "images": images,  # (N, 3, H, W) uint8
            "boxes": torch.cat(boxes) if boxes else torch.zeros((0, 4)),  # (sum M_i, 4)
            "labels": torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64),
            "num_boxes": torch.tensor([len(b) for b in boxes], dtype=torch.int64),  # (N,)
            "fingerprint": _code_fingerprint(),
        }
        cache_dir.mkdir(parents=True, exist_ok=True)
        # write to a temporary file first, so that an interrupted run leaves no half file
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            torch.save(data, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    dataset._images, dataset._boxes, dataset._labels = images, boxes, labels
    return dataset


def _code_fingerprint() -> str:
    """Changes whenever the drawing could: this file's source or NumPy's random streams."""
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f"{source}-numpy{np.__version__}"


def _read_cache(path: Path, dataset: ShapesDataset) -> tuple[Tensor, list, list] | None:
    """The split stored at `path`, or None (with a warning) if it is unreadable or stale."""
    try:
        data = torch.load(path, weights_only=True)
        images, num_boxes = data["images"], data["num_boxes"].tolist()
        boxes, labels = list(data["boxes"].split(num_boxes)), list(data["labels"].split(num_boxes))
    except (OSError, EOFError, RuntimeError, KeyError, pickle.UnpicklingError) as error:
        warnings.warn(
            f"{path}: unreadable cache ({error!r}); drawing the images again", stacklevel=3
        )
        return None
    same = len(images) == len(dataset) and data.get("fingerprint") == _code_fingerprint()
    for i in sorted({0, len(dataset) - 1}) if same and len(dataset) else []:
        image, b, lab = render_shapes_image(
            i, dataset.image_size, dataset.seed, dataset.split, dataset.num_classes
        )
        same &= np.array_equal(images[i].numpy(), image) and np.array_equal(boxes[i].numpy(), b)
        same &= np.array_equal(labels[i].numpy(), lab)
    if not same:
        warnings.warn(f"{path}: drawn by other code; drawing the images again", stacklevel=3)
        return None
    return images, boxes, labels


# ----------------------------------------------------------------------------- held-out split


def write_coco_split(dataset: ShapesDataset, out_dir: str | Path) -> Path:
    """Write `dataset` as PNG files plus a COCO annotation file; returns its path.

    Image ids and annotation ids start at 1; category ids are label + 1.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(len(dataset)):
        image, boxes, labels = dataset.raw(i)
        file_name = f"images/{i:06d}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(out_dir / file_name, optimize=True)
        image_id = i + 1
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": dataset.image_size,
                "height": dataset.image_size,
            }
        )
        for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist(), strict=True):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {
            "description": "Synthetic shapes, held-out split, drawn by retina_lessons.synthetic",
            "seed": dataset.seed,
            "split": dataset.split,
            "image_size": dataset.image_size,
            "generator_version": GENERATOR_VERSION,
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": "shape"}
            for k, name in enumerate(dataset.class_names)
        ],
    }
    # one image or annotation per line: small, and readable in a diff
    lines = ["{"]
    for key, value in coco.items():
        if isinstance(value, list):
            items = ",\n".join(f"  {json.dumps(item)}" for item in value)
            lines.append(f'"{key}": [\n{items}\n],')
        else:
            lines.append(f'"{key}": {json.dumps(value)},')
    lines[-1] = lines[-1].rstrip(",")
    path = out_dir / "annotations.json"
    path.write_text("\n".join(lines) + "\n}\n")
    return path


def heldout_dataset() -> ShapesDataset:
    """The split committed under data/shapes_val, drawn afresh."""
    return ShapesDataset(HELDOUT_NUM_IMAGES, DEFAULT_IMAGE_SIZE, HELDOUT_SEED, HELDOUT_SPLIT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m retina_lessons.synthetic", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    heldout = commands.add_parser("heldout", help="write the held-out split in COCO format")
    heldout.add_argument("--out", type=Path, default=HELDOUT_DIR)
    for name, summary in [
        ("cache", "draw a training split into the cache (or load it from there)"),
        ("speed", "time the drawing of a training split, without caching it"),
    ]:
        command = commands.add_parser(name, help=summary)
        command.add_argument("-n", "--num-images", type=int, default=2000)
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)
    args = parser.parse_args(argv)

    start, cpu_start = time.perf_counter(), time.process_time()
    if args.command == "heldout":
        path = write_coco_split(heldout_dataset(), args.out)
        print(
            f"wrote {path} and {HELDOUT_NUM_IMAGES} images in {time.perf_counter() - start:.1f} s"
        )
    elif args.command == "cache":
        dataset = cached_shapes_dataset(args.num_images, args.image_size, args.seed)
        num_boxes = sum(len(b) for b in dataset._boxes)
        seconds = time.perf_counter() - start
        print(
            f"{len(dataset)} images, {num_boxes} boxes in {seconds:.1f} s (cache: {default_cache_dir()})"
        )
    else:
        _, boxes, _ = generate_shapes(args.num_images, args.image_size, args.seed)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(
            f"drew {args.num_images} images of {args.image_size} px ({sum(map(len, boxes))} boxes) "
            f"in {seconds:.2f} s wall, {cpu:.2f} s CPU: {1000 * cpu / args.num_images:.2f} ms per image"
        )


if __name__ == "__main__":
    main()
