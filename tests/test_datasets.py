"""Tests for retina_lessons.datasets: COCO and VOC loaders, bad annotations, hflip, the photo."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from retina_lessons import datasets
from retina_lessons.datasets import (
    VOC_CLASSES,
    CocoDetection,
    VocDetection,
    collate,
    dataset_available,
    download_instructions,
    hflip,
)
from retina_lessons.shipped import HELDOUT_DIR, load_grace_hopper
from retina_lessons.synthetic import CLASS_NAMES, heldout_dataset

# ----------------------------------------------------------------------------- COCO layout


def write_coco(tmp_path, change=None):
    """Two small images and three boxes; `change(coco)` edits the JSON before it is written."""
    root = tmp_path / "coco"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, (width, height) in {"a.png": (40, 30), "b.png": (50, 20)}.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / name)
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 50, "height": 20},
        ],
        "categories": [
            {"id": 7, "name": "dog"},
            {"id": 3, "name": "cat"},
        ],  # ids need not be 0..K-1
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 7,
                "bbox": [1, 2, 10, 5],
                "area": 50,
                "iscrowd": 0,
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 3,
                "bbox": [20, 10, 15, 15],
                "area": 225,
                "iscrowd": 0,
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 3,
                "bbox": [0, 0, 50, 20],
                "area": 1000,
                "iscrowd": 0,
            },
        ],
    }
    if change is not None:
        change(coco)
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps(coco))
    return root, annotation_file


def add_annotation(**fields):
    def change(coco):
        ann = {
            "id": 99,
            "image_id": 1,
            "category_id": 3,
            "bbox": [5, 5, 4, 4],
            "area": 16,
            "iscrowd": 0,
        }
        coco["annotations"].append({**ann, **fields})

    return change


def test_coco_targets(tmp_path):
    dataset = CocoDetection(*write_coco(tmp_path))
    assert len(dataset) == 2 and dataset.num_dropped == 0
    assert dataset.class_names == ["cat", "dog"] and dataset.category_ids == [3, 7]
    image, target = dataset[0]
    assert image.shape == (3, 30, 40) and image.dtype == torch.float32 and image.max() <= 1
    expected = Image.open(tmp_path / "coco" / "a.png")
    torch.testing.assert_close(image, torch.from_numpy(np.array(expected)).permute(2, 0, 1) / 255)
    torch.testing.assert_close(target["boxes"], torch.tensor([[1.0, 2, 11, 7], [20, 10, 35, 25]]))
    assert target["boxes"].dtype == torch.float32
    assert target["labels"].tolist() == [1, 0] and target["labels"].dtype == torch.int64
    assert target["image_id"] == 1 and dataset[1][1]["image_id"] == 2


def test_image_without_boxes_is_kept(tmp_path):
    dataset = CocoDetection(*write_coco(tmp_path, lambda coco: coco["annotations"].pop()))
    _, target = dataset[1]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


BAD_ANNOTATIONS = {
    "zero width (x2 == x1)": (add_annotation(bbox=[5, 5, 0, 4]), "id=99", "x1 < x2"),
    "negative width (x2 < x1)": (add_annotation(bbox=[5, 5, -3, 4]), "id=99", "x1 < x2"),
    "zero height (y2 == y1)": (add_annotation(bbox=[5, 5, 4, 0]), "id=99", "y1 < y2"),
    "right of the image": (add_annotation(bbox=[35, 5, 10, 4]), "id=99", "outside"),
    "above the image": (add_annotation(bbox=[5, -6, 4, 4]), "id=99", "outside"),
    "not finite": (add_annotation(bbox=[5, 5, float("nan"), 4]), "id=99", "finite"),
    "unknown category": (add_annotation(category_id=5), "id=99", "category_id=5"),
    "unknown image": (add_annotation(image_id=9), "id=99", "image_id=9"),
    "bbox of three numbers": (add_annotation(bbox=[1, 2, 3]), "id=99", "bbox"),
    "bbox of strings": (add_annotation(bbox=["1", 2, 3, 4]), "id=99", "bbox"),
}


@pytest.mark.parametrize("case", BAD_ANNOTATIONS)
def test_bad_coco_annotation_raises_naming_file_and_annotation(tmp_path, case):
    change, annotation, reason = BAD_ANNOTATIONS[case]
    root, annotation_file = write_coco(tmp_path, change)
    with pytest.raises(ValueError, match="instances.json") as error:
        CocoDetection(root, annotation_file)
    assert annotation in str(error.value) and reason in str(error.value)
    assert "index 3" in str(error.value)  # its position in the file, too


@pytest.mark.parametrize("case", BAD_ANNOTATIONS)
def test_bad_coco_annotation_dropped_and_counted(tmp_path, case):
    change, annotation, _ = BAD_ANNOTATIONS[case]
    with pytest.warns(UserWarning, match="dropped 1 invalid") as record:
        dataset = CocoDetection(*write_coco(tmp_path, change), on_invalid="drop")
    assert annotation in str(record[0].message)
    assert dataset.num_dropped == 1 and annotation in dataset.dropped[0]
    assert sum(len(dataset[i][1]["boxes"]) for i in range(len(dataset))) == 3  # the good ones


def test_missing_image_file(tmp_path):
    root, annotation_file = write_coco(tmp_path)
    (root / "b.png").unlink()
    with pytest.raises(ValueError, match=r"instances\.json: image id=2 \(b\.png\).*missing"):
        CocoDetection(root, annotation_file)
    with pytest.warns(UserWarning, match="dropped 1 invalid"):
        dataset = CocoDetection(root, annotation_file, on_invalid="drop")
    assert (
        len(dataset) == 1
        and dataset.num_dropped == 1
        and "1 annotations dropped" in dataset.dropped[0]
    )


def test_several_bad_annotations_are_all_counted(tmp_path):
    def change(coco):
        add_annotation(bbox=[5, 5, 0, 4])(coco)
        add_annotation(id=100, category_id=42)(coco)

    with pytest.warns(UserWarning, match="dropped 2 invalid"):
        dataset = CocoDetection(*write_coco(tmp_path, change), on_invalid="drop")
    assert dataset.num_dropped == 2 and "id=100" in dataset.dropped[1]


def test_slight_overhang_is_clipped_not_dropped(tmp_path):
    root, annotation_file = write_coco(tmp_path, add_annotation(bbox=[30.5, -0.5, 10.3, 4]))
    _, target = CocoDetection(root, annotation_file)[0]
    torch.testing.assert_close(target["boxes"][-1], torch.tensor([30.5, 0.0, 40.0, 3.5]))


def test_crowd_annotations_skipped_and_counted(tmp_path):
    files = write_coco(tmp_path, add_annotation(iscrowd=1))
    dataset = CocoDetection(*files)
    assert dataset.num_crowd == 1 and dataset.num_dropped == 0 and len(dataset[0][1]["boxes"]) == 2
    assert len(CocoDetection(*files, include_crowd=True)[0][1]["boxes"]) == 3


def test_not_a_coco_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="x.json"):
        CocoDetection(tmp_path, path)


def test_image_size_differs_from_its_annotation(tmp_path):
    def change(coco):
        coco["images"][0]["width"] = 41

    dataset = CocoDetection(*write_coco(tmp_path, change))
    with pytest.raises(ValueError, match=r"a\.png: image is 40x30.*41x30"):
        dataset[0]


def test_bad_options(tmp_path):
    files = write_coco(tmp_path)
    with pytest.raises(ValueError, match="on_invalid"):
        CocoDetection(*files, on_invalid="ignore")
    with pytest.raises(ValueError, match="hflip_prob"):
        CocoDetection(*files, hflip_prob=1.5)


# ----------------------------------------------------------------------------- the held-out split


def test_coco_loader_reads_the_committed_heldout_split():
    dataset = CocoDetection(HELDOUT_DIR, HELDOUT_DIR / "annotations.json")
    assert dataset.class_names == list(CLASS_NAMES) and dataset.num_dropped == 0
    fresh = heldout_dataset()
    assert len(dataset) == len(fresh)
    for index in (0, 1, 2, len(dataset) - 1):
        image, target = dataset[index]
        fresh_image, fresh_target = fresh[index]
        torch.testing.assert_close(image, fresh_image, atol=1 / 255 + 1e-6, rtol=0)
        torch.testing.assert_close(target["boxes"], fresh_target["boxes"], atol=2e-3, rtol=0)
        assert torch.equal(target["labels"], fresh_target["labels"])
        assert target["image_id"] == index + 1


def test_heldout_split_agrees_with_pycocotools():
    from pycocotools.coco import COCO

    coco = COCO(str(HELDOUT_DIR / "annotations.json"))
    dataset = CocoDetection(HELDOUT_DIR, HELDOUT_DIR / "annotations.json")
    assert sorted(coco.getImgIds()) == [record[3] for record in dataset.records]
    for path, _, _, image_id, boxes, labels in dataset.records:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        xywh = torch.tensor([a["bbox"] for a in anns]).reshape(-1, 4)
        torch.testing.assert_close(boxes[:, 2:] - boxes[:, :2], xywh[:, 2:], atol=1e-4, rtol=0)
        assert [dataset.category_ids[k] for k in labels.tolist()] == [
            a["category_id"] for a in anns
        ]
        assert path.name == coco.loadImgs(image_id)[0]["file_name"].split("/")[-1]
    empty = sum(len(coco.getAnnIds(imgIds=i)) == 0 for i in coco.getImgIds())
    assert empty > 0  # the held-out split has images with no object


# ----------------------------------------------------------------------------- VOC layout

VOC_OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult>
<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"""


def write_voc(tmp_path, objects=None, size=(60, 40)):
    """A VOC2007-like folder with two images; `objects` replaces those of the first."""
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n")
    if objects is None:
        objects = [
            ("dog", 0, (1, 1, 20, 10)),
            ("person", 1, (5, 5, 30, 40)),
            ("cat", 0, (21, 11, 60, 40)),
        ]
    everything = {"000001": objects, "000002": [("car", 0, (10, 5, 50, 35))]}
    for name, objs in everything.items():
        Image.new("RGB", size, (128, 64, 32)).save(root / "JPEGImages" / f"{name}.jpg")
        body = "".join(VOC_OBJECT.format(name=n, difficult=d, box=b) for n, d, b in objs)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>"
        )
    return root


def test_voc_targets(tmp_path):
    dataset = VocDetection(write_voc(tmp_path), "trainval")
    assert len(dataset) == 2 and dataset.class_names == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    image, target = dataset[0]
    assert image.shape == (3, 40, 60)
    # VOC pixels are 1-based and inclusive: (1, 1, 20, 10) covers [0, 20] x [0, 10]
    torch.testing.assert_close(target["boxes"], torch.tensor([[0.0, 0, 20, 10], [20, 10, 60, 40]]))
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("cat")]
    assert dataset.num_difficult == 1 and dataset.num_dropped == 0
    assert dataset.ids == ["000001", "000002"] and dataset[1][1]["image_id"] == 1


def test_voc_difficult_objects_can_be_kept(tmp_path):
    dataset = VocDetection(write_voc(tmp_path), "trainval", include_difficult=True)
    assert dataset[0][1]["labels"].tolist() == [11, 14, 7] and dataset.num_difficult == 0


def test_voc_custom_class_list(tmp_path):
    objects = [("widget", 0, (1, 1, 20, 10))]
    dataset = VocDetection(write_voc(tmp_path, objects), class_names=["widget", "car"])
    assert dataset[0][1]["labels"].tolist() == [0] and dataset[1][1]["labels"].tolist() == [1]


BAD_VOC_OBJECTS = {
    "unknown class": (("unicorn", 0, (1, 1, 5, 5)), "unknown class 'unicorn'"),
    "xmax < xmin": (("dog", 0, (10, 1, 5, 5)), "x1 < x2"),
    "ymax < ymin": (("dog", 0, (1, 10, 5, 5)), "y1 < y2"),
    "outside the image": (("dog", 0, (1, 1, 70, 5)), "outside"),
    "not a number": (("dog", 0, (1, 1, "wide", 5)), "numeric"),
}


@pytest.mark.parametrize("case", BAD_VOC_OBJECTS)
def test_bad_voc_object_raises_naming_file_and_object(tmp_path, case):
    bad, reason = BAD_VOC_OBJECTS[case]
    root = write_voc(tmp_path, [("dog", 0, (1, 1, 20, 10)), bad])
    with pytest.raises(ValueError, match=r"Annotations/000001\.xml: object 1 ") as error:
        VocDetection(root)
    assert reason in str(error.value)
    with pytest.warns(UserWarning, match="dropped 1 invalid"):
        dataset = VocDetection(root, on_invalid="drop")
    assert dataset.num_dropped == 1 and "000001.xml: object 1" in dataset.dropped[0]
    assert dataset[0][1]["labels"].tolist() == [VOC_CLASSES.index("dog")]


@pytest.mark.parametrize("missing", ["JPEGImages/000002.jpg", "Annotations/000002.xml"])
def test_voc_missing_file(tmp_path, missing):
    root = write_voc(tmp_path)
    (root / missing).unlink()
    with pytest.raises(ValueError, match="000002.*missing"):
        VocDetection(root)
    with pytest.warns(UserWarning, match="dropped 1 invalid"):
        dataset = VocDetection(root, on_invalid="drop")
    assert len(dataset) == 1 and dataset.num_dropped == 1


def test_voc_broken_xml(tmp_path):
    root = write_voc(tmp_path)
    (root / "Annotations" / "000001.xml").write_text("<annotation><object>")
    with pytest.raises(ValueError, match=r"000001\.xml.*XML"):
        VocDetection(root)


def test_voc_missing_image_set_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="VOCtrainval_06-Nov-2007.tar"):
        VocDetection(tmp_path, "trainval")


# ----------------------------------------------------------------------------- flipping


def test_hflip_moves_boxes_with_the_pixels():
    image = torch.zeros(3, 4, 10)
    image[:, 0:2, 1:4] = 1  # the object covers columns 1..3, i.e. x in [1, 4]
    target = {"boxes": torch.tensor([[1.0, 0, 4, 2]]), "labels": torch.tensor([2]), "image_id": 5}
    flipped_image, flipped = hflip(image, target)
    torch.testing.assert_close(flipped["boxes"], torch.tensor([[6.0, 0, 9, 2]]))
    assert flipped_image[:, 0:2, 6:9].eq(1).all() and flipped_image.sum() == image.sum()
    assert flipped["labels"] is target["labels"] and flipped["image_id"] == 5
    assert torch.equal(target["boxes"], torch.tensor([[1.0, 0, 4, 2]]))  # input left alone


def test_hflip_twice_is_identity():
    image, target = heldout_dataset()[1]
    twice_image, twice = hflip(*hflip(image, target))
    assert torch.equal(twice_image, image)
    torch.testing.assert_close(twice["boxes"], target["boxes"])


def test_hflip_matches_torchvision():
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    image, target = heldout_dataset()[1]
    mine_image, mine = hflip(image, target)
    boxes = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=image.shape[-2:])
    torch.testing.assert_close(mine["boxes"], F.horizontal_flip(boxes).as_subclass(torch.Tensor))
    torch.testing.assert_close(mine_image, F.horizontal_flip(image))


def test_hflip_empty_and_bad_boxes():
    image, target = hflip(
        torch.rand(3, 8, 8), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}
    )
    assert target["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="boxes"):
        hflip(torch.rand(3, 8, 8), {"boxes": torch.zeros(4)})


def test_dataset_flips_are_seeded_and_change_with_the_epoch(tmp_path):
    root, annotation_file = write_coco(tmp_path)
    always = CocoDetection(root, annotation_file, hflip_prob=1.0)
    plain = CocoDetection(root, annotation_file)
    image, target = always[0]
    expected_image, expected = hflip(*plain[0])
    assert torch.equal(image, expected_image) and torch.equal(target["boxes"], expected["boxes"])

    heldout = CocoDetection(HELDOUT_DIR, HELDOUT_DIR / "annotations.json", hflip_prob=0.5, seed=1)
    flips = [heldout.is_flipped(i) for i in range(len(heldout))]
    assert 0.35 < np.mean(flips) < 0.65
    assert [heldout.is_flipped(i) for i in reversed(range(len(heldout)))][::-1] == flips
    again = CocoDetection(HELDOUT_DIR, HELDOUT_DIR / "annotations.json", hflip_prob=0.5, seed=1)
    assert [again.is_flipped(i) for i in range(len(again))] == flips
    heldout.set_epoch(1)
    assert [heldout.is_flipped(i) for i in range(len(heldout))] != flips
    assert not any(plain.is_flipped(i) for i in range(len(plain)))


def test_collate_keeps_images_of_different_sizes(tmp_path):
    dataset = CocoDetection(*write_coco(tmp_path))
    images, targets = collate([dataset[0], dataset[1]])
    assert [tuple(i.shape) for i in images] == [(3, 30, 40), (3, 20, 50)]
    assert [t["image_id"] for t in targets] == [1, 2]


# ----------------------------------------------------------------------------- the photo


def test_grace_hopper_boxes():
    image, target = load_grace_hopper()
    assert image.shape == (3, 600, 512) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    boxes = target["boxes"]
    assert boxes.dtype == torch.float32 and boxes.shape == (len(target["names"]), 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 512).all() and (boxes[:, 3] <= 600).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert {"person", "tie", "face"} <= set(target["names"])
    assert [target["class_names"][k] for k in target["labels"].tolist()] == target["names"]
    # the tie hangs below the face, and the face lies inside the person
    face, tie, person = (boxes[target["names"].index(n)] for n in ("face", "tie", "person"))
    assert tie[1] > face[3] and (face[:2] >= person[:2]).all() and (face[2:] <= person[2:]).all()


def test_grace_hopper_coco_ids_match_torchvision():
    from torchvision.models.detection import RetinaNet_ResNet50_FPN_Weights

    categories = RetinaNet_ResNet50_FPN_Weights.COCO_V1.meta["categories"]  # no download
    _, target = load_grace_hopper()
    for name, coco_id in zip(target["names"], target["coco_category_ids"].tolist(), strict=True):
        if coco_id >= 0:
            assert categories[coco_id] == name
        else:
            assert name not in categories
    assert target["coco_category_ids"][target["names"].index("tie")] == 32


# ----------------------------------------------------------------------------- getting the data


@pytest.mark.parametrize(
    "name, words",
    [
        ("coco", ["val2017.zip", "instances_val2017.json"]),
        ("voc", ["VOCtrainval_06-Nov-2007.tar", "VOCdevkit/VOC2007"]),
    ],
)
def test_download_instructions(tmp_path, name, words):
    text = download_instructions(name, tmp_path)
    assert str(tmp_path) in text and all(word in text for word in words)
    assert not dataset_available(name, tmp_path)


def test_dataset_available_once_laid_out(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text("{}")
    (tmp_path / "val2017").mkdir()
    assert dataset_available("coco", tmp_path)
    write_voc(tmp_path)
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt").write_text("000001\n")
    assert dataset_available("voc", tmp_path)


def test_data_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RETINA_LESSONS_DATA", str(tmp_path))
    assert datasets.default_data_root() == tmp_path
    assert str(tmp_path) in download_instructions("coco")


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="imagenet"):
        download_instructions("imagenet")
