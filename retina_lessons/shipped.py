"""The files this repository ships in ``data/``, and their loaders: one place for every path.

- ``grace_hopper_boxes.json``: hand-made boxes for matplotlib's sample photo of Grace Hopper
  (the photo itself ships with matplotlib), read by :func:`load_grace_hopper`;
- ``shapes_val/``: the held-out split of the synthetic shapes in COCO format, read by
  :func:`heldout_shapes` (``python -m retina_lessons.synthetic heldout`` rewrites it);
- ``classroom_detector.pt``: the detector trained by ``notebooks/07_training.ipynb``, read by
  :func:`load_classroom_detector`.

``data/README.md`` says where each file comes from. The notebooks find their data through
these names, never by paths relative to a notebook, so they run from any folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import RetinaNetConfig, get_config
from .datasets import CocoDetection, read_image

__all__ = [
    "CLASSROOM_DETECTOR",
    "DATA_DIR",
    "GRACE_HOPPER_BOXES",
    "HELDOUT_DIR",
    "heldout_shapes",
    "load_classroom_detector",
    "load_grace_hopper",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
GRACE_HOPPER_BOXES = DATA_DIR / "grace_hopper_boxes.json"
HELDOUT_DIR = DATA_DIR / "shapes_val"
CLASSROOM_DETECTOR = DATA_DIR / "classroom_detector.pt"


def load_grace_hopper() -> tuple[Tensor, dict]:
    """matplotlib's sample photo of Grace Hopper with this project's hand-made boxes.

    Returns image float (3, 600, 512) in [0, 1] and a target with ``boxes`` float32
    (M, 4) xyxy, ``labels`` int64 (M,) indexing ``class_names`` (the file's categories),
    ``names`` (M strings), ``coco_category_ids`` int64 (M,) as torchvision's COCO
    detectors number them (person 1, tie 32; -1 where COCO has no such category) and
    ``class_names``.
    """
    from matplotlib.cbook import get_sample_data

    spec = json.loads(GRACE_HOPPER_BOXES.read_text())
    image = read_image(get_sample_data(spec["image"]["file_name"], asfileobj=False)).float() / 255
    class_names = [c["name"] for c in spec["categories"]]
    coco_ids = {c["name"]: -1 if c["coco_id"] is None else c["coco_id"] for c in spec["categories"]}
    names = [a["category"] for a in spec["annotations"]]
    target = {
        "boxes": torch.tensor([a["bbox_xyxy"] for a in spec["annotations"]], dtype=torch.float32),
        "labels": torch.tensor([class_names.index(n) for n in names], dtype=torch.int64),
        "names": names,
        "coco_category_ids": torch.tensor([coco_ids[n] for n in names], dtype=torch.int64),
        "class_names": class_names,
    }
    return image, target


def heldout_shapes() -> CocoDetection:
    """The committed held-out split, data/shapes_val (COCO format)."""
    return CocoDetection(HELDOUT_DIR, HELDOUT_DIR / "annotations.json")


def load_classroom_detector(path: str | Path = CLASSROOM_DETECTOR, config: RetinaNetConfig | None = None) -> nn.Module:
    """The shipped classroom detector: the CLASSROOM preset with the weights of `path`, in eval mode."""
    from .model import RetinaNet

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path={str(path)!r}: no classroom detector there. Train one (about a minute on 2 quiet cores) with "
            f"`python -m retina_lessons.train --preset classroom --data shapes --out runs/classroom --save-model {path}`, "
            f"or run notebooks/07_training.ipynb.")
    model = RetinaNet(config or get_config("classroom"))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
