"""Table-driven tests of the evaluation boundary (coco_ap and friends): bad input is named, never
ranked, truncated or counted silently."""

import math

import pytest
import torch

from retina_lessons.evaluation import (
    classify_detections,
    coco_ap,
    match_detections,
    precision_recall,
)

NAN = math.nan
BOXES = torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 100]])


def dets(**changes):
    return [{"boxes": BOXES, "scores": torch.tensor([0.9, 0.4]), "labels": torch.tensor([0, 1]), **changes}]


def gts(**changes):
    return [{"boxes": BOXES, "labels": torch.tensor([0, 1]), **changes}]


# (detections, targets, extra kwargs, words the message must contain)
CASES = {
    "NaN score": (dets(scores=torch.tensor([0.9, NAN])), gts(), {}, ["detections[0]['scores'][1] = nan",
                                                                     "expected a finite number"]),
    "inf score": (dets(scores=torch.tensor([math.inf, 0.4])), gts(), {}, ["detections[0]['scores'][0] = inf"]),
    "fractional detection label": (dets(labels=torch.tensor([0.0, 1.5])), gts(), {},
                                   ["detections[0]['labels'][1] = 1.5", "integer class id"]),
    "fractional gt label": (dets(), gts(labels=torch.tensor([0.5, 1.0])), {},
                            ["targets[0]['labels'][0] = 0.5", "integer class id"]),
    "NaN gt label": (dets(), gts(labels=torch.tensor([NAN, 1.0])), {}, ["targets[0]['labels'][0] = nan"]),
    "NaN area": (dets(), gts(area=torch.tensor([NAN, 100.0])), {}, ["targets[0]['area'][0] = nan",
                                                                   "a finite number >= 0"]),
    "negative area": (dets(), gts(area=torch.tensor([1600.0, -1.0])), {}, ["targets[0]['area'][1] = -1.0"]),
    "area of the wrong length": (dets(), gts(area=torch.tensor([1600.0])), {}, ["targets[0]['area']", "(2,)"]),
    "empty IoU thresholds": (dets(), gts(), {"iou_thresholds": []}, ["iou_thresholds", "at least one"]),
    "NaN IoU threshold": (dets(), gts(), {"iou_thresholds": [0.5, NAN]}, ["iou_thresholds=nan", "[0, 1]"]),
    "IoU threshold above 1": (dets(), gts(), {"iou_thresholds": [1.5]}, ["iou_thresholds=1.5"]),
    "no max_dets": (dets(), gts(), {"max_dets": ()}, ["max_dets=()", "positive integers"]),
    "max_dets True": (dets(), gts(), {"max_dets": (True,)}, ["max_dets=(True,)", "positive integers"]),
    "missing scores": ([{"boxes": BOXES, "labels": torch.tensor([0, 1])}], gts(), {}, ["detections[0]", "'scores'"]),
    "NaN box": (dets(boxes=torch.tensor([[10.0, 10, 50, NAN], [60, 60, 90, 100]])), gts(), {},
                ["detections[0]['boxes']", "finite"]),
    "one list short": (dets() * 2, gts(), {}, ["one entry per image", "2 detections and 1 targets"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_evaluation_input_is_named(case):
    detections, targets, kwargs, words = CASES[case]
    with pytest.raises(ValueError) as error:
        coco_ap(detections, targets, **kwargs)
    for word in words:
        assert word in str(error.value), f"{case}: {word!r} not in {error.value}"


def test_the_other_entry_points_share_the_checks():
    with pytest.raises(ValueError, match=r"iou_threshold=nan: expected an IoU threshold"):
        match_detections(BOXES, torch.tensor([0.9, 0.4]), BOXES, iou_threshold=NAN)
    with pytest.raises(ValueError, match=r"iou_threshold=nan"):
        precision_recall(dets(), gts(), iou_threshold=NAN)
    with pytest.raises(ValueError, match=r"detections\[0\]\['scores'\]\[1\] = nan"):
        classify_detections(dets(scores=torch.tensor([0.9, NAN])), gts())


def test_integral_float_labels_and_an_explicit_area_are_fine():
    expected = coco_ap(dets(), gts())
    assert expected["AP50"] == pytest.approx(1.0)
    assert coco_ap(dets(labels=torch.tensor([0.0, 1.0])), gts(labels=torch.tensor([0.0, 1.0]))) == expected
    assert coco_ap(dets(), gts(area=torch.tensor([1600.0, 1200.0]))) == expected
