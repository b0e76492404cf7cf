"""Tests for retina_lessons.sparse_shapes: few, small, separate shapes, drawn reproducibly."""

import numpy as np
import pytest
import torch

from retina_lessons.sparse_shapes import (
    SPARSE_IMAGE_SIZE,
    SPARSE_MAX_OBJECT_SIZE,
    SPARSE_MAX_OBJECTS,
    SPARSE_MIN_OBJECT_SIZE,
    SPARSE_NUM_CLASSES,
    render_sparse_scene,
    sparse_scenes,
)


def test_a_scene_is_a_pure_function_of_seed_split_and_index():
    first, again = render_sparse_scene(5), render_sparse_scene(5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(render_sparse_scene(5, split="val")[0], first[0])
    assert not np.array_equal(render_sparse_scene(6)[0], first[0])


def test_few_small_separate_shapes():
    counts = []
    for index in range(40):
        image, boxes, labels = render_sparse_scene(index)
        assert image.dtype == np.uint8 and image.shape == (3, SPARSE_IMAGE_SIZE, SPARSE_IMAGE_SIZE)
        assert boxes.shape == (len(labels), 4) and 1 <= len(labels) <= SPARSE_MAX_OBJECTS
        assert ((labels >= 0) & (labels < SPARSE_NUM_CLASSES)).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= SPARSE_IMAGE_SIZE).all()
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert (sides >= SPARSE_MIN_OBJECT_SIZE - 1e-3).all() and (sides <= SPARSE_MAX_OBJECT_SIZE + 1e-3).all()
        if len(boxes) == 2:  # boxes do not touch
            a, b = boxes
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
        counts.append(len(labels))
    assert set(counts) == {1, 2}


def test_sparse_scenes_stacks_the_images():
    images, boxes, labels = sparse_scenes(3, "val", image_size=64, num_classes=2, max_objects=1,
                                          min_object_size=8, max_object_size=16)
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert all(len(b) == len(lab) == 1 for b, lab in zip(boxes, labels))
    assert all(int(lab.max()) < 2 for lab in labels)
    torch.testing.assert_close(images[1] * 255, torch.from_numpy(
        render_sparse_scene(1, 0, "val", 64, 2, 1, 8, 16)[0]).float())


@pytest.mark.parametrize("kwargs, name", [({"split": "holdout"}, "split"), ({"num_classes": 5}, "num_classes"),
                                          ({"max_object_size": 200}, "max_object_size"), ({"index": -1}, "index"),
                                          ({"max_objects": 0}, "max_objects")])
def test_bad_arguments_are_named(kwargs, name):
    kwargs = {"index": 0, **kwargs}
    with pytest.raises(ValueError, match=name):
        render_sparse_scene(**kwargs)


def test_scenes_drawn_from_an_offset_are_the_same_scenes():
    images, boxes, labels = sparse_scenes(5)
    tail_images, tail_boxes, tail_labels = sparse_scenes(2, first=3)
    torch.testing.assert_close(tail_images, images[3:])
    for got, expected in zip(tail_boxes + tail_labels, boxes[3:] + labels[3:]):
        torch.testing.assert_close(got, expected)
