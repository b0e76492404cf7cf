"""Batched postprocessing against torchvision's per-image loop with batched_nms."""

import torch
from torchvision.ops import batched_nms

from retina_lessons.box_coding import decode_boxes
from retina_lessons.boxes import clip_boxes_to_image
from retina_lessons.postprocess import detections_from_outputs, top_candidates


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


def test_batched_postprocess_equals_the_per_image_loop():
    generator = torch.Generator().manual_seed(0)
    per_level = [400, 100, 30]
    N, K = sum(per_level), 4
    xy = torch.rand(N, 2, generator=generator) * 90
    anchors = torch.cat([xy, xy + 5 + torch.rand(N, 2, generator=generator) * 40], dim=1)
    cls_logits = torch.randn(3, N, K, generator=generator) * 2 - 2
    cls_logits[2] = -10  # an image without any detection
    box_deltas = torch.randn(3, N, 4, generator=generator) * 0.3
    sizes = [(100, 120), (80, 128), (128, 128)]
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
