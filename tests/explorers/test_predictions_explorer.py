"""Tests for retina_lessons.explorers.predictions (caching, postprocessing, controls) and the pictures
of .verdicts it shows, with the judging of retina_lessons.evaluation.classify_detections."""

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from retina_lessons.config import get_config
from retina_lessons.evaluation import (
    DUPLICATE,
    FP_REASONS,
    NOT_FP,
    POOR_LOCALISATION,
    UNMATCHED,
    WRONG_CLASS,
    classify_detections,
    match_detections,
    precision_recall_at,
)
from retina_lessons.explorers.predictions import (
    PredictionsExplorer,
    cache_outputs,
    cut_detections,
    decode_cached,
    filter_detections,
    filter_detections_batch,
    suppress_cached,
)
from retina_lessons.explorers.verdicts import (
    FP_COLOUR,
    MISSED_COLOUR,
    TP_COLOUR,
    draw_predictions,
    prediction_labels,
)
from retina_lessons.model import RetinaNet
from retina_lessons.shipped import heldout_shapes

matplotlib.use("Agg")

CLASS_NAMES = ["circle", "triangle", "square"]
CIRCLE, SQUARE = 0, 2

# Two ground-truth boxes and four detections, worked out by hand.
GT = {"boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0],  # a circle ...
                             [70.0, 70.0, 110.0, 110.0]]),  # ... and a square
      "labels": torch.tensor([CIRCLE, SQUARE])}
DET = {"boxes": torch.tensor([[11.0, 11.0, 50.0, 51.0],  # circle 0.9 on the circle: true positive
                              [10.0, 12.0, 49.0, 50.0],  # square 0.8 on the circle: wrong class
                              [12.0, 10.0, 51.0, 49.0],  # circle 0.7 on the circle again: duplicate
                              [71.0, 69.0, 110.0, 111.0]]),  # square 0.3 on the square: true positive
       "scores": torch.tensor([0.9, 0.8, 0.7, 0.3]),
       "labels": torch.tensor([CIRCLE, SQUARE, CIRCLE, SQUARE])}


def judge(det, gt, iou_threshold=0.5):
    """classify_detections of one image."""
    return classify_detections([det], [gt], iou_threshold)[0]


@pytest.fixture(scope="module")
def model():
    # A tiny untrained RetinaNet with the classroom's input size and anchors (fast to run), its
    # class predictor's weights spread so that its scores run from ~0.01 to above 0.5 (0.3% to
    # 10% of them above 0.2, depending on the image): every slider range finds detections.
    torch.manual_seed(0)
    config = get_config("classroom", backbone_width=0.25, backbone_norm="bn", head_norm=None, fpn_channels=16)
    model = RetinaNet(config).eval()
    torch.nn.init.normal_(model.cls_head.predictor.weight, std=4.0)
    return model


@pytest.fixture(scope="module")
def heldout():
    dataset = heldout_shapes()
    return [dataset[i] for i in range(3)]


@pytest.fixture(scope="module")
def cached(model, heldout):
    return cache_outputs(model, [image for image, _ in heldout])


@pytest.fixture(scope="module")
def explorer(model, heldout):
    images, targets = zip(*heldout)
    return PredictionsExplorer(model, list(images), list(targets), CLASS_NAMES, dpi=60)


# ----------------------------------------------------------------------------- matching


def test_hand_made_case_all_detections():
    c = judge(DET, GT)
    assert c.tp.tolist() == [True, False, False, True]
    assert c.matched_gt_idx.tolist() == [0, UNMATCHED, UNMATCHED, 1]
    assert c.fp_reason.tolist() == [NOT_FP, WRONG_CLASS, DUPLICATE, NOT_FP]
    assert c.missed.tolist() == [False, False]
    pr = precision_recall_at(c)
    assert (pr.num_tp, pr.num_fp, pr.num_gt) == (2, 2, 2)
    assert pr.precision == 0.5 and pr.recall == 1.0


def test_hand_made_case_at_a_high_threshold_misses_the_square():
    det = cut_detections(DET, score_thresh=0.5, max_dets=100)  # the square's 0.3 is cut
    c = judge(det, GT)
    assert c.tp.tolist() == [True, False, False]
    assert c.missed.tolist() == [False, True]
    pr = precision_recall_at(c)
    assert pr.precision == pytest.approx(1 / 3) and pr.recall == 0.5


def test_hand_made_case_colours_and_counts():
    ax = Figure().add_subplot()
    det = cut_detections(DET, score_thresh=0.5, max_dets=100)
    classified = draw_predictions(ax, torch.rand(3, 128, 128), det, GT, CLASS_NAMES)
    by_colour = {}
    for collection in ax.collections:
        if collection.get_segments():
            colour = tuple(collection.get_edgecolor()[0])
            by_colour[colour] = by_colour.get(colour, 0) + len(collection.get_segments())
    assert by_colour[to_rgba(TP_COLOUR)] == 1
    assert by_colour[to_rgba(FP_COLOUR)] == 2
    assert by_colour[to_rgba(MISSED_COLOUR)] == 1
    missed = [c for c in ax.collections if tuple(c.get_edgecolor()[0]) == to_rgba(MISSED_COLOUR)][0]
    assert missed.get_linestyle()[0][1] is not None  # dashed
    texts = [t.get_text() for t in ax.texts if t.get_visible()]
    assert "circle 0.90" in texts and "square 0.80 (wrong class)" in texts
    assert "circle 0.70 (duplicate)" in texts and "missed square" in texts
    assert "1 TP, 2 FP, 1 missed" in ax.get_title()
    assert classified.num_missed == 1


def test_poor_localisation_and_background_reasons():
    det = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0], [200.0, 200.0, 220.0, 220.0]]),
           "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([CIRCLE, CIRCLE])}
    c = judge(det, GT)  # IoU 400 / 1600 = 0.25 with the circle; nothing near the other
    assert c.fp_reason.tolist() == [POOR_LOCALISATION, 3]
    assert c.missed.tolist() == [True, True]


def test_no_ground_truth_and_no_detections():
    empty_gt = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    c = judge(DET, empty_gt)
    assert not c.tp.any() and len(c.missed) == 0
    pr = precision_recall_at(c)
    assert pr.precision == 0.0 and math.isnan(pr.recall)
    none = cut_detections(DET, 0.95, 100)
    c = judge(none, GT)
    assert len(c.tp) == 0 and c.missed.tolist() == [True, True]
    assert math.isnan(precision_recall_at(c).precision) and precision_recall_at(c).recall == 0.0


def test_matching_equals_coco_matching_per_class():
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        M, D = int(torch.randint(0, 6, (1,), generator=generator)), int(torch.randint(0, 12, (1,), generator=generator))
        xy = torch.rand(M, 2, generator=generator) * 80
        gt = {"boxes": torch.cat([xy, xy + 10 + torch.rand(M, 2, generator=generator) * 30], 1),
              "labels": torch.randint(0, 3, (M,), generator=generator)}
        pick = torch.randint(0, max(M, 1), (D,), generator=generator)
        jitter = torch.randn(D, 4, generator=generator) * 4
        boxes = gt["boxes"][pick] + jitter if M else torch.rand(D, 4, generator=generator) * 60
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], 1)
        det = {"boxes": boxes, "scores": torch.rand(D, generator=generator),
               "labels": torch.randint(0, 3, (D,), generator=generator)}
        c = judge(det, gt)
        for k in range(3):
            is_det, is_gt = det["labels"] == k, gt["labels"] == k
            coco = match_detections(det["boxes"][is_det], det["scores"][is_det], gt["boxes"][is_gt])
            gt_index = torch.nonzero(is_gt).flatten()
            expected = torch.where(coco >= 0, gt_index[coco.clamp(min=0)], UNMATCHED) if len(gt_index) else coco
            assert c.matched_gt_idx[is_det].tolist() == expected.tolist()


def test_classifying_many_images_equals_one_image_at_a_time():
    dets = [DET, cut_detections(DET, 0.75, 100), cut_detections(DET, 0.99, 100)]
    gts = [GT, GT, {"boxes": GT["boxes"][:1], "labels": GT["labels"][:1]}]
    for batched, (det, gt) in zip(classify_detections(dets, gts), zip(dets, gts)):
        alone = judge(det, gt)
        for a, b in zip(batched, alone):
            assert torch.equal(a, b)


def test_precision_recall_over_images():
    c1 = judge(DET, GT)  # 2 TP, 2 FP, 2 objects
    c2 = judge(cut_detections(DET, 0.5, 100), GT)  # 1 TP, 2 FP, 2 objects
    pr = precision_recall_at([c1, c2])
    assert (pr.num_tp, pr.num_fp, pr.num_gt) == (3, 4, 4)
    assert pr.precision == pytest.approx(3 / 7) and pr.recall == pytest.approx(3 / 4)


# ----------------------------------------------------------------------------- postprocessing


def test_filter_detections_equals_detect(model, heldout, cached):
    config = model.config
    detected = model.detect([image for image, _ in heldout])
    for c, expected in zip(cached, detected):
        got = filter_detections(c, config.score_thresh, config.nms_thresh, config.detections_per_img)
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(got[key], expected[key])
    # The two halves the explorer caches separately give the same detections.
    batched = filter_detections_batch(cached, config.score_thresh, config.nms_thresh, config.detections_per_img)
    for got, expected in zip(batched, detected):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(got[key], expected[key])


def test_candidates_decoded_once_serve_every_nms_and_higher_threshold(cached):
    candidates = decode_cached(cached, 0.05)
    for score, nms, max_dets in ((0.05, 0.5, 100), (0.2, 0.3, 10), (0.4, 0.9, 300)):
        for got, c in zip(suppress_cached(candidates, score, nms, max_dets), cached):
            expected = filter_detections(c, score, nms, max_dets)
            for key in ("boxes", "scores", "labels"):
                assert torch.equal(got[key], expected[key])
    with pytest.raises(ValueError, match="score_thresh=0.01: below the 0.05"):
        suppress_cached(candidates, 0.01, 0.5, 100)


def test_cutting_equals_filtering_again(cached):
    for nms in (0.3, 0.5, 0.8):
        base = filter_detections(cached[0], 0.05, nms, 100)
        for score, max_dets in ((0.1, 100), (0.2, 5), (0.25, 30), (0.5, 1)):
            direct = filter_detections(cached[0], score, nms, max_dets)
            cut = cut_detections(base, score, max_dets)
            for key in ("boxes", "scores", "labels"):
                assert torch.equal(cut[key], direct[key])


def test_raising_the_score_threshold_never_adds_detections(cached):
    for nms in (0.3, 0.5, 0.9):
        counts = [len(filter_detections(cached[1], s, nms, 300)["scores"]) for s in np.arange(0.05, 0.95, 0.05)]
        assert counts[0] > counts[-1]
        assert all(a >= b for a, b in zip(counts, counts[1:])), counts


def test_boxes_map_back_to_the_original_image(model, heldout):
    image = torch.nn.functional.interpolate(heldout[0][0][None], size=(192, 160), mode="bilinear")[0]
    c = cache_outputs(model, [image])[0]
    assert c.original_size == (192, 160) and c.image_size == (128, 106)
    got = filter_detections(c, 0.05, 0.5, 100)
    expected = model.detect([image])[0]
    torch.testing.assert_close(got["boxes"], expected["boxes"])
    assert got["boxes"][:, 2].max() <= 160 and got["boxes"][:, 3].max() <= 192


@pytest.mark.parametrize("kwargs, name", [
    ({"score_thresh": 1.5}, "score_thresh"), ({"score_thresh": -0.1}, "score_thresh"),
    ({"nms_thresh": 1.2}, "nms_thresh"), ({"max_dets": 0}, "max_dets"), ({"max_dets": 2.5}, "max_dets"),
])
def test_bad_filter_parameters_raise(cached, kwargs, name):
    params = {"score_thresh": 0.05, "nms_thresh": 0.5, "max_dets": 100, **kwargs}
    with pytest.raises(ValueError, match=name):
        filter_detections(cached[0], **params)


def test_bad_matching_input_raises():
    with pytest.raises(ValueError, match="iou"):
        judge(DET, GT, iou_threshold=1.5)
    with pytest.raises(ValueError, match="scores"):
        judge({"boxes": DET["boxes"], "labels": DET["labels"]}, GT)
    with pytest.raises(ValueError, match="labels"):
        judge(DET, {"boxes": GT["boxes"], "labels": GT["labels"][:1]})
    with pytest.raises(ValueError, match="targets"):
        classify_detections([DET, DET], [GT])


# ----------------------------------------------------------------------------- the explorer


def test_update_returns_a_new_picture_when_a_slider_moves(explorer):
    explorer.update(image=0, score_thresh=0.15, nms_thresh=0.5, max_dets=100)
    before = explorer.render()
    assert before.startswith(b"\x89PNG")
    numbers = explorer.update(score_thresh=0.25)
    after = explorer.render()
    assert after != before
    assert numbers["detections"] == len(explorer.detections["scores"])
    explorer.update(max_dets=1)
    assert len(explorer.detections["scores"]) <= 1 and explorer.render() != after


@pytest.mark.parametrize("moves", [
    [{"image": 2, "score_thresh": 0.2, "nms_thresh": 0.6, "max_dets": 40}],
    # down, up, down again (below what was postprocessed), and a new cap and match IoU
    [{"score_thresh": 0.3}, {"score_thresh": 0.15}, {"score_thresh": 0.4, "max_dets": 3},
     {"score_thresh": 0.1, "max_dets": 100}, {"image": 1, "nms_thresh": 0.3, "iou": 0.7}],
])
def test_explorer_numbers_equal_the_plain_functions(explorer, cached, heldout, moves):
    for params in moves:
        numbers = explorer.update(**params)
        p = explorer.params
        dets = [filter_detections(c, p["score_thresh"], p["nms_thresh"], p["max_dets"]) for c in cached]
        classified = classify_detections(dets, [t for _, t in heldout], p["iou"])
        i = p["image"]
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(explorer.detections[key], dets[i][key])
        for mine, plain in zip(explorer.classified, classified[i]):
            assert torch.equal(mine, plain)
        image_pr, set_pr = precision_recall_at(classified[i]), precision_recall_at(classified)
        assert numbers["detections"] == len(dets[i]["scores"])
        assert (numbers["tp"], numbers["fp"], numbers["num_gt"]) == (image_pr.num_tp, image_pr.num_fp,
                                                                     image_pr.num_gt)
        assert (numbers["set"]["tp"], numbers["set"]["fp"]) == (set_pr.num_tp, set_pr.num_fp)
        assert numbers["set"]["num_gt"] == sum(len(t["labels"]) for _, t in heldout)
        reasons = torch.cat([c.fp_reason for c in classified])
        assert numbers["set"]["fp_reasons"] == {name: int((reasons == k).sum()) for k, name in enumerate(FP_REASONS)}
    assert "this image" in explorer.table_html() and "all 3 images" in explorer.table_html()


@pytest.mark.parametrize("params, name", [
    ({"score_thresh": 1.0}, "score_thresh"), ({"nms_thresh": -0.5}, "nms_thresh"), ({"max_dets": -3}, "max_dets"),
    ({"image": 99}, "image"), ({"image": "no such image"}, "image"), ({"iou": 0.0}, "iou"),
    ({"threshold": 0.5}, "threshold"),
])
def test_bad_explorer_parameters_raise(explorer, params, name):
    before = dict(explorer.params)
    with pytest.raises(ValueError, match=name):
        explorer.update(**params)
    assert explorer.params == before  # a refused update changes nothing


def test_forward_runs_once_per_image(model, heldout):
    calls = []
    handle = model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        images, targets = zip(*heldout[:3])
        explorer = PredictionsExplorer(model, list(images), list(targets), CLASS_NAMES, set_stats=False, dpi=40)
        for params in ({"score_thresh": 0.2}, {"nms_thresh": 0.3}, {"image": 1}, {"max_dets": 5}, {"image": 0},
                       {"image": 1, "score_thresh": 0.1}):
            explorer.update(**params)
        assert sum(calls) == 2  # images 0 and 1, one forward pass each
        assert "set" not in explorer.numbers()
    finally:
        handle.remove()


def test_widget_sliders_drive_the_picture(explorer):
    import ipywidgets as W

    explorer.update(image=0, score_thresh=0.15, nms_thresh=0.5, max_dets=100)
    box = explorer.widget()
    found = {}

    def walk(widget):
        found.setdefault(type(widget).__name__, []).append(widget)
        for child in getattr(widget, "children", ()):
            walk(child)

    walk(box)
    picture = found["Image"][0]
    sliders = {s.description: s for s in found["FloatSlider"] + found["IntSlider"]}
    assert set(sliders) == {"score >=", "NMS IoU", "detections"}
    assert isinstance(sliders["score >="], W.FloatSlider) and isinstance(sliders["detections"], W.IntSlider)
    before = picture.value
    sliders["score >="].value = 0.3
    assert picture.value != before and explorer.params["score_thresh"] == pytest.approx(0.3)
    found["Dropdown"][0].value = 1
    assert explorer.params["image"] == 1


def test_draw_detections_colours_by_class_and_labels_name_and_score():
    # plotting.draw_detections, the static drawing the lesson uses next to the explorer
    from retina_lessons.plotting import DETECTION_COLOURS, draw_detections

    ax = Figure().add_subplot()
    patches = draw_detections(ax, DET["boxes"], DET["scores"], DET["labels"], CLASS_NAMES)
    assert len(patches) == 4
    colours = sorted(to_rgba(DETECTION_COLOURS[k]) for k in DET["labels"].tolist())
    assert sorted(tuple(p.get_edgecolor()) for p in patches) == colours
    assert sorted(t.get_text() for t in ax.texts) == ["circle 0.70", "circle 0.90", "square 0.30", "square 0.80"]
    with pytest.raises(ValueError, match="labels"):
        draw_detections(ax, DET["boxes"], DET["scores"], torch.tensor([0, 1, 2, 3]), CLASS_NAMES)
    with pytest.raises(ValueError, match="scores"):
        draw_detections(ax, DET["boxes"], DET["scores"][:2], DET["labels"], CLASS_NAMES)


def test_explorer_reuses_given_outputs(model, heldout, cached):
    calls = []
    handle = model.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        images, targets = zip(*heldout)
        explorer = PredictionsExplorer(model, list(images), list(targets), CLASS_NAMES, cached=cached, dpi=40)
        explorer.update(image=2, score_thresh=0.2)
        assert not calls and explorer.numbers()["set"]["images"] == 3
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="cached"):
        PredictionsExplorer(model, list(images), list(targets), CLASS_NAMES, cached=cached[:2])


def test_labels_of_overlapping_boxes_stack_instead_of_covering_each_other():
    c = judge(DET, GT)
    plain = prediction_labels(DET, GT, c, CLASS_NAMES, image_height=128)
    assert [label.text for label in plain] == ["circle 0.90", "square 0.80 (wrong class)",
                                               "circle 0.70 (duplicate)", "square 0.30"]
    assert (plain[0].y, plain[1].y) == (11.0, 12.0)  # the first two boxes' tops are 1 pixel apart
    line, char = 5.0, 2.0
    stacked = prediction_labels(DET, GT, c, CLASS_NAMES, image_height=128, text_size=(line, char))
    assert stacked[0] == plain[0]  # the best label stays put; the next ones move by whole lines
    assert all((s.y - p.y) % line == 0 for s, p in zip(stacked, plain))

    def extent(label):
        top = label.y - line if label.va == "bottom" else label.y
        return label.x, top, label.x + char * len(label.text), top + line

    boxes = [extent(label) for label in stacked]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)  # no overlap
