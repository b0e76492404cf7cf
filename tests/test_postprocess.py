"""Batched postprocessing against torchvision's per-image loop with batched_nms."""

import pytest
import torch
from torchvision.ops import batched_nms

from retina_lessons.box_coding import decode_boxes
from retina_lessons.boxes import clip_boxes_to_image
from retina_lessons.postprocess import (
    Candidates,
    decode_candidates,
    detections_from_outputs,
    suppress,
    top_candidates,
)


def reference(cls_logits, box_deltas, anchors, per_level, sizes, thresh, topk, nms, dets):
    """torchvision's RetinaNet.postprocess_detections, written for one image at a time."""
    out = []
    for i, size in enumerate(sizes):
        boxes_all, scores_all, labels_all = [], [], []
        for logits, deltas, level_anchors in zip(cls_logits[i].split(per_level), box_deltas[i].split(per_level),
                                                 anchors.split(per_level)):
            K = logits.shape[-1]
            scores = torch.sigmoid(logits).flatten()
            keep = scores > thresh
            scores, idx = scores[keep], torch.where(keep)[0]
            scores, order = scores.topk(min(topk, idx.numel()))
            idx = idx[order]
            boxes = clip_boxes_to_image(decode_boxes(deltas[idx // K], level_anchors[idx // K]), size)
            boxes_all.append(boxes)
            scores_all.append(scores)
            labels_all.append(idx % K)
        boxes, scores, labels = torch.cat(boxes_all), torch.cat(scores_all), torch.cat(labels_all)
        keep = batched_nms(boxes, scores, labels, nms)[:dets]
        out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return out


def random_outputs(seed: int = 0):
    """Head outputs of three images over three levels of random anchors; the third finds nothing."""
    generator = torch.Generator().manual_seed(seed)
    per_level = [400, 100, 30]
    N, K = sum(per_level), 4
    xy = torch.rand(N, 2, generator=generator) * 90
    anchors = torch.cat([xy, xy + 5 + torch.rand(N, 2, generator=generator) * 40], dim=1)
    cls_logits = torch.randn(3, N, K, generator=generator) * 2 - 2
    cls_logits[2] = -10  # an image without any detection
    box_deltas = torch.randn(3, N, 4, generator=generator) * 0.3
    sizes = [(100, 120), (80, 128), (128, 128)]
    return cls_logits, box_deltas, anchors, per_level, sizes


def test_batched_postprocess_equals_the_per_image_loop():
    cls_logits, box_deltas, anchors, per_level, sizes = random_outputs()
    got = detections_from_outputs(cls_logits, box_deltas, anchors, per_level, sizes, score_thresh=0.05,
                                  topk_candidates=50, nms_thresh=0.5, detections_per_img=40)
    expected = reference(cls_logits, box_deltas, anchors, per_level, sizes, 0.05, 50, 0.5, 40)
    for g, e in zip(got, expected):
        assert torch.equal(g["labels"], e["labels"])
        torch.testing.assert_close(g["boxes"], e["boxes"])
        torch.testing.assert_close(g["scores"], e["scores"])
    assert len(got[0]["boxes"]) == 40  # capped at detections_per_img
    assert got[2]["boxes"].shape == (0, 4)
    assert (got[0]["scores"][:-1] >= got[0]["scores"][1:]).all()  # sorted by score
    assert (got[1]["boxes"][:, 2] <= 128).all() and (got[1]["boxes"][:, 3] <= 80).all()  # clipped to (H, W)


def test_top_candidates_respects_threshold_and_k():
    logits = torch.logit(torch.tensor([[[0.9, 0.01], [0.2, 0.06], [0.04, 0.5]]]))  # (1, 3, 2)
    image_idx, anchor_idx, labels, scores = top_candidates(logits, 0.05, 3)
    assert anchor_idx.tolist() == [0, 2, 1] and labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.5, 0.2]))
    assert image_idx.tolist() == [0, 0, 0]


def test_detections_are_the_two_blocks_composed():
    cls_logits, box_deltas, anchors, per_level, sizes = random_outputs(1)
    settings = {"score_thresh": 0.1, "topk_candidates": 60}
    got = detections_from_outputs(cls_logits, box_deltas, anchors, per_level, sizes, nms_thresh=0.4,
                                  detections_per_img=25, **settings)
    candidates = decode_candidates(cls_logits, box_deltas, anchors, per_level, sizes, **settings)
    by_hand = suppress(candidates, 3, cls_logits.shape[2], nms_thresh=0.4, detections_per_img=25)
    assert len(got) == len(by_hand) == 3
    for g, h in zip(got, by_hand):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(g[key], h[key])


def test_decode_candidates_keeps_topk_per_level_and_image_above_the_threshold():
    cls_logits, box_deltas, anchors, per_level, sizes = random_outputs(2)
    c = decode_candidates(cls_logits, box_deltas, anchors, per_level, sizes, score_thresh=0.2, topk_candidates=7)
    assert isinstance(c, Candidates)
    assert (c.scores > 0.2).all() and c.boxes.shape == (len(c.scores), 4)
    # level by level, each image keeps 7 of its many candidates above 0.2 (none for the third image)
    assert torch.bincount(c.image_idx, minlength=3).tolist() == [7 * len(per_level)] * 2 + [0]
    assert (c.boxes[:, 2] <= torch.tensor(sizes)[c.image_idx, 1]).all()  # clipped to each image's width


def test_nms_thresh_suppresses_overlaps_above_it_within_a_class():
    # Boxes 0 and 1 overlap with IoU 0.6 (same class); box 2 covers box 0 but is another class.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 2.5, 10.0, 12.5], [0.0, 0.0, 10.0, 10.0],
                          [50.0, 50.0, 60.0, 60.0]])
    candidates = Candidates(image_idx=torch.tensor([0, 0, 0, 1]), boxes=boxes,
                            scores=torch.tensor([0.9, 0.8, 0.7, 0.6]), labels=torch.tensor([0, 0, 1, 0]))

    def kept(nms_thresh, detections_per_img=10):
        out = suppress(candidates, 2, 2, nms_thresh=nms_thresh, detections_per_img=detections_per_img)
        return [d["scores"].tolist() for d in out]

    assert kept(0.5) == [pytest.approx([0.9, 0.7]), pytest.approx([0.6])]
    assert torch.equal(suppress(candidates, 2, 2, nms_thresh=0.5)[0]["labels"], torch.tensor([0, 1]))
    assert len(kept(0.7)[0]) == 3  # 0.6 <= 0.7: the overlap is kept
    assert len(kept(0.61)[0]) == 3 and len(kept(0.59)[0]) == 2  # dropped only above the threshold
    assert kept(1.0, detections_per_img=1) == [kept(1.0)[0][:1], kept(1.0)[1]]  # the best one per image
    # through the composed function: a higher nms_thresh never keeps fewer boxes
    cls_logits, box_deltas, anchors, per_level, sizes = random_outputs(3)
    counts = [len(detections_from_outputs(cls_logits, box_deltas, anchors, per_level, sizes, nms_thresh=t)[0]["boxes"])
              for t in (0.1, 0.3, 0.5, 0.7, 1.0)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
