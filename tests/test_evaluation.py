"""Tests of retina_lessons.evaluation against pycocotools' COCOeval and hand-computed cases."""

import contextlib
import io

import matplotlib
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from retina_lessons.evaluation import (
    AREA_RANGES,
    BACKGROUND_FP,
    DUPLICATE,
    FP_REASONS,
    IOU_THRESHOLDS,
    NOT_FP,
    POOR_LOCALISATION,
    RECALL_THRESHOLDS,
    UNMATCHED,
    WRONG_CLASS,
    Classified,
    classify_detections,
    coco_accumulate,
    coco_ap,
    interpolated_ap,
    interpolated_precision,
    match_detections,
    plot_pr_curves,
    precision_recall,
    precision_recall_at,
)

matplotlib.use("Agg")

STAT_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
IMAGE_W, IMAGE_H = 640, 480


def random_boxes(num_boxes: int, g: torch.Generator) -> torch.Tensor:
    """(num_boxes, 4) xyxy boxes with sides from 4 to 300 px: small, medium and large."""
    wh = torch.exp(torch.empty(num_boxes, 2).uniform_(np.log(4), np.log(300), generator=g))
    wh = torch.minimum(wh, torch.tensor([IMAGE_W - 1.0, IMAGE_H - 1.0]))
    x1y1 = torch.rand(num_boxes, 2, generator=g) * (torch.tensor([IMAGE_W, IMAGE_H]) - wh)
    return torch.cat([x1y1, x1y1 + wh], dim=1)


def jitter(boxes: torch.Tensor, g: torch.Generator, scale: float = 0.15) -> torch.Tensor:
    """Shift every side by up to `scale` of the box size: IoUs spread over the thresholds."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    moved = boxes + (torch.rand(boxes.shape, generator=g) * 2 - 1) * scale * wh
    x1y1 = torch.minimum(moved[:, :2], moved[:, 2:])
    x2y2 = torch.maximum(moved[:, :2], moved[:, 2:])
    return torch.cat([x1y1, x2y2], dim=1)


def make_dataset(
    seed: int,
    num_images: int = 30,
    num_classes: int = 4,
    crowd: bool = False,
    max_gt: int = 8,
    max_copies: int = 3,
    max_false: int = 5,
):
    """Random detections around random ground truth, labels 1..num_classes.

    Class num_classes has detections but never ground truth; every 7th image has no
    ground truth, every 5th no detections, and image 1 has 150 detections of class 1
    (more than maxDets=100).
    """
    g = torch.Generator().manual_seed(seed)
    detections, targets = [], []
    for i in range(num_images):
        num_gt = 0 if i % 7 == 0 else int(torch.randint(1, max_gt + 1, (1,), generator=g))
        gt_boxes = random_boxes(num_gt, g)
        gt_labels = torch.randint(1, num_classes, (num_gt,), generator=g)
        target = {"boxes": gt_boxes, "labels": gt_labels}
        if crowd:
            target["iscrowd"] = (torch.rand(num_gt, generator=g) < 0.2).long()
            # a mask-like area smaller than the box, as COCO annotations carry
            box_area = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
            target["area"] = box_area * torch.empty(num_gt).uniform_(0.4, 1.0, generator=g)
        targets.append(target)

        copies = torch.randint(0, max_copies + 1, (num_gt,), generator=g)
        det_boxes = [jitter(gt_boxes.repeat_interleave(copies, 0), g)]
        det_labels = [gt_labels.repeat_interleave(copies)]
        flip = torch.rand(len(det_labels[0]), generator=g) < 0.1
        det_labels[0] = torch.where(
            flip, torch.randint(1, num_classes + 1, flip.shape, generator=g), det_labels[0]
        )
        num_false = int(torch.randint(0, max_false + 1, (1,), generator=g))
        if i == 1:
            num_false = 150
            many = torch.cat([jitter(gt_boxes, g, 0.3)] * 10) if num_gt else random_boxes(0, g)
            det_boxes.append(many)
            det_labels.append(torch.ones(len(many), dtype=torch.long))
        det_boxes.append(random_boxes(num_false, g))
        det_labels.append(
            torch.ones(num_false, dtype=torch.long)
            if i == 1
            else torch.randint(1, num_classes + 1, (num_false,), generator=g)
        )
        is_copy = torch.arange(sum(map(len, det_boxes))) < len(det_boxes[0])
        det_boxes, det_labels = torch.cat(det_boxes), torch.cat(det_labels)
        # copies of ground truth tend to score higher, as from a half-trained detector
        scores = 0.7 * torch.rand(len(det_boxes), generator=g) + 0.3 * is_copy
        if i % 5 == 0:
            det_boxes, det_labels, scores = det_boxes[:0], det_labels[:0], scores[:0]
        detections.append({"boxes": det_boxes, "scores": scores, "labels": det_labels})
    return detections, targets


def coco_eval(detections, targets, category_ids) -> COCOeval:
    """pycocotools' COCOeval on the same data, converted to COCO json (xywh, area, iscrowd)."""
    images, annotations, results = [], [], []
    for image_id, (det, tgt) in enumerate(zip(detections, targets, strict=True), start=1):
        images.append({"id": image_id, "width": IMAGE_W, "height": IMAGE_H})
        crowd = tgt.get("iscrowd", torch.zeros(len(tgt["boxes"]), dtype=torch.long))
        for n, ((x1, y1, x2, y2), label) in enumerate(
            zip(tgt["boxes"].tolist(), tgt["labels"].tolist(), strict=True)
        ):
            area = float(tgt["area"][n]) if "area" in tgt else (x2 - x1) * (y2 - y1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": area,
                    "iscrowd": int(crowd[n]),
                }
            )
        for (x1, y1, x2, y2), score, label in zip(
            det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(), strict=True
        ):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": score,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c} for c in category_ids],
        }
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def reference_stats(detections, targets, category_ids) -> dict:
    return dict(
        zip(STAT_KEYS, coco_eval(detections, targets, category_ids).stats.tolist(), strict=True)
    )


def quantized(detections, targets):
    """Integer boxes and scores rounded to 0.1: many exact IoU and score ties, some empty boxes."""
    detections = [
        {**d, "boxes": d["boxes"].round(), "scores": d["scores"].round(decimals=1)}
        for d in detections
    ]
    targets = [{**t, "boxes": t["boxes"].round()} for t in targets]
    return detections, targets


def boxes(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def one_image(det_boxes, scores, gt_boxes, det_labels=None, gt_labels=None, **target_extra):
    det = {
        "boxes": det_boxes,
        "scores": torch.tensor(scores),
        "labels": torch.ones(len(det_boxes), dtype=torch.long)
        if det_labels is None
        else det_labels,
    }
    tgt = {
        "boxes": gt_boxes,
        "labels": torch.ones(len(gt_boxes), dtype=torch.long) if gt_labels is None else gt_labels,
        **target_extra,
    }
    return [det], [tgt]


# ----------------------------------------------------------------------------- against pycocotools


@pytest.mark.parametrize("crowd", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_ap_matches_pycocotools(seed, crowd):
    detections, targets = make_dataset(seed, crowd=crowd)
    expected = reference_stats(detections, targets, category_ids=[1, 2, 3, 4])
    stats = coco_ap(detections, targets)
    assert set(STAT_KEYS) <= set(stats)
    for key in STAT_KEYS:
        assert stats[key] == pytest.approx(expected[key], abs=1e-9), key
    # the data set is not trivial: AP strictly between 0 and 1, maxDets matter
    assert 0.05 < stats["AP"] < 0.95
    assert stats["AR1"] < stats["AR10"]


@pytest.mark.parametrize("seed", [4, 5])
def test_coco_ap_matches_pycocotools_with_ties(seed):
    detections, targets = quantized(*make_dataset(seed, crowd=seed == 5))
    expected = reference_stats(detections, targets, category_ids=[1, 2, 3, 4])
    stats = coco_ap(detections, targets)
    for key in STAT_KEYS:
        assert stats[key] == pytest.approx(expected[key], abs=1e-9), key


def test_coco_accumulate_equals_cocoeval_arrays():
    detections, targets = make_dataset(6, crowd=True)
    evaluator = coco_eval(detections, targets, category_ids=[1, 2, 3, 4])
    precision, recall, category_ids = coco_accumulate(detections, targets)
    assert category_ids == [1, 2, 3, 4]
    torch.testing.assert_close(
        precision, torch.from_numpy(evaluator.eval["precision"]), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        recall, torch.from_numpy(evaluator.eval["recall"]), rtol=0, atol=1e-12
    )
    # class 4 has detections but no ground truth: -1 everywhere, as COCO marks it
    assert (precision[:, :, 3] == -1).all()


def test_constants_equal_coco_params():
    params = COCOeval(iouType="bbox").params
    torch.testing.assert_close(IOU_THRESHOLDS, torch.from_numpy(params.iouThrs), rtol=0, atol=0)
    torch.testing.assert_close(RECALL_THRESHOLDS, torch.from_numpy(params.recThrs), rtol=0, atol=0)
    assert list(AREA_RANGES) == params.areaRngLbl
    assert [list(r) for r in AREA_RANGES.values()] == params.areaRng


def test_precision_recall_gives_coco_ap_per_class():
    detections, targets = make_dataset(7)
    evaluator = coco_eval(detections, targets, category_ids=[1, 2, 3, 4])
    curves = precision_recall(detections, targets, iou_threshold=0.5)
    assert list(curves) == [1, 2, 3]  # class 4 has no ground truth
    for k, (label, curve) in enumerate(curves.items()):
        expected = evaluator.eval["precision"][
            0, :, k, 0, -1
        ].mean()  # IoU 0.5, all areas, 100 dets
        assert float(interpolated_ap(curve.precision, curve.recall)) == pytest.approx(
            expected, abs=1e-12
        )
        num_gt = sum(int((t["labels"] == label).sum()) for t in targets)
        assert curve.num_gt == num_gt
        assert (curve.scores[:-1] >= curve.scores[1:]).all()
        assert (curve.recall[:-1] <= curve.recall[1:]).all()


def test_many_images_and_classes_agree():
    detections, targets = make_dataset(
        8, num_images=150, num_classes=10, max_gt=10, max_copies=4, max_false=40
    )
    stats = coco_ap(detections, targets)
    expected = reference_stats(detections, targets, category_ids=list(range(1, 11)))
    assert max(abs(stats[k] - expected[k]) for k in STAT_KEYS) < 1e-9


# ----------------------------------------------------------------------------- hand-computed cases


def test_match_detections_greedy_by_score():
    gt_boxes = boxes([0, 0, 10, 10], [20, 0, 30, 10])
    det_boxes = boxes([0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10])
    # det 1 overlaps gt 0 with IoU 90/110 but det 0 (higher score) took it already
    matched = match_detections(det_boxes, torch.tensor([0.9, 0.8, 0.95]), gt_boxes)
    assert matched.tolist() == [0, UNMATCHED, 1]
    assert matched.dtype == torch.int64


def test_match_detections_score_order_beats_iou():
    gt_boxes = boxes([0, 0, 10, 10])
    det_boxes = boxes([0, 0, 10, 6], [0, 0, 10, 10])  # IoU 0.6 and 1.0
    scores = torch.tensor([0.9, 0.5])
    assert match_detections(det_boxes, scores, gt_boxes, 0.5).tolist() == [0, UNMATCHED]
    assert match_detections(det_boxes, scores, gt_boxes, 0.7).tolist() == [UNMATCHED, 0]


def test_match_detections_best_free_gt_and_threshold_inclusive():
    gt_boxes = boxes([0, 0, 10, 10], [0, 5, 10, 15])
    det_boxes = boxes([0, 4, 10, 14], [0, 0, 10, 5])  # IoU (6/14, 10/10... ) see below
    # det 0: IoU 60/140 with gt 0 and 90/110 with gt 1 -> gt 1; det 1: IoU exactly 50/100 with gt 0
    matched = match_detections(det_boxes, torch.tensor([0.9, 0.8]), gt_boxes, iou_threshold=0.5)
    assert matched.tolist() == [1, 0]


def test_match_detections_equal_iou_takes_last_gt_like_coco():
    gt_boxes = boxes([0, 0, 10, 10], [0, 0, 10, 10])
    assert match_detections(boxes([0, 0, 10, 10]), torch.tensor([1.0]), gt_boxes).tolist() == [1]


def test_match_detections_empty_inputs():
    assert match_detections(boxes([0, 0, 5, 5]), torch.tensor([0.3]), boxes()).tolist() == [
        UNMATCHED
    ]
    assert match_detections(boxes(), torch.tensor([]), boxes([0, 0, 5, 5])).shape == (0,)


def test_interpolated_ap_hand_computed():
    assert RECALL_THRESHOLDS[50] == 0.5
    # TP, FP, TP with 2 ground-truth boxes: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1;
    # monotone from the right: 1, 2/3, 2/3 -> 51 thresholds <= 0.5 read 1, 50 read 2/3
    precision = torch.tensor([1.0, 0.5, 2 / 3])
    recall = torch.tensor([0.5, 0.5, 1.0])
    assert float(interpolated_ap(precision, recall)) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # a curve that stops at recall 0.5 reads 0 beyond it
    assert float(interpolated_ap(torch.tensor([1.0]), torch.tensor([0.5]))) == pytest.approx(
        51 / 101
    )
    assert float(interpolated_ap(torch.tensor([]), torch.tensor([]))) == 0.0
    q = interpolated_precision(precision, recall)
    assert q.shape == (101,)
    assert q[:51].eq(1).all() and torch.allclose(q[51:], torch.tensor(2 / 3, dtype=torch.float64))
    # batched curves
    batch = interpolated_ap(torch.stack([precision, torch.ones(3)]), torch.stack([recall, recall]))
    torch.testing.assert_close(
        batch, torch.tensor([(51 + 50 * 2 / 3) / 101, 1.0], dtype=torch.float64)
    )


def test_precision_recall_hand_computed():
    detections = [
        {
            "boxes": boxes([0, 0, 10, 10], [50, 50, 60, 60]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1]),
        },
        {
            "boxes": boxes([0, 0, 10, 10]),
            "scores": torch.tensor([0.85]),
            "labels": torch.tensor([1]),
        },
    ]
    targets = [
        {"boxes": boxes([0, 0, 10, 10], [100, 100, 120, 120]), "labels": torch.tensor([1, 1])},
        {"boxes": boxes(), "labels": torch.tensor([], dtype=torch.long)},
    ]
    (curve,) = precision_recall(detections, targets).values()
    torch.testing.assert_close(curve.scores, torch.tensor([0.9, 0.85, 0.8], dtype=torch.float64))
    torch.testing.assert_close(
        curve.precision, torch.tensor([1, 1 / 2, 1 / 3], dtype=torch.float64)
    )
    torch.testing.assert_close(curve.recall, torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64))
    assert curve.num_gt == 2


def test_coco_ap_perfect_and_no_detections():
    gt_boxes = boxes([0, 0, 50, 50], [100, 100, 300, 300])  # medium and large
    stats = coco_ap(*one_image(gt_boxes, [0.9, 0.8], gt_boxes))
    for key in ["AP", "AP50", "APm", "APl", "AR100"]:
        assert stats[key] == pytest.approx(1.0), key  # COCO's tp / (tp + fp + eps) < 1 by 1e-16
    assert stats["AR1"] == 0.5  # one detection per image and category finds one box of two
    assert stats["APs"] == stats["ARs"] == -1.0  # no small ground truth
    empty = coco_ap(*one_image(boxes(), [], gt_boxes))
    assert empty["AP"] == empty["APm"] == empty["AR100"] == 0.0 and empty["APs"] == -1.0
    assert set(coco_ap([], []).values()) == {-1.0}
    assert set(coco_ap(*one_image(gt_boxes, [0.9, 0.8], boxes())).values()) == {-1.0}


def test_coco_ap_area_field_and_inclusive_ranges():
    box = boxes([0, 0, 40, 40])  # box area 1600 (medium), annotated area 500 (small)
    stats = coco_ap(*one_image(box, [0.9], box, area=torch.tensor([500.0])))
    assert stats["APs"] == pytest.approx(1.0) and stats["APm"] == -1.0
    box = boxes([0, 0, 32, 32])  # exactly 32**2: small and medium
    stats = coco_ap(*one_image(box, [0.9], box))
    assert stats["APs"] == pytest.approx(1.0) and stats["APm"] == pytest.approx(1.0)
    assert stats["APl"] == -1.0


def test_coco_ap_custom_iou_thresholds():
    detections, targets = make_dataset(10)
    stats = coco_ap(detections, targets, iou_thresholds=[0.5])
    assert stats["AP"] == stats["AP50"] == coco_ap(detections, targets)["AP50"]
    assert stats["AP75"] == -1.0  # not among the thresholds, as COCOeval reports it


def test_crowd_box_absorbs_detections():
    gt_boxes = boxes([0, 0, 100, 100], [200, 200, 260, 260])
    det_boxes = boxes([200, 200, 260, 260], [10, 10, 30, 30], [50, 50, 70, 70])
    stats = coco_ap(*one_image(det_boxes, [0.5, 0.9, 0.8], gt_boxes, iscrowd=torch.tensor([1, 0])))
    # both high-scoring detections lie inside the crowd box: ignored, not false positives
    assert stats["AP"] == pytest.approx(1.0)


def test_plot_pr_curves():
    detections, targets = make_dataset(9)
    curves = precision_recall(detections, targets)
    ax = plot_pr_curves(curves, class_names={1: "circle", 2: "square", 3: "triangle"})
    assert ax.get_xlabel() == "recall" and ax.get_ylabel() == "precision"
    assert len(ax.get_lines()) == 2 * len(curves)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("circle (AP ") and len(legend) == len(curves)
    ax.figure.savefig("/tmp/pr_curves.png", dpi=80)
    matplotlib.pyplot.close(ax.figure)


# ----------------------------------------------------------------------------- validation


def test_invalid_inputs_raise_value_error_naming_the_argument():
    det, tgt = one_image(boxes([0, 0, 10, 10]), [0.9], boxes([0, 0, 10, 10]))
    with pytest.raises(ValueError, match="detections and targets"):
        coco_ap(det, tgt + tgt)
    with pytest.raises(ValueError, match=r"detections\[0\]\['boxes'\].*x1 <= x2"):
        coco_ap([{**det[0], "boxes": boxes([10, 0, 0, 10])}], tgt)
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\] must have shape \(N, 4\)"):
        coco_ap(det, [{**tgt[0], "boxes": torch.zeros(1, 5)}])
    with pytest.raises(ValueError, match=r"targets\[0\] is missing key 'labels'"):
        coco_ap(det, [{"boxes": tgt[0]["boxes"]}])
    with pytest.raises(ValueError, match=r"detections\[0\] is missing key 'scores'"):
        precision_recall([{"boxes": det[0]["boxes"], "labels": det[0]["labels"]}], tgt)
    with pytest.raises(ValueError, match=r"detections\[0\]\['scores'\] must have shape \(1,\)"):
        coco_ap([{**det[0], "scores": torch.tensor([0.9, 0.1])}], tgt)
    with pytest.raises(ValueError, match="gt_boxes"):
        match_detections(boxes([0, 0, 1, 1]), torch.tensor([1.0]), boxes([0, 5, 1, 1]))
    with pytest.raises(ValueError, match="iou_threshold"):
        match_detections(boxes([0, 0, 1, 1]), torch.tensor([1.0]), boxes([0, 0, 1, 1]), 1.5)
    with pytest.raises(ValueError, match="max_dets"):
        coco_ap(det, tgt, max_dets=(0, 10))
    with pytest.raises(ValueError, match="precision and recall|recall must have shape"):
        interpolated_ap(torch.ones(3), torch.ones(2))


# ----------------------------------------------------------------------------- classify_detections

CIRCLE, SQUARE = 0, 1
ONE_CIRCLE = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([CIRCLE])}


def det_dict(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels)}


def test_classifier_names_each_kind_of_false_positive_and_the_missed_box():
    gt = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [80.0, 0.0, 90.0, 10.0]]),
          "labels": torch.tensor([CIRCLE, SQUARE, CIRCLE])}
    det = det_dict([[0, 0, 10, 10],  # circle on the circle: true positive
                      [0, 0, 10, 9],  # circle on the circle again (IoU 0.9): duplicate
                      [50, 50, 60, 60],  # circle on the square: wrong class
                      [80, 0, 83, 10],  # circle on the second circle with IoU 0.3: poor localisation
                      [30, 30, 40, 40]],  # circle on nothing: background
                     [0.9, 0.8, 0.7, 0.6, 0.5], [CIRCLE] * 5)
    (c,) = classify_detections([det], [gt])
    assert isinstance(c, Classified)
    assert c.fp_reason.tolist() == [NOT_FP, DUPLICATE, WRONG_CLASS, POOR_LOCALISATION, BACKGROUND_FP]
    assert c.tp.tolist() == [True, False, False, False, False]
    assert c.matched_gt_idx.tolist() == [0] + [UNMATCHED] * 4
    assert c.missed.tolist() == [False, True, True]  # the square and the second circle
    assert (c.num_tp, c.num_fp, c.num_gt, c.num_missed) == (1, 4, 3, 2)
    assert [FP_REASONS[r] for r in c.fp_reason.tolist()[1:]] == ["duplicate", "wrong class", "poor localisation",
                                                                "background"]


def test_classifier_ties_in_score_keep_the_given_order():
    # Two equal scores on one circle: the one given first takes it, whatever their IoUs.
    det = det_dict([[0, 0, 10, 8], [0, 0, 10, 10]], [0.7, 0.7], [CIRCLE, CIRCLE])
    (c,) = classify_detections([det], [ONE_CIRCLE])
    assert c.tp.tolist() == [True, False] and c.fp_reason.tolist() == [NOT_FP, DUPLICATE]
    assert c.matched_gt_idx.tolist() == match_detections(det["boxes"], det["scores"], ONE_CIRCLE["boxes"]).tolist()
    # Given in the other order, the other one does.
    (c,) = classify_detections([det_dict([[0, 0, 10, 10], [0, 0, 10, 8]], [0.7, 0.7], [CIRCLE, CIRCLE])],
                               [ONE_CIRCLE])
    assert c.tp.tolist() == [True, False]


def test_classifier_iou_exactly_at_the_threshold_matches():
    det = det_dict([[0, 0, 10, 5], [0, 0, 10, 4]], [0.9, 0.8], [CIRCLE, CIRCLE])  # IoU 0.5 and 0.4
    (c,) = classify_detections([det], [ONE_CIRCLE], iou_threshold=0.5)
    assert c.tp.tolist() == [True, False] and c.fp_reason.tolist() == [NOT_FP, POOR_LOCALISATION]
    (c,) = classify_detections([det_dict([[0, 0, 10, 4]], [0.8], [CIRCLE])], [ONE_CIRCLE], iou_threshold=0.5)
    assert c.fp_reason.tolist() == [POOR_LOCALISATION] and c.missed.tolist() == [True]
    # COCO caps the threshold below 1: a perfect box matches at iou_threshold 1.0
    (c,) = classify_detections([det_dict([[0, 0, 10, 10]], [0.8], [CIRCLE])], [ONE_CIRCLE], iou_threshold=1.0)
    assert c.tp.tolist() == [True]


def test_classifier_over_images_equals_coco_matching_per_class_and_counts():
    dets, gts = make_dataset(11, num_images=12)
    classified = classify_detections(dets, gts)
    assert len(classified) == 12
    for c, det, gt in zip(classified, dets, gts):
        for k in torch.unique(torch.cat([det["labels"], gt["labels"]])).tolist():
            is_det, is_gt = det["labels"] == k, gt["labels"] == k
            coco = match_detections(det["boxes"][is_det], det["scores"][is_det], gt["boxes"][is_gt])
            gt_index = torch.nonzero(is_gt).flatten()
            expected = torch.where(coco >= 0, gt_index[coco.clamp(min=0)], UNMATCHED) if len(gt_index) else coco
            assert c.matched_gt_idx[is_det].tolist() == expected.tolist()
        assert c.tp.tolist() == (c.matched_gt_idx != UNMATCHED).tolist()
        assert c.num_missed == c.num_gt - c.num_tp  # each true positive takes its own box
    pr = precision_recall_at(classified)
    num_tp = sum(c.num_tp for c in classified)
    assert pr.num_gt == sum(len(t["labels"]) for t in gts) and pr.num_tp == num_tp
    assert pr.precision == pytest.approx(num_tp / sum(len(d["scores"]) for d in dets))


def test_classifier_bad_input_raises():
    det = det_dict([[0, 0, 10, 10]], [0.9], [CIRCLE])
    with pytest.raises(ValueError, match="iou_threshold"):
        classify_detections([det], [ONE_CIRCLE], iou_threshold=1.5)
    with pytest.raises(ValueError, match="targets"):
        classify_detections([det, det], [ONE_CIRCLE])
    with pytest.raises(ValueError, match=r"detections\[0\]\['boxes'\]"):
        classify_detections([det_dict([[10, 0, 0, 10]], [0.9], [CIRCLE])], [ONE_CIRCLE])
    with pytest.raises(ValueError, match="classified"):
        precision_recall_at([det])
