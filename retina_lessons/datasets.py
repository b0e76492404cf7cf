"""Detection datasets on disk and the paper's one augmentation.

RetinaNet is trained and evaluated on COCO (paper Section 5); Pascal VOC is the smaller
classic. Both loaders here give torchvision-style samples: ``image`` float (3, H, W) in
[0, 1] and a target dict with ``boxes`` float32 (M, 4) xyxy in pixels, ``labels`` int64
(M,) contiguous in [0, K) (names in ``class_names``) and ``image_id``.

Bad annotations are never skipped silently. An entry that is malformed (a key missing or of
the wrong type, an id that repeats or points nowhere, a box with x2 <= x1 or y2 <= y1 or
outside its image, an ``iscrowd`` or ``difficult`` that is not 0 or 1, a VOC file whose root
is not ``<annotation>`` or whose ``<size>`` is not two positive integers) or a missing image
file raises ``ValueError`` naming the file, the entry (annotation, image or category id and
index; VOC object index) and the key, or, with ``on_invalid="drop"``, is dropped, counted in
``num_dropped`` (reasons in ``dropped``) and reported in one warning. An image dropped takes
its annotations with it, and its entry says how many. What no entry can be dropped for
always raises: a file that is not JSON (its line is named) or not a COCO object with
``images``, ``annotations`` and ``categories`` lists, a malformed category, repeated image or
category ids. Crowd boxes and VOC's difficult objects are skipped on purpose, and counted
in ``num_crowd`` / ``num_difficult``.

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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _crowd_flag(value: object) -> bool | None:
    """COCO's ``iscrowd`` as written by the exporters: 0/1, true/false or "0"/"1"; None otherwise."""
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    return None


def _read_coco(annotation_file: Path) -> tuple[list, list, list]:
    """The images, annotations and categories lists of a COCO file, or a ValueError naming what is wrong."""
    if not annotation_file.is_file():
        raise FileNotFoundError(f"{annotation_file} not found; expected a COCO instances JSON file")
    try:
        coco = json.loads(annotation_file.read_bytes())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{annotation_file}: not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{annotation_file}: cannot be read as JSON text ({error})") from error
    expected = "a COCO instances file: an object with images, annotations and categories"
    if not isinstance(coco, dict):
        raise ValueError(f"{annotation_file}: holds a JSON {type(coco).__name__}; expected {expected}")
    lists = []
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise ValueError(f"{annotation_file}: no {key!r} key; expected {expected}")
        if not isinstance(coco[key], list):
            raise ValueError(
                f"{annotation_file}: {key!r} is a JSON {type(coco[key]).__name__}; expected a list"
            )
        lists.append(coco[key])
    return tuple(lists)


def _read_categories(categories: list, annotation_file: Path) -> list[tuple[int, str]]:
    """(id, name) of every category, sorted by id. A bad category always raises: labels depend on all."""
    if not categories:
        raise ValueError(f"{annotation_file}: 'categories' is empty; expected at least one category")
    first_index: dict[int, int] = {}
    for index, category in enumerate(categories):
        where = f"{annotation_file}: category index {index}"
        if not isinstance(category, dict):
            raise ValueError(f"{where}: {category!r}; expected an object with id and name")
        category_id, name = category.get("id"), category.get("name")
        if not _is_int(category_id):
            raise ValueError(f"{where} (name={name!r}): id={category_id!r}; expected an integer id")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where} (id={category_id}): name={name!r}; expected a non-empty string")
        if category_id in first_index:
            raise ValueError(
                f"{where} ({name!r}): id={category_id} repeats category index "
                f"{first_index[category_id]}; expected unique category ids"
            )
        first_index[category_id] = index
    return sorted((c["id"], c["name"]) for c in categories)


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
        images, annotations, categories = _read_coco(self.annotation_file)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"root={str(root)!r} is not a folder; expected the folder the file_name entries "
                f"of {self.annotation_file} are relative to"
            )
        categories = _read_categories(categories, self.annotation_file)
        self.category_ids = [category_id for category_id, _ in categories]
        self.class_names = [name for _, name in categories]
        label_of = {category_id: label for label, category_id in enumerate(self.category_ids)}

        # An image dropped with its annotations is one entry in .dropped that counts them.
        num_annotations: dict[int, int] = {}
        for ann in annotations:
            if isinstance(ann, dict) and _is_int(ann.get("image_id")):
                num_annotations[ann["image_id"]] = num_annotations.get(ann["image_id"], 0) + 1

        # image id -> (path, width, height) of the images kept, in the file's order
        kept: dict[int, tuple[Path, int, int]] = {}
        dropped_images: set[int] = set()
        first_index: dict[int, int] = {}
        for index, image in enumerate(images):
            if not isinstance(image, dict):
                log.report(
                    f"image index {index}",
                    f"{image!r}; expected an object with id, file_name, width and height",
                )
                continue
            image_id, file_name = image.get("id"), image.get("file_name")
            if not _is_int(image_id):
                log.report(
                    f"image index {index} (file_name={file_name!r})",
                    f"id={image_id!r}; expected an integer image id",
                )
                continue
            if image_id in first_index:  # which image would its annotations belong to?
                raise ValueError(
                    f"{self.annotation_file}: image id={image_id} (index {index}) repeats image "
                    f"index {first_index[image_id]}; expected unique image ids"
                )
            first_index[image_id] = index
            what = f"image id={image_id} ({file_name})"
            lost = f" ({num_annotations.get(image_id, 0)} annotations dropped with it)"
            problem = None
            if not isinstance(file_name, str) or not file_name:
                what = f"image id={image_id} (index {index})"
                problem = f"file_name={file_name!r}; expected a file name relative to {self.root}"
            else:
                for key in ("width", "height"):
                    if not _is_int(image.get(key)) or image[key] <= 0:
                        problem = f"{key}={image.get(key)!r}; expected a positive integer (pixels)"
                        break
                else:
                    if not (self.root / file_name).is_file():
                        problem = f"image file {self.root / file_name} is missing"
            if problem is not None:
                dropped_images.add(image_id)
                log.report(what, problem + lost)
            else:
                kept[image_id] = (self.root / file_name, image["width"], image["height"])

        by_image: dict[int, list] = {image_id: [] for image_id in kept}
        first_index = {}
        self.num_crowd = 0
        for index, ann in enumerate(annotations):
            if not isinstance(ann, dict):
                log.report(
                    f"annotation index {index}",
                    f"{ann!r}; expected an object with id, image_id, category_id and bbox",
                )
                continue
            ann_id, image_id, category_id = ann.get("id"), ann.get("image_id"), ann.get("category_id")
            what = f"annotation id={ann_id} (index {index}, image_id={image_id})"
            if not _is_int(ann_id):
                log.report(what, f"id={ann_id!r}; expected an integer annotation id")
                continue
            if ann_id in first_index:
                log.report(
                    what,
                    f"id={ann_id} repeats annotation index {first_index[ann_id]}; "
                    "expected unique annotation ids",
                )
                continue
            first_index[ann_id] = index
            if not _is_int(image_id):
                log.report(what, f"image_id={image_id!r}; expected an integer image id")
                continue
            if image_id in dropped_images:
                continue  # counted in the entry that dropped its image
            if image_id not in kept:
                log.report(what, f"image_id={image_id} is not among the images")
                continue
            if not _is_int(category_id) or category_id not in label_of:
                log.report(
                    what, f"unknown category_id={category_id!r}; known: {self.category_ids}"
                )
                continue
            crowd = _crowd_flag(ann.get("iscrowd", 0))
            if crowd is None:
                log.report(
                    what, f"iscrowd={ann['iscrowd']!r}; expected 0 or 1 (or true/false, \"0\"/\"1\")"
                )
                continue
            if crowd and not include_crowd:
                self.num_crowd += 1
                continue
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
                log.report(what, f"bbox={bbox!r}; expected [x, y, width, height], four numbers")
                continue
            _, width, height = kept[image_id]
            x, y, w, h = (float(v) for v in bbox)
            box = _check_box([x, y, x + w, y + h], width, height, log, what)
            if box is not None:
                by_image[image_id].append((box, label_of[category_id]))

        for image_id, (path, width, height) in kept.items():
            found = by_image[image_id]
            self._add(
                path, width, height, image_id, [box for box, _ in found], [label for _, label in found]
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
        if on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid={on_invalid!r}; expected one of {ON_INVALID}")
        self.root = Path(root)
        self.class_names = list(class_names)
        if not self.class_names or not all(isinstance(n, str) and n for n in self.class_names):
            raise ValueError(f"class_names={self.class_names!r}; expected non-empty strings")
        label_of: dict[str, int] = {}
        for label, name in enumerate(self.class_names):
            if name in label_of:
                raise ValueError(
                    f"class_names has {name!r} at positions {label_of[name]} and {label}; "
                    "expected distinct names"
                )
            label_of[name] = label
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
        """Add the image of one annotation file, or report why it is dropped (one entry)."""
        try:
            tree = ET.parse(xml_file).getroot()
        except ET.ParseError as error:
            log.report("the file", f"not valid XML ({error})")
            return
        except OSError as error:
            log.report("the file", f"cannot be read ({error})")
            return
        if tree.tag != "annotation":
            log.report("the file", f"root element is <{tree.tag}>; expected a Pascal VOC <annotation>")
            return
        size = _image_size(tree, path, log)
        if size is None:
            return
        width, height = size
        boxes, labels = [], []
        for index, obj in enumerate(tree.iter("object")):
            name = (obj.findtext("name") or "").strip()
            what = f"object {index} ({name!r})"
            if not name:
                log.report(what, f"has no <name>; expected one of {list(label_of)}")
                continue
            if name not in label_of:
                log.report(what, f"unknown class {name!r}; expected one of {list(label_of)}")
                continue
            difficult = (obj.findtext("difficult") or "0").strip()
            if difficult not in ("0", "1"):
                log.report(what, f"<difficult> is {difficult!r}; expected 0 or 1")
                continue
            if difficult == "1" and not include_difficult:
                self.num_difficult += 1
                continue
            box = []
            for key in ("xmin", "ymin", "xmax", "ymax"):
                text = obj.findtext(f"bndbox/{key}")
                try:
                    box.append(float(text))
                except (TypeError, ValueError):
                    log.report(
                        what, f"bndbox {key}={text!r}; bndbox needs numeric xmin, ymin, xmax, ymax"
                    )
                    break
            else:
                xmin, ymin, xmax, ymax = box
                box = _check_box([xmin - 1, ymin - 1, xmax, ymax], width, height, log, what)
                if box is not None:
                    boxes.append(box)
                    labels.append(label_of[name])
        self._add(path, width, height, image_id, boxes, labels)


def _image_size(tree: ET.Element, path: Path, log: _InvalidLog) -> tuple[int, int] | None:
    """(width, height) from ``<size>``; without a ``<size>``, from the image file's header."""
    size = tree.find("size")
    if size is None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:  # reads the header only
                return image.size
        except (OSError, UnidentifiedImageError) as error:
            log.report("the file", f"has no <size> and image file {path} cannot be read ({error})")
            return None
    texts = [size.findtext(key) for key in ("width", "height")]
    try:
        numbers = [float(text) for text in texts]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 2 or not all(n.is_integer() and n > 0 for n in numbers):
        log.report(
            "<size>", f"width={texts[0]!r}, height={texts[1]!r}; expected positive integers (pixels)"
        )
        return None
    return int(numbers[0]), int(numbers[1])


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
