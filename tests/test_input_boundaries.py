"""Table-driven tests of the model's input boundary: images and targets (retina_lessons.validation).

One row per case: the input, the exception, and the words its message must contain (the argument
and the item named, and the form that was expected). Legitimate edge cases follow: they just work.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from retina_lessons import RetinaNet
from retina_lessons.config import CLASSROOM
from retina_lessons.validation import check_boxes, check_images, check_labels, check_targets

# A model small enough to build per test module; the boundaries are the model's, not the preset's.
MODEL = RetinaNet(CLASSROOM.replace(backbone_width=0.125, fpn_channels=32))


def image(h=64, w=64, dtype=torch.float32):
    return torch.rand(3, h, w, dtype=dtype)


def target(boxes, labels):
    return {"boxes": boxes, "labels": labels}


BOX = torch.tensor([[10.0, 10.0, 30.0, 40.0]])
LABEL = torch.tensor([1])
NAN_IMAGE = image()
NAN_IMAGE[1, 5, 7] = float("nan")
INF_IMAGE = image()
INF_IMAGE[0, 0, 0] = float("inf")

# (images, targets or None for detect, words the message must contain)
IMAGE_CASES = {
    "uint8 image": ([torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)], None,
                    ["images[0]", "floating-point image in [0, 1]", "torch.uint8", ".float() / 255"]),
    "int64 image": ([torch.zeros(3, 8, 8, dtype=torch.int64)], None, ["images[0]", "torch.int64", "/ 255"]),
    "bool image": ([torch.zeros(3, 8, 8, dtype=torch.bool)], None, ["images[0]", "floating-point"]),
    "NaN pixel": ([image(), NAN_IMAGE], None, ["images[1]", "1 non-finite", "channel 1, row 5, column 7",
                                              "expected finite values"]),
    "inf pixel": ([INF_IMAGE], None, ["images[0]", "non-finite", "row 0, column 0"]),
    "NaN pixel in training": ([NAN_IMAGE], [target(BOX, LABEL)], ["images[0]", "non-finite"]),
    "numpy image": ([np.zeros((3, 8, 8), dtype=np.float32)], None, ["images[0]", "torch.Tensor", "ndarray"]),
    "HWC image": ([torch.rand(64, 64, 3)], None, ["images[0]", "expected shape (3, H, W)", "(64, 64, 3)"]),
    "grey image": ([torch.rand(1, 64, 64)], None, ["images[0]", "(3, H, W)"]),
    "batched tensor": (torch.rand(2, 3, 64, 64), None, ["images", "list of (3, H, W) tensors", "one tensor"]),
    "a string": ("image.png", None, ["images", "non-empty list"]),
    "empty list": ([], None, ["images", "non-empty list"]),
    "zero-width image": ([torch.rand(3, 8, 0)], None, ["images[0]", "(3, H, W)"]),
    "thin strip": ([torch.rand(3, 1, 200)], None, ["images[0]", "1x200", "shorter side", "at least 2 pixels"]),
    "thin strip in training": ([image(), torch.rand(3, 200, 1)], [target(BOX, LABEL), target(BOX, LABEL)],
                               ["images[1]", "200x1", "at least 2 pixels"]),
}

TARGET_CASES = {
    "float boxes x2 < x1": ([target(torch.tensor([[30.0, 10, 20, 40]]), LABEL)],
                            ["targets[0]['boxes'][0]", "x1 < x2 and y1 < y2"]),
    "NaN box": ([target(torch.tensor([[10.0, 10, 20, math.nan]]), LABEL)], ["targets[0]['boxes'][0]", "finite"]),
    "inf box": ([target(torch.tensor([[10.0, 10, math.inf, 20]]), LABEL)], ["targets[0]['boxes'][0]", "finite"]),
    "box outside the image": ([target(torch.tensor([[70.0, 10, 90, 40]]), LABEL)],
                              ["targets[0]['boxes'][0]", "wholly outside the 64x64 image", "inside it"]),
    "box above the image": ([target(torch.tensor([[10.0, -40, 20, -5]]), LABEL)],
                            ["targets[0]['boxes'][0]", "wholly outside"]),
    "flat box list": ([target(torch.tensor([10.0, 10, 20, 40]), LABEL)], ["targets[0]['boxes']", "(M, 4)"]),
    "boxes as a string": ([target("10 10 20 40", LABEL)], ["targets[0]['boxes']", "shape (M, 4)", "str"]),
    "ragged box list": ([target([[10, 10, 20, 40], [1, 2]], torch.tensor([0, 1]))],
                        ["targets[0]['boxes']", "ragged"]),
    "bool boxes": ([target(torch.ones(1, 4, dtype=torch.bool), LABEL)], ["targets[0]['boxes']", "real"]),
    "label too large": ([target(BOX, torch.tensor([3]))], ["targets[0]['labels'][0] = 3", "[0, 3)"]),
    "negative label": ([target(BOX, torch.tensor([-1]))], ["targets[0]['labels'][0] = -1", "[0, 3)"]),
    "fractional label": ([target(BOX, torch.tensor([1.5]))], ["targets[0]['labels'][0] = 1.5", "integer class"]),
    "NaN label": ([target(BOX, torch.tensor([math.nan]))], ["targets[0]['labels'][0]", "integer class"]),
    "bool label": ([target(BOX, torch.tensor([True]))], ["targets[0]['labels']", "integer class indices"]),
    "two labels, one box": ([target(BOX, torch.tensor([0, 1]))], ["targets[0]['labels']", "one label per box"]),
    "labels missing": ([{"boxes": BOX}], ["targets[0]", "keys 'boxes' and 'labels'"]),
    "target not a dict": ([[BOX, LABEL]], ["targets[0]", "dict"]),
    "too few targets": ([], ["targets", "one target per image (1)", "got 0"]),
    "targets as a dict": ({"boxes": BOX, "labels": LABEL}, ["targets", "list of dicts"]),
}


def _message(call):
    with pytest.raises(ValueError) as error:
        call()
    return str(error.value)


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_bad_images_are_named(case):
    images, targets, words = IMAGE_CASES[case]
    call = (lambda: MODEL.detect(images)) if targets is None else (lambda: MODEL.loss(images, targets))
    message = _message(call)
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


@pytest.mark.parametrize("case", TARGET_CASES)
def test_bad_targets_are_named(case):
    targets, words = TARGET_CASES[case]
    message = _message(lambda: MODEL.loss([image()], targets))
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_checks_run_before_any_work(monkeypatch):
    """A bad target in the last image is refused before the network runs at all."""
    calls = []
    monkeypatch.setattr(MODEL, "forward", lambda batch: calls.append(batch) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(ValueError, match=r"targets\[2\]"):
        MODEL.loss([image()] * 3, [target(BOX, LABEL)] * 2 + [target(BOX, torch.tensor([7]))])
    assert not calls


# ----------------------------------------------------------------------------- what just works


def test_numpy_float64_and_integer_targets_give_the_float32_loss():
    images = [image()]
    MODEL.train()
    expected = MODEL.loss(images, [target(BOX, LABEL)])
    for boxes, labels in [
        (BOX.double(), LABEL),  # torch.from_numpy(...) gives float64
        (BOX.numpy().astype(np.float64), LABEL.numpy()),
        (BOX.to(torch.int32), LABEL.to(torch.int32)),
        (BOX.tolist(), LABEL.tolist()),
        (BOX, torch.tensor([1.0])),  # integral float labels
        (BOX.half(), LABEL.to(torch.uint8)),
    ]:
        got = MODEL.loss(images, [target(boxes, labels)])
        for name in expected:
            torch.testing.assert_close(got[name], expected[name])


def test_float64_image_is_converted_to_the_models_dtype():
    batch = [image()]
    detections = MODEL.eval().detect([batch[0].double()])
    expected = MODEL.detect(batch)
    torch.testing.assert_close(detections[0]["scores"], expected[0]["scores"])
    assert detections[0]["boxes"].dtype == torch.float32


def test_an_image_without_boxes_and_an_empty_list_of_boxes():
    losses = MODEL.loss([image(), image()], [target(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)),
                                             target(torch.tensor([]), [])])
    assert all(torch.isfinite(value) for value in losses.values())


def test_a_box_crossing_the_border_is_clipped_not_refused():
    crossing = torch.tensor([[-5.0, 50.0, 20.0, 70.0]])  # 64 x 64 image: x1 < 0, y2 > 64
    clipped = check_boxes(crossing, "boxes", image_size=(64, 64))
    assert clipped.tolist() == [[0.0, 50.0, 20.0, 64.0]]
    picture = image()
    MODEL.train()
    torch.testing.assert_close(MODEL.loss([picture], [target(crossing, LABEL)]),
                               MODEL.loss([picture], [target(clipped, LABEL)]))


def test_unscaled_images_warn_once_per_call():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_images([image() * 255, image() * 255])
    assert len(caught) == 1
    assert "images[0] has values in [0" in str(caught[0].message) and "divide by 255" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images([image(), image() * 1.2 - 0.1])  # resampling overshoot is fine


def test_check_targets_does_not_change_its_input():
    original = target(BOX.double(), LABEL.to(torch.int32))
    (checked,) = check_targets([original], 1, 3, image_sizes=[(64, 64)])
    assert original["boxes"].dtype == torch.float64 and original["labels"].dtype == torch.int32
    assert checked["boxes"].dtype == torch.float32 and checked["labels"].dtype == torch.int64


def test_check_labels_names_its_argument():
    with pytest.raises(ValueError, match=r"my_labels\[1\] = 2.5"):
        check_labels(np.array([1.0, 2.5]), 3, 2, "my_labels")


def test_is_real_takes_python_and_numpy_numbers_but_not_bools():
    from retina_lessons.validation import is_real

    assert is_real(1) and is_real(0.5) and is_real(np.float32(2)) and is_real(np.int64(3))
    assert not is_real(True) and not is_real("1") and not is_real(None)
