"""Detection datasets on disk and the paper's one augmentation.

RetinaNet is trained and evaluated on COCO (paper Section 5); Pascal VOC is the smaller
classic. Both loaders here give torchvision-style samples: ``image`` float (3, H, W) in
[0, 1] and a target dict with ``boxes`` float32 (M, 4) xyxy in pixels, ``labels`` int64
(M,) contiguous in [0, K) (names in ``class_names``) and ``image_id``.

Bad annotations are never skipped silently: a box with x2 <= x1 or y2 <= y1, a box
outside its image, an unknown category or a missing image file raises ``ValueError``
naming the file and the annotation, or, with ``on_invalid="drop"``, is dropped, counted
in ``num_dropped`` (reasons in ``dropped``) and reported in one warning.

Training uses horizontal flipping only (Section 5.1: "horizontal image flipping is the
only data augmentation"): :func:`hflip`, and ``hflip_prob`` on the datasets.

Nothing is ever downloaded: :func:`download_instructions` says what to fetch and where
to put it. The files this repository ships (the held-out shapes, the photo's boxes) are read
through :mod:`retina_lessons.shipped`. Taught by ``notebooks/07_training.ipynb``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = [
    "VOC_CLASSES",
    "CocoDetection",
    "VocDetection",
    "collate",
    "dataset_available",
    "default_data_root",
    "download_instructions",
    "hflip",
    "read_image",
]


# The 20 Pascal VOC classes, in the devkit's order.
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

# A box may overhang its image by this many pixels (rounding in the annotation tools);
# it is clipped to the image. Further out, it is invalid.
BOUNDS_TOLERANCE = 1.0
ON_INVALID = ("raise", "drop")


def collate(batch: Sequence[tuple[Tensor, dict]]) -> tuple[list[Tensor], list[dict]]:
    """Batch detection samples as lists: images may differ in size, targets in M."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets


def read_image(path: str | Path) -> Tensor:
    """An image file as uint8 (3, H, W) RGB."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.array(image.convert("RGB"))  # (H, W, 3)
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()  # (3, H, W)


def hflip(image: Tensor, target: dict) -> tuple[Tensor, dict]:
    """Mirror an image (..., H, W) left to right and its boxes: x1' = W - x2, x2' = W - x1.

    Returns a new target dict; entries other than ``boxes`` are passed on unchanged.
    """
    if image.dim() < 2:
        raise ValueError(f"image has shape {tuple(image.shape)}; expected (..., H, W)")
    width = image.shape[-1]
    boxes = target["boxes"]
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"target['boxes'] has shape {tuple(boxes.shape)}; expected (M, 4)")
    x1, y1, x2, y2 = boxes.unbind(-1)
    flipped = torch.stack([width - x2, y1, width - x1, y2], dim=-1)  # (M, 4)
    return image.flip(-1), {**target, "boxes": flipped}


class _InvalidLog:
    """Raises on the first bad annotation, or collects them all for one warning."""

    def __init__(self, source: Path, on_invalid: str) -> None:
        if on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid={on_invalid!r}; expected one of {ON_INVALID}")
        self.source, self.on_invalid, self.messages = source, on_invalid, []

    def report(self, what: str, problem: str) -> None:
        message = f"{self.source}: {what}: {problem}"
        if self.on_invalid == "raise":
            raise ValueError(message + " (pass on_invalid='drop' to drop such entries)")
        self.messages.append(message)

    def finish(self) -> None:
        if self.messages:
            warnings.warn(
                f"{self.source}: dropped {len(self.messages)} invalid entries, "
                f"first: {self.messages[0]} (all reasons in .dropped)",
                stacklevel=3,
            )


def _check_box(
    box: Sequence[float], width: float, height: float, log: _InvalidLog, what: str
) -> list[float] | None:
    """Validate an xyxy box against its image; returns it clipped, or None if invalid."""
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        log.report(what, f"box {list(box)} is not finite")
    elif x2 <= x1 or y2 <= y1:
        log.report(what, f"box xyxy={list(box)} is empty; expected x1 < x2 and y1 < y2")
    elif (
        x1 < -BOUNDS_TOLERANCE
        or y1 < -BOUNDS_TOLERANCE
        or x2 > width + BOUNDS_TOLERANCE
        or y2 > height + BOUNDS_TOLERANCE
    ):
        log.report(what, f"box xyxy={list(box)} lies outside the {width}x{height} image")
    else:
        return [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _DetectionDataset(Dataset):
    """Shared by the loaders: one record per image, image decoding, seeded flipping."""

    def __init__(self, hflip_prob: float, seed: int) -> None:
        if not 0 <= hflip_prob <= 1:
            raise ValueError(f"hflip_prob={hflip_prob}; expected a probability in [0, 1]")
        self.hflip_prob, self.seed, self.epoch = hflip_prob, seed, 0
        # per image: (path, width, height, image_id, boxes (M, 4) float32, labels (M,) int64)
        self.records: list[tuple[Path, int, int, int, Tensor, Tensor]] = []
        self.class_names: list[str] = []
        self.dropped: list[str] = []

    @property
    def num_dropped(self) -> int:
        """How many invalid annotations or images were dropped (``on_invalid="drop"``)."""
        return len(self.dropped)

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh set of flips: a flip is a function of (seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _add(
        self, path: Path, width: int, height: int, image_id: int, boxes: list, labels: list
    ) -> None:
        self.records.append((
            path, width, height, image_id,
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(labels, dtype=torch.int64),
        ))  # fmt: skip

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        path, width, height, image_id, boxes, labels = self.records[index]
        image = read_image(path)  # (3, H, W) uint8
        if tuple(image.shape[1:]) != (height, width):
            raise ValueError(
                f"{path}: image is {image.shape[2]}x{image.shape[1]}, but its annotation "
                f"says {width}x{height}"
            )
        image = image.float() / 255
        target = {"boxes": boxes.clone(), "labels": labels.clone(), "image_id": image_id}
        if self.is_flipped(index):
            image, target = hflip(image, target)
        return image, target

    def is_flipped(self, index: int) -> bool:
        """Whether sample `index` is flipped in this epoch; the same in any order or worker."""
        if self.hflip_prob == 0:
            return False
        state = np.random.SeedSequence([self.seed, self.epoch, index % len(self)]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return bool(torch.rand((), generator=generator) < self.hflip_prob)


class CocoDetection(_DetectionDataset):
    """Images of `root` annotated by a COCO instances file.

    Args:
        root: folder the ``file_name`` entries are relative to.
        annotation_file: COCO JSON (``images``, ``annotations`` with ``bbox`` xywh,
            ``categories``).
        hflip_prob: chance of flipping a sample left to right.
        seed: seeds the flips (see ``set_epoch``).
        on_invalid: "raise" (default) or "drop" for malformed annotations.
        include_crowd: keep ``iscrowd`` annotations (COCO training skips them, as
            torchvision's references do; they are counted in ``num_crowd``).

    Labels are the categories sorted by COCO id, renumbered 0..K-1;
    ``category_ids[label]`` gives the COCO id back (for pycocotools).
    """

    def __init__(
        self,
        root: str | Path,
        annotation_file: str | Path,
        hflip_prob: float = 0.0,
        seed: int = 0,
        on_invalid: str = "raise",
        include_crowd: bool = False,
    ) -> None:
        super().__init__(hflip_prob, seed)
        self.root, self.annotation_file = Path(root), Path(annotation_file)
        log = _InvalidLog(self.annotation_file, on_invalid)
        try:
            coco = json.loads(self.annotation_file.read_text())
            images, annotations = coco["images"], coco["annotations"]
            categories = coco["categories"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"{self.annotation_file}: not a COCO annotation file with images, annotations "
                f"and categories ({error!r})"
            ) from error

        categories = sorted(categories, key=lambda c: c["id"])
        self.category_ids = [c["id"] for c in categories]
        self.class_names = [c["name"] for c in categories]
        label_of = {category_id: label for label, category_id in enumerate(self.category_ids)}
        if len(label_of) != len(categories):
            raise ValueError(f"{self.annotation_file}: category ids {self.category_ids} repeat")

        by_image = {image["id"]: [] for image in images}
        if len(by_image) != len(images):
            raise ValueError(f"{self.annotation_file}: image ids repeat")
        sizes = {image["id"]: (image.get("width"), image.get("height")) for image in images}
        self.num_crowd = 0
        for index, ann in enumerate(annotations):
            what = f"annotation id={ann.get('id')} (index {index}, image_id={ann.get('image_id')})"
            if ann.get("image_id") not in by_image:
                log.report(what, f"image_id={ann.get('image_id')} is not among the images")
                continue
            if ann.get("category_id") not in label_of:
                log.report(
                    what,
                    f"unknown category_id={ann.get('category_id')}; known: {self.category_ids}",
                )
                continue
            if ann.get("iscrowd", 0) and not include_crowd:
                self.num_crowd += 1
                continue
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
                log.report(what, f"bbox={bbox!r}; expected [x, y, width, height]")
                continue
            width, height = sizes[ann["image_id"]]
            if not isinstance(width, int) or not isinstance(height, int):
                continue  # reported with its image below
            x, y, w, h = (float(v) for v in bbox)
            box = _check_box([x, y, x + w, y + h], width, height, log, what)
            if box is not None:
                by_image[ann["image_id"]].append((box, label_of[ann["category_id"]]))

        for image in images:
            path = self.root / image["file_name"]
            what = f"image id={image['id']} ({image['file_name']})"
            if not isinstance(image.get("width"), int) or not isinstance(image.get("height"), int):
                log.report(what, "width and height are missing; expected integers")
            elif not path.is_file():
                num_lost = len(by_image[image["id"]])
                log.report(
                    what, f"image file {path} is missing ({num_lost} annotations dropped with it)"
                )
            else:
                found = by_image[image["id"]]
                self._add(
                    path,
                    image["width"],
                    image["height"],
                    image["id"],
                    [box for box, _ in found],
                    [label for _, label in found],
                )
        self.dropped = log.messages
        log.finish()


class VocDetection(_DetectionDataset):
    """A Pascal VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``).

    Args:
        root: e.g. ``.../VOCdevkit/VOC2007``.
        image_set: "train", "val", "trainval" or "test" (a file in ImageSets/Main).
        class_names: the label order; VOC's 20 classes by default.
        hflip_prob, seed, on_invalid: as for :class:`CocoDetection`.
        include_difficult: keep objects marked ``difficult`` (VOC evaluation ignores
            them and training usually skips them; skipped ones are counted in
            ``num_difficult``).

    VOC pixel indices start at 1 and include both ends, so the box of
    (xmin, ymin, xmax, ymax) is (xmin - 1, ymin - 1, xmax, ymax) in this project's
    pixel-edge coordinates, as in Detectron2. ``image_id`` is the position in the image set;
    ``ids[image_id]`` its VOC name.
    """

    def __init__(
        self,
        root: str | Path,
        image_set: str = "trainval",
        class_names: Sequence[str] = VOC_CLASSES,
        hflip_prob: float = 0.0,
        seed: int = 0,
        on_invalid: str = "raise",
        include_difficult: bool = False,
    ) -> None:
        super().__init__(hflip_prob, seed)
        self.root = Path(root)
        self.class_names = list(class_names)
        label_of = {name: label for label, name in enumerate(self.class_names)}
        split_file = self.root / "ImageSets" / "Main" / f"{image_set}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(
                f"{split_file} not found; expected a Pascal VOC folder.\n"
                + download_instructions("voc")
            )
        self.ids = split_file.read_text().split()
        self.num_difficult = 0
        dropped = []
        for image_id, name in enumerate(self.ids):
            xml_file = self.root / "Annotations" / f"{name}.xml"
            log = _InvalidLog(xml_file, on_invalid)
            path = self.root / "JPEGImages" / f"{name}.jpg"
            if not xml_file.is_file():
                log.report(f"image {name}", "annotation file is missing")
            elif not path.is_file():
                log.report(f"image {name}", f"image file {path} is missing")
            else:
                self._parse(xml_file, path, image_id, label_of, include_difficult, log)
            dropped += log.messages
        self.dropped = dropped
        if dropped:
            warnings.warn(
                f"{self.root}: dropped {len(dropped)} invalid entries, first: {dropped[0]} "
                "(all reasons in .dropped)",
                stacklevel=2,
            )

    def _parse(
        self,
        xml_file: Path,
        path: Path,
        image_id: int,
        label_of: dict,
        include_difficult: bool,
        log: _InvalidLog,
    ) -> None:
        try:
            tree = ET.parse(xml_file).getroot()
        except ET.ParseError as error:
            log.report("the file", f"not valid XML ({error})")
            return
        try:
            width, height = int(tree.findtext("size/width")), int(tree.findtext("size/height"))
        except (TypeError, ValueError):
            from PIL import Image

            with Image.open(path) as image:  # reads the header only
                width, height = image.size
        boxes, labels = [], []
        for index, obj in enumerate(tree.iter("object")):
            name = (obj.findtext("name") or "").strip()
            what = f"object {index} ({name!r})"
            if name not in label_of:
                log.report(what, f"unknown class {name!r}; expected one of {list(label_of)}")
                continue
            if obj.findtext("difficult", "0").strip() == "1" and not include_difficult:
                self.num_difficult += 1
                continue
            try:
                xmin, ymin, xmax, ymax = (
                    float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")
                )
            except (TypeError, ValueError):
                log.report(what, "bndbox needs numeric xmin, ymin, xmax, ymax")
                continue
            box = _check_box([xmin - 1, ymin - 1, xmax, ymax], width, height, log, what)
            if box is not None:
                boxes.append(box)
                labels.append(label_of[name])
        self._add(path, width, height, image_id, boxes, labels)


# ----------------------------------------------------------------------------- getting the data


def default_data_root() -> Path:
    """Where the notebooks look for COCO and VOC: $RETINA_LESSONS_DATA, else ~/data."""
    return Path(os.environ.get("RETINA_LESSONS_DATA", Path.home() / "data"))


def _expected_files(name: str, root: Path) -> list[Path]:
    if name == "coco":
        return [root / "annotations" / "instances_val2017.json", root / "val2017"]
    if name == "voc":
        voc = root / "VOCdevkit" / "VOC2007"
        return [voc / "Annotations", voc / "JPEGImages", voc / "ImageSets" / "Main" / "test.txt"]
    raise ValueError(f"name={name!r}; expected 'coco' or 'voc'")


def dataset_available(name: str, root: str | Path | None = None) -> bool:
    """Whether COCO 2017 val ("coco") or VOC 2007 ("voc") is laid out under `root`."""
    root = Path(root) if root is not None else default_data_root()
    return all(path.exists() for path in _expected_files(name, root))


def download_instructions(name: str, root: str | Path | None = None) -> str:
    """What to download for "coco" or "voc", where to unpack it, and how to load it."""
    root = Path(root) if root is not None else default_data_root()
    _expected_files(name, root)  # validates name
    if name == "coco":
        return f"""COCO 2017 is not under {root}. To use it (nothing is downloaded for you):
  1. From https://cocodataset.org/#download fetch
       http://images.cocodataset.org/annotations/annotations_trainval2017.zip  (~250 MB)
       http://images.cocodataset.org/zips/val2017.zip  (~0.8 GB, 5,000 images)
     and, only to train on COCO, http://images.cocodataset.org/zips/train2017.zip (~19 GB).
  2. Unzip both into {root}, giving
       {root}/annotations/instances_val2017.json
       {root}/val2017/000000000139.jpg ...
  3. Load: CocoDetection("{root}/val2017", "{root}/annotations/instances_val2017.json")
     (or set RETINA_LESSONS_DATA to the folder you used).
  Licence: annotations CC BY 4.0; each image under the Flickr licence named in the file."""
    return f"""Pascal VOC 2007 is not under {root}. To use it (nothing is downloaded for you):
  1. From http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ fetch
       VOCtrainval_06-Nov-2007.tar  (~450 MB)
       VOCtest_06-Nov-2007.tar      (~450 MB)
  2. In {root}, run  tar xf VOCtrainval_06-Nov-2007.tar && tar xf VOCtest_06-Nov-2007.tar
     giving {root}/VOCdevkit/VOC2007/{{Annotations,JPEGImages,ImageSets/Main}}.
  3. Load: VocDetection("{root}/VOCdevkit/VOC2007", "trainval")
     (or set RETINA_LESSONS_DATA to the folder you used).
  Licence: see the VOC 2007 page; images come from Flickr under their own terms."""
