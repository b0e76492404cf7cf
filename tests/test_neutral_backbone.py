"""Tests for retina_lessons.neutral_backbone: the crops, the pretraining, the shipped frozen backbone."""

import pytest
import torch

from retina_lessons.config import IMAGENET_MEAN, IMAGENET_STD
from retina_lessons.neutral_backbone import (
    CROP_SIZE,
    NEUTRAL_BACKBONE,
    load_neutral_backbone,
    pretrain,
    shape_crops,
)
from retina_lessons.sparse_shapes import sparse_scenes
from retina_lessons.transform import normalize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shape_crops_one_per_shape_and_background_labelled_k():
    images, boxes, labels = sparse_scenes(6, "test")
    crops, classes = shape_crops(images, boxes, labels, num_classes=4)
    num_shapes = sum(len(lab) for lab in labels)
    assert crops.shape[1:] == (3, CROP_SIZE, CROP_SIZE) and len(crops) == len(classes)
    assert classes[:len(labels[0])].tolist() == labels[0].tolist()  # the first image's shapes come first
    assert int((classes < 4).sum()) == num_shapes and int((classes == 4).sum()) > 0
    # a shape's crop is cut from its image at native scale
    (x1, y1, x2, y2), crop = boxes[0][0].tolist(), crops[0]
    assert any(torch.equal(crop, images[0][:, y:y + CROP_SIZE, x:x + CROP_SIZE])
               for y in range(max(0, int(y2) - CROP_SIZE), int(y1) + 1)
               for x in range(max(0, int(x2) - CROP_SIZE), int(x1) + 1))


def test_pretraining_lowers_the_cross_entropy():
    images, boxes, labels = sparse_scenes(10, "test")
    crops, classes = shape_crops(images, boxes, labels, num_classes=4)
    lines = []
    backbone, classifier = pretrain(crops, classes, steps=40, batch_size=16, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("step 0: loss") and not backbone.training
    with torch.no_grad():
        logits = classifier(backbone(normalize(crops, IMAGENET_MEAN, IMAGENET_STD))[-1].mean((2, 3)))
    loss = torch.nn.functional.cross_entropy(logits, classes)
    assert loss < torch.log(torch.tensor(5.0))  # better than chance over K + 1 = 5 classes


def test_the_shipped_backbone_loads_frozen():
    backbone = load_neutral_backbone(NEUTRAL_BACKBONE)
    assert not any(p.requires_grad for p in backbone.parameters())
    c3, c4, c5 = backbone(torch.zeros(1, 3, 64, 64))
    assert c3.shape[-1] == 8 and c4.shape[-1] == 4 and c5.shape[-1] == 2


def test_the_command_refuses_bad_arguments_before_pretraining(tmp_path):
    from retina_lessons import neutral_backbone

    with pytest.raises(SystemExit):
        neutral_backbone.main(["--steps", "0", "--out", str(tmp_path / "b.pt")])
    with pytest.raises(SystemExit):
        neutral_backbone.main(["--out", str(tmp_path / "no" / "such" / "b.pt")])
    assert not any(tmp_path.iterdir())  # nothing drawn, trained or written
