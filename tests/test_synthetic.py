"""Tests for retina_lessons.synthetic: determinism, tight valid boxes, cache, held-out split."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from retina_lessons import synthetic
from retina_lessons.shipped import HELDOUT_DIR
from retina_lessons.synthetic import (
    CLASS_NAMES,
    SHAPE_NAMES,
    ShapesDataset,
    cached_shapes_dataset,
    collate,
    generate_shapes,
    render_shapes_image,
)

NUM_SAMPLE = 300


@pytest.fixture(scope="module")
def sample():
    """The first NUM_SAMPLE training images: images (N, 3, H, W) uint8, boxes, labels."""
    return generate_shapes(NUM_SAMPLE)


def test_item_format():
    dataset = ShapesDataset(4)
    image, target = dataset[1]
    assert dataset.class_names == list(CLASS_NAMES) == ["circle", "triangle", "square"]
    assert image.shape == (3, 128, 128) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1:] == (4,)
    assert target["labels"].dtype == torch.int64
    assert target["labels"].shape == target["boxes"].shape[:1]
    assert target["image_id"] == 1
    assert len(dataset) == 4


def test_same_seed_same_image_in_any_order():
    forward = [ShapesDataset(10, seed=3)[i] for i in range(10)]
    backward = [ShapesDataset(10, seed=3)[i] for i in reversed(range(10))][::-1]
    alone = ShapesDataset(10, seed=3)[7]
    for (image_a, target_a), (image_b, target_b) in zip(forward, backward, strict=True):
        assert torch.equal(image_a, image_b)
        assert torch.equal(target_a["boxes"], target_b["boxes"])
        assert torch.equal(target_a["labels"], target_b["labels"])
    assert torch.equal(alone[0], forward[7][0]) and torch.equal(
        alone[1]["boxes"], forward[7][1]["boxes"]
    )
    # the dataset length does not change an image either
    assert torch.equal(ShapesDataset(1000, seed=3)[7][0], alone[0])


def test_different_index_seed_or_split_gives_a_different_image():
    base = render_shapes_image(5, seed=0, split="train")[0]
    assert not np.array_equal(base, render_shapes_image(6, seed=0, split="train")[0])
    assert not np.array_equal(base, render_shapes_image(5, seed=1, split="train")[0])
    assert not np.array_equal(base, render_shapes_image(5, seed=0, split="val")[0])


def test_boxes_valid_and_inside_the_image(sample):
    images, boxes, labels = sample
    assert images.shape == (NUM_SAMPLE, 3, 128, 128) and images.dtype == torch.uint8
    all_boxes = torch.cat(boxes)
    assert (all_boxes[:, 2] > all_boxes[:, 0]).all() and (all_boxes[:, 3] > all_boxes[:, 1]).all()
    assert all_boxes.min() >= 0 and all_boxes.max() <= 128
    assert all(
        len(b) == len(lab) <= synthetic.MAX_OBJECTS for b, lab in zip(boxes, labels, strict=True)
    )
    assert torch.cat(labels).min() >= 0 and torch.cat(labels).max() < len(CLASS_NAMES)


def test_some_images_are_empty(sample):
    num_boxes = np.array([len(b) for b in sample[1]])
    assert 0.02 <= (num_boxes == 0).mean() <= 0.15
    assert num_boxes.max() == synthetic.MAX_OBJECTS
    assert 2 <= num_boxes.mean() <= 4


def test_classes_are_balanced(sample):
    counts = torch.bincount(torch.cat(sample[2]), minlength=len(CLASS_NAMES)).float()
    assert (counts > 0.8 * counts.mean()).all() and (counts < 1.2 * counts.mean()).all(), counts


def test_sizes_span_small_to_large(sample):
    boxes = torch.cat(sample[1])
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert (
        side.min() >= synthetic.MIN_OBJECT_SIZE - 1e-3
        and side.max() <= synthetic.MAX_OBJECT_SIZE + 1e-3
    )
    # every pyramid level gets objects of its scale: < 24, 24-48, 48-80, > 80 pixels
    bins = torch.bucketize(side, torch.tensor([24.0, 48.0, 80.0]))
    assert (torch.bincount(bins, minlength=4) >= 0.04 * len(side)).all()


def test_image_size_scales_the_objects():
    boxes = torch.cat(generate_shapes(60, image_size=256)[1])
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert side.min() >= 2 * synthetic.MIN_OBJECT_SIZE - 1e-3 and side.max() <= 256
    assert side.max() > 100


@pytest.mark.parametrize("label", range(len(SHAPE_NAMES)))
def test_shape_fills_its_box_exactly(label):
    """The inside of each shape touches all four sides of its box and never leaves it."""
    rng = np.random.default_rng(label)
    for _ in range(5):
        sdf, box_w, box_h = synthetic._shape_geometry(rng, label, 40.0)
        assert max(box_w, box_h) == pytest.approx(40.0)
        step = 0.05
        coords = np.arange(-25, 25, step, dtype=np.float32) + step / 2
        inside = sdf(coords[None, :], coords[:, None]) > 0  # (rows y, columns x)
        xs, ys = coords[inside.any(0)], coords[inside.any(1)]
        assert xs.min() == pytest.approx(-box_w / 2, abs=2 * step)
        assert xs.max() == pytest.approx(box_w / 2, abs=2 * step)
        assert ys.min() == pytest.approx(-box_h / 2, abs=2 * step)
        assert ys.max() == pytest.approx(box_h / 2, abs=2 * step)


def test_rendered_shapes_fill_their_boxes():
    """The pixels the shapes change lie in their boxes; a lone shape reaches all four sides."""
    num_single = 0
    for index in range(60):
        image, boxes, _ = render_shapes_image(index)
        # the background alone: it is drawn first, from the start of the same random stream
        rng = np.random.default_rng([0, synthetic.SPLIT_IDS["train"], index])
        background = np.rint(np.clip(synthetic._background(rng, 128), 0, 1) * 255)
        changed = (np.abs(image - background) > 12).any(0)  # (H, W)
        inside = np.zeros((128, 128), bool)
        for x1, y1, x2, y2 in boxes.tolist():
            inside[
                max(int(y1) - 1, 0) : math.ceil(y2) + 1, max(int(x1) - 1, 0) : math.ceil(x2) + 1
            ] = True
        assert not (changed & ~inside).any(), f"image {index}: drawn outside the boxes"
        if len(boxes) == 1:
            num_single += 1
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            drawn = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)
            np.testing.assert_allclose(drawn, boxes[0], atol=1.0)
    assert num_single >= 3


def test_four_classes_include_the_cross():
    dataset = ShapesDataset(80, num_classes=4)
    assert dataset.class_names == list(SHAPE_NAMES) and dataset.class_names[3] == "cross"
    labels = torch.cat([dataset.raw(i)[2] for i in range(80)])
    assert set(labels.tolist()) == {0, 1, 2, 3}


def test_collate_returns_lists():
    dataset = ShapesDataset(3)
    images, targets = collate([dataset[0], dataset[1], dataset[2]])
    assert isinstance(images, list) and isinstance(targets, list)
    assert len(images) == len(targets) == 3 and torch.equal(images[2], dataset[2][0])
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=collate)
    images, targets = next(iter(loader))
    assert len(images) == 2 and targets[1]["image_id"] == 1


def test_transforms_are_applied():
    def flip(image, target):
        return image.flip(-1), {**target, "flipped": True}

    plain, flipped = ShapesDataset(2)[1], ShapesDataset(2, transforms=flip)[1]
    assert torch.equal(flipped[0], plain[0].flip(-1)) and flipped[1]["flipped"]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"split": "dev"}, "split"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 5}, "num_classes"),
        ({"image_size": 16}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"num_images": -2}, "num_images"),
    ],
)
def test_bad_arguments_raise(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ShapesDataset(**{"num_images": 4, **kwargs})


def test_index_out_of_range():
    with pytest.raises(IndexError):
        ShapesDataset(3)[3]
    with pytest.raises(ValueError, match="index"):
        render_shapes_image(-1)


def test_cache_round_trip(tmp_path, monkeypatch):
    first = cached_shapes_dataset(12, seed=4, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".pt"]  # one file, no temporary left behind
    assert "n12" in files[0].name and "seed4" in files[0].name
    assert files[0].stat().st_mode & 0o044  # readable by others, as files usually are

    def must_not_draw(*args, **kwargs):
        raise AssertionError("the second load must read the cache")

    monkeypatch.setattr(synthetic, "generate_shapes", must_not_draw)
    second = cached_shapes_dataset(12, seed=4, cache_dir=tmp_path)
    fresh = ShapesDataset(12, seed=4)
    for i in range(12):
        fresh_image, fresh_target = fresh[i]
        for dataset in (first, second):
            image, target = dataset[i]
            assert torch.equal(image, fresh_image)
            assert torch.equal(target["boxes"], fresh_target["boxes"])
            assert torch.equal(target["labels"], fresh_target["labels"])
    # a different argument is a different file
    monkeypatch.undo()
    cached_shapes_dataset(5, seed=4, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_stale_or_broken_cache_is_drawn_again(tmp_path):
    cached_shapes_dataset(4, cache_dir=tmp_path)
    path = next(tmp_path.iterdir())
    data = torch.load(path, weights_only=True)
    data["images"][0] = 255 - data["images"][0]  # as if drawn by an older version of the code
    torch.save(data, path)
    with pytest.warns(UserWarning, match="drawn by other code"):
        dataset = cached_shapes_dataset(4, cache_dir=tmp_path)
    assert torch.equal(dataset[0][0], ShapesDataset(4)[0][0])
    assert torch.equal(torch.load(path, weights_only=True)["images"][0], dataset.raw(0)[0])

    data = torch.load(path, weights_only=True)
    data["fingerprint"] = "older code"  # every image may still look the same
    torch.save(data, path)
    with pytest.warns(UserWarning, match="drawn by other code"):
        cached_shapes_dataset(4, cache_dir=tmp_path)
    assert torch.load(path, weights_only=True)["fingerprint"] == synthetic._code_fingerprint()

    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        dataset = cached_shapes_dataset(4, cache_dir=tmp_path)
    assert torch.equal(dataset[3][0], ShapesDataset(4)[3][0])


def test_cache_file_loads_with_weights_only(tmp_path):
    cached_shapes_dataset(3, cache_dir=tmp_path)
    data = torch.load(next(tmp_path.iterdir()), weights_only=True)
    assert data["images"].dtype == torch.uint8 and data["images"].shape == (3, 3, 128, 128)
    assert data["num_boxes"].sum() == len(data["boxes"]) == len(data["labels"])
    assert data["fingerprint"] == synthetic._code_fingerprint()


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RETINA_LESSONS_CACHE", str(tmp_path / "here"))
    assert synthetic.default_cache_dir() == tmp_path / "here"


def test_committed_heldout_split_equals_a_fresh_one():
    coco = json.loads((HELDOUT_DIR / "annotations.json").read_text())
    assert coco["info"]["seed"] == synthetic.HELDOUT_SEED != 0  # not a training seed
    assert coco["info"]["generator_version"] == synthetic.GENERATOR_VERSION
    assert [c["name"] for c in coco["categories"]] == list(CLASS_NAMES)
    assert len(coco["images"]) == synthetic.HELDOUT_NUM_IMAGES
    dataset = synthetic.heldout_dataset()
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for i, entry in enumerate(coco["images"]):
        image, boxes, labels = dataset.raw(i)
        anns = by_image.get(entry["id"], [])
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
        torch.testing.assert_close(xyxy, boxes, atol=2e-3, rtol=0)
        assert [a["category_id"] - 1 for a in anns] == labels.tolist()
        png = np.asarray(Image.open(HELDOUT_DIR / entry["file_name"]).convert("RGB"))
        difference = np.abs(png.transpose(2, 0, 1).astype(int) - image.numpy().astype(int))
        # equal, up to a last-bit rounding difference on another machine's maths library
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_heldout_folder_is_small():
    size = sum(f.stat().st_size for f in HELDOUT_DIR.rglob("*") if f.is_file())
    assert size < 3_000_000
