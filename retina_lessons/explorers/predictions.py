"""The predictions explorer: what a trained detector finds on held-out images, right and wrong.

Paper, Section 4.1 ("Inference"): the detector's confidence is thresholded at 0.05, at most 1000
candidates per pyramid level are decoded, and class-aware non-maximum suppression (IoU 0.5) keeps
the best boxes. Section 5 evaluates with COCO's matching: visited from the highest score down, a
detection is a **true positive** when it takes a not-yet-taken ground-truth box of its own class
with IoU >= 0.5, otherwise a **false positive**; a ground-truth box nobody takes is **missed**.
This module lets a student move the three inference knobs (score threshold, NMS IoU threshold,
detections per image) and watch true positives, false positives, missed objects, precision and
recall change, on one image and over the whole held-out set.

The computing and drawing behind each control are plain functions, tested without a browser:

- :func:`cache_outputs`: the forward pass, run **once** per image; it keeps the raw head outputs
  (``cls_logits (N, K)``, ``box_deltas (N, 4)``) and what decoding needs (anchors, sizes).
- :func:`filter_detections`: only the postprocessing, the library's
  :func:`retina_lessons.postprocess.detections_from_outputs` with the given thresholds, boxes
  mapped back to the original image. For many images, the same in two halves:
  :func:`decode_candidates` (threshold, top-k per level, decode, clip) and :func:`suppress`
  (class-aware NMS, top-N), so that candidates decoded once serve every NMS threshold.
- :func:`cut_detections`: a higher score threshold or a lower cap keeps a prefix of the sorted
  detections, so most slider moves need no postprocessing at all.
- :func:`classify_detections` (:func:`classify_batch`): COCO's greedy matching, all classes of
  all images at once, giving true / false positive flags, why each false positive is wrong
  (duplicate, wrong class, poor localisation, background) and the missed ground truth.
- :func:`precision_recall_at`: precision and recall of those counts.
- :func:`draw_predictions`: a static picture of one image's classified detections.
- :class:`PredictionsExplorer`: ``update(**params)`` re-runs only what the move needs of
  postprocessing and matching on the cached outputs (milliseconds at the classroom size), moves
  matplotlib artists over a saved background, writes the labels with Pillow and renders a PNG
  for an ``ipywidgets.Image``; :meth:`PredictionsExplorer.widget` wires a dropdown and three
  sliders to it. No ``ipympl`` is needed: it works in JupyterLab 4 with ipywidgets 8 as installed.

Taught in ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms

from ..box_coding import decode_boxes
from ..boxes import clip_boxes_to_image
from ..evaluation import UNMATCHED
from ..postprocess import detections_from_outputs, top_candidates
from ..transform import postprocess_boxes
from .canvas import png_bytes

MATCH_IOU = 0.5  # COCO's AP50 criterion (and the paper's NMS threshold, a different use of 0.5)
# Why a false positive is wrong, in the order they are tested (Hoiem et al.'s error types):
FP_REASONS = ("duplicate", "wrong class", "poor localisation", "background")
DUPLICATE, WRONG_CLASS, POOR_LOCALISATION, BACKGROUND_FP = range(len(FP_REASONS))
NOT_FP = -1  # fp_reason of a true positive
LOCALISATION_IOU = 0.1  # a same-class overlap in [0.1, MATCH_IOU) is a localisation error
# Okabe-Ito colours, told apart also by readers with a red-green colour deficiency.
TP_COLOUR = "#009E73"
FP_COLOUR = "#D55E00"
MISSED_COLOUR = "#F0E442"
FOUND_GT_COLOUR = "#FFFFFF"
MAX_LABELS = 20  # text labels per picture: the missed boxes, then the highest-scoring detections
LABEL_FONTSIZE = 7.5  # points
EXPLORER_FONTSIZE = 8.0
IMAGE_FORMATS = ("png", "jpeg")
IMAGES_PER_CALL = 16  # images per batched_nms call in suppress
SCORE_RANGE = (0.05, 0.95)  # slider ranges; 0.05 is the paper's threshold
NMS_RANGE = (0.05, 1.0)
MAX_DETS_RANGE = (1, 100)


# ----------------------------------------------------------------------------- the forward pass, once


@dataclass
class CachedOutputs:
    """The raw head outputs of one image and what turning them into detections needs.

    cls_logits (N, K) and box_deltas (N, 4) over the anchors_xyxy (N, 4) of the padded frame
    the image was run in; image_size (H, W) after resizing (boxes are clipped to it), and
    original_size (H0, W0) (boxes are mapped back to it). Decoding settings come from the config.
    """

    cls_logits: Tensor
    box_deltas: Tensor
    anchors_xyxy: Tensor
    num_anchors_per_level: list[int]
    image_size: tuple[int, int]
    original_size: tuple[int, int]
    topk_candidates: int = 1000
    box_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    box_delta_clamp: float = math.log(1000.0 / 16)

    @property
    def num_classes(self) -> int:
        return self.cls_logits.shape[-1]


@torch.no_grad()
def cache_outputs(model: nn.Module, images: Sequence[Tensor], batch_size: int = 50) -> list[CachedOutputs]:
    """Run `model` (a `RetinaNet`) once over `images` (3, H, W) in [0, 1]; one `CachedOutputs` each.

    Each image is run in the padded frame it would have alone (images sharing that frame are
    batched), so its outputs equal those of ``model.detect([image])``.
    """
    from ..validation import check_images

    images = check_images(list(images), "images")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected a positive integer")
    model.eval()
    config = model.config
    prepared = [model.preprocess([image]) for image in images]  # resize + normalise + pad, alone
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (batch, _, _) in enumerate(prepared):
        groups.setdefault(tuple(batch.shape[-2:]), []).append(i)
    cached: list[CachedOutputs | None] = [None] * len(images)
    for padded_size, indices in groups.items():
        anchors = model.anchors(padded_size)
        per_level = model.num_anchors_per_level(padded_size)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = torch.cat([prepared[i][0] for i in chunk])  # (B, 3, H, W)
            cls_logits, box_deltas = model(batch)  # (B, N, K), (B, N, 4)
            for b, i in enumerate(chunk):
                cached[i] = CachedOutputs(
                    cls_logits[b], box_deltas[b], anchors, per_level, tuple(prepared[i][1][0]),
                    tuple(images[i].shape[-2:]), config.topk_candidates, tuple(config.box_weights),
                    config.box_delta_clamp)
    return cached


# ----------------------------------------------------------------------------- postprocessing only


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_score_thresh(score_thresh) -> None:
    if not _is_number(score_thresh) or not 0.0 <= score_thresh < 1.0:
        raise ValueError(f"score_thresh={score_thresh!r}: expected a number in [0, 1)")


def _check_max_dets(max_dets) -> None:
    if isinstance(max_dets, bool) or not isinstance(max_dets, (int, np.integer)) or max_dets < 1:
        raise ValueError(f"max_dets={max_dets!r}: expected a positive integer")


def _check_filter_params(score_thresh, nms_thresh, max_dets) -> None:
    _check_score_thresh(score_thresh)
    if not _is_number(nms_thresh) or not 0.0 <= nms_thresh <= 1.0:
        raise ValueError(f"nms_thresh={nms_thresh!r}: expected an IoU in [0, 1]")
    _check_max_dets(max_dets)


@dataclass
class Candidates:
    """One image's decoded candidates before NMS (the first half of postprocessing).

    At most ``topk_candidates`` per level of the (anchor, class) pairs scored above `score_thresh`:
    boxes (C, 4) xyxy in the resized image's pixels, clipped to it; scores (C,); labels (C,).
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    score_thresh: float
    image_size: tuple[int, int]
    original_size: tuple[int, int]


def _check_cached(cached: Sequence[CachedOutputs]) -> dict[int, list[int]]:
    """Indices of `cached` grouped by padded frame (shared anchors)."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(cached):
        if not isinstance(c, CachedOutputs):
            raise ValueError(f"cached[{i}]: expected CachedOutputs (from cache_outputs), got {type(c).__name__}")
        groups.setdefault(id(c.anchors_xyxy), []).append(i)
    return groups


def decode_candidates(cached: Sequence[CachedOutputs], score_thresh: float = 0.05) -> list[Candidates]:
    """Threshold, top-k per level, decode and clip, for many cached images at once (no NMS yet).

    The same steps, with the library's own pieces (`top_candidates`, `decode_boxes`,
    `clip_boxes_to_image`), as the first half of `detections_from_outputs`; vectorised over the
    images that share a padded frame, one call per pyramid level.
    """
    _check_score_thresh(score_thresh)
    out: list[Candidates | None] = [None] * len(cached)
    for indices in _check_cached(cached).values():
        first = cached[indices[0]]
        cls_logits = torch.stack([cached[i].cls_logits for i in indices])  # (B, N, K)
        box_deltas = torch.stack([cached[i].box_deltas for i in indices])  # (B, N, 4)
        sizes = torch.as_tensor([cached[i].image_size for i in indices])  # (B, 2) as (H, W)
        image_idx, boxes, scores, labels = [], [], [], []
        start = 0
        for num in first.num_anchors_per_level:  # the 5 levels
            level = slice(start, start + num)
            start += num
            img, anchor, label, score = top_candidates(cls_logits[:, level], score_thresh, first.topk_candidates)
            decoded = decode_boxes(box_deltas[:, level][img, anchor], first.anchors_xyxy[level][anchor],
                                   first.box_weights, first.box_delta_clamp)  # (C_l, 4)
            boxes.append(clip_boxes_to_image(decoded, sizes[img]))
            image_idx.append(img)
            scores.append(score)
            labels.append(label)
        image_idx = torch.cat(image_idx)
        order = torch.sort(image_idx, stable=True).indices  # group by image, levels in order within each
        counts = torch.bincount(image_idx, minlength=len(indices)).tolist()
        parts = [torch.cat(x)[order].split(counts) for x in (boxes, scores, labels)]
        for b, i in enumerate(indices):
            out[i] = Candidates(parts[0][b], parts[1][b], parts[2][b], float(score_thresh),
                                cached[i].image_size, cached[i].original_size)
    return out


def suppress(candidates: Sequence[Candidates], score_thresh: float = 0.05, nms_thresh: float = 0.5,
             max_dets: int = 100) -> list[dict[str, Tensor]]:
    """The second half of postprocessing: class-aware NMS and the best `max_dets` per image.

    Keeps the candidates scored above `score_thresh` (at least the threshold they were decoded
    at: the per-level top-k of a higher threshold keeps exactly these), runs one NMS per (image,
    class) as `detections_from_outputs` does, and maps the boxes back to each original image.
    Images go to torchvision's ``batched_nms`` `IMAGES_PER_CALL` at a time: for many boxes it
    loops over the (image, class) groups scanning every box for each, a cost that grows with the
    square of the batch.
    """
    _check_filter_params(score_thresh, nms_thresh, max_dets)
    out = []
    for start in range(0, len(candidates), IMAGES_PER_CALL):
        chunk = candidates[start : start + IMAGES_PER_CALL]
        for i, c in enumerate(chunk):
            if not isinstance(c, Candidates):
                raise ValueError(f"candidates[{start + i}]: expected Candidates, got {type(c).__name__}")
            if score_thresh < c.score_thresh:
                raise ValueError(f"score_thresh={score_thresh}: below the {c.score_thresh} the candidates of "
                                 f"image {start + i} were decoded at")
        keep = [c.scores > score_thresh for c in chunk]
        boxes = torch.cat([c.boxes[k] for c, k in zip(chunk, keep)])  # (C, 4)
        scores = torch.cat([c.scores[k] for c, k in zip(chunk, keep)])
        labels = torch.cat([c.labels[k] for c, k in zip(chunk, keep)])
        image_idx = torch.cat([torch.full((int(k.sum()),), i) for i, k in enumerate(keep)])
        num_classes = int(labels.max()) + 1 if len(labels) else 1
        kept = batched_nms(boxes, scores, image_idx * num_classes + labels, nms_thresh)  # by decreasing score
        kept = kept[torch.sort(image_idx[kept], stable=True).indices]  # by image, score order inside each
        counts = torch.bincount(image_idx[kept], minlength=len(chunk))
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(kept)) - first[image_idx[kept]]
        kept = kept[rank < max_dets]
        counts = torch.bincount(image_idx[kept], minlength=len(chunk)).tolist()
        detections = [{"boxes": b, "scores": s, "labels": lab} for b, s, lab in
                      zip(boxes[kept].split(counts), scores[kept].split(counts), labels[kept].split(counts))]
        out += postprocess_boxes(detections, [c.image_size for c in chunk], [c.original_size for c in chunk])
    return out


def filter_detections_batch(cached: Sequence[CachedOutputs], score_thresh: float = 0.05,
                            nms_thresh: float = 0.5, max_dets: int = 100) -> list[dict[str, Tensor]]:
    """:func:`filter_detections` for many cached images at once: `decode_candidates`, then `suppress`."""
    _check_filter_params(score_thresh, nms_thresh, max_dets)
    return suppress(decode_candidates(cached, score_thresh), score_thresh, nms_thresh, max_dets)


def cut_detections(det: dict[str, Tensor], score_thresh: float, max_dets: int) -> dict[str, Tensor]:
    """Keep the detections scored above `score_thresh`, at most `max_dets`: ``det`` sorted by score.

    Raising the score threshold or lowering the cap only removes boxes from the end of the sorted
    list: NMS drops a box only for a better-scored one, and the per-level top-k and the final
    top-N keep the best. So ``cut_detections(filter_detections(c, low, nms, many), s, n)`` equals
    ``filter_detections(c, s, nms, n)`` for any ``s >= low`` and ``n <= many``: the explorer
    suppresses once per NMS threshold and cuts for every score or cap move.
    """
    _check_score_thresh(score_thresh)
    _check_max_dets(max_dets)
    num = int(torch.count_nonzero(det["scores"] > score_thresh).clamp(max=int(max_dets)))  # a prefix
    return {key: value[:num] for key, value in det.items()}


def filter_detections(cached_outputs: CachedOutputs, score_thresh: float = 0.05, nms_thresh: float = 0.5,
                      max_dets: int = 100) -> dict[str, Tensor]:
    """One image's detections from its cached head outputs: threshold, top-k, decode, NMS, top-N.

    Exactly the library's postprocessing (`detections_from_outputs`) with these settings, boxes mapped
    back to the original image. Returns ``boxes`` (D, 4) xyxy in the original image's pixels,
    ``scores`` (D,) and ``labels`` (D,), by decreasing score, D <= max_dets. Bad thresholds raise
    ValueError.
    """
    _check_filter_params(score_thresh, nms_thresh, max_dets)
    if not isinstance(cached_outputs, CachedOutputs):
        raise ValueError(f"cached_outputs: expected CachedOutputs (from cache_outputs), got "
                         f"{type(cached_outputs).__name__}")
    c = cached_outputs
    detection = detections_from_outputs(
        c.cls_logits[None], c.box_deltas[None], c.anchors_xyxy, c.num_anchors_per_level, [c.image_size],
        score_thresh=score_thresh, topk_candidates=c.topk_candidates, nms_thresh=nms_thresh,
        detections_per_img=int(max_dets), box_weights=c.box_weights, box_delta_clamp=c.box_delta_clamp)
    return postprocess_boxes(detection, [c.image_size], [c.original_size])[0]


# ----------------------------------------------------------------------------- true / false positives


class Classified(NamedTuple):
    """One image's detections judged against its ground truth (detections in their given order)."""

    tp: Tensor  # (D,) bool: true positive
    matched_gt_idx: Tensor  # (D,) int64: the ground-truth box taken, or UNMATCHED (-1)
    fp_reason: Tensor  # (D,) int64: index into FP_REASONS, NOT_FP (-1) for a true positive
    missed: Tensor  # (M,) bool: ground truth no detection took

    @property
    def num_tp(self) -> int:
        return int(self.tp.sum())

    @property
    def num_fp(self) -> int:
        return int((~self.tp).sum())

    @property
    def num_gt(self) -> int:
        return len(self.missed)

    @property
    def num_missed(self) -> int:
        return int(self.missed.sum())


def _as_array(value, dtype) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy().astype(dtype, copy=False)
    return np.asarray(value, dtype=dtype)


def _check_target(entry, name: str, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """A detections or ground-truth dict -> NumPy arrays (boxes (n, 4) float64, then one (n,) per key)."""
    if not isinstance(entry, dict):
        raise ValueError(f"{name}: expected a dict with keys {keys}, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"{name}: missing keys {missing}; expected {keys}")
    boxes = _as_array(entry["boxes"], np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}['boxes']: expected shape (n, 4), got {boxes.shape}")
    if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        raise ValueError(f"{name}['boxes']: expected xyxy boxes with x1 <= x2 and y1 <= y2")
    arrays = [boxes]
    for key in keys[1:]:
        value = _as_array(entry[key], np.float64 if key == "scores" else np.int64).reshape(-1)
        if len(value) != len(boxes):
            raise ValueError(f"{name}['{key}']: expected {len(boxes)} values, one per box, got {len(value)}")
        arrays.append(value)
    return tuple(arrays)


def _pad(arrays: list[np.ndarray], width: int, fill, dtype, trailing: tuple = ()) -> np.ndarray:
    """Stack per-image arrays of different lengths into (B, width, *trailing), padding with `fill`."""
    out = np.full((len(arrays), width, *trailing), fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def _iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(B, D, 4) and (B, M, 4) xyxy -> (B, D, M) IoU in float64, 0 where boxes do not overlap (as COCO)."""
    top_left = np.maximum(boxes1[:, :, None, :2], boxes2[:, None, :, :2])  # (B, D, M, 2)
    bottom_right = np.minimum(boxes1[:, :, None, 2:], boxes2[:, None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # (B, D, M)
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])  # (B, D)
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])  # (B, M)
    union = area1[:, :, None] + area2[:, None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def classify_batch(detections: Sequence[dict], targets: Sequence[dict],
                   iou_threshold: float = MATCH_IOU) -> list[Classified]:
    """:func:`classify_detections` for many images at once (one loop over detection ranks, not images)."""
    if not _is_number(iou_threshold) or not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold!r}: expected an IoU in [0, 1]")
    if len(detections) != len(targets):
        raise ValueError(f"detections, targets: expected one target per image, got {len(detections)} "
                         f"and {len(targets)}")
    dets = [_check_target(d, f"detections[{i}]", ("boxes", "scores", "labels")) for i, d in enumerate(detections)]
    gts = [_check_target(t, f"targets[{i}]", ("boxes", "labels")) for i, t in enumerate(targets)]
    B = len(dets)
    if B == 0:
        return []
    num_dets = np.array([len(d[0]) for d in dets])
    num_gt = np.array([len(g[0]) for g in gts])
    D, M = max(int(num_dets.max()), 1), max(int(num_gt.max()), 1)
    # Visit each image's detections by decreasing score (stable, as COCO's per-class order).
    orders = [np.argsort(-d[1], kind="stable") for d in dets]
    det_boxes = _pad([d[0][o] for d, o in zip(dets, orders)], D, 0.0, np.float64, (4,))  # (B, D, 4)
    det_labels = _pad([d[2][o] for d, o in zip(dets, orders)], D, -1, np.int64)  # (B, D)
    gt_boxes = _pad([g[0] for g in gts], M, 0.0, np.float64, (4,))  # (B, M, 4)
    gt_labels = _pad([g[1] for g in gts], M, -2, np.int64)  # (B, M); -2 never equals a label
    det_valid = np.arange(D)[None, :] < num_dets[:, None]  # (B, D)
    gt_valid = np.arange(M)[None, :] < num_gt[:, None]  # (B, M)

    iou = _iou(det_boxes, gt_boxes)  # (B, D, M)
    pair_valid = det_valid[:, :, None] & gt_valid[:, None, :]
    same_class = (det_labels[:, :, None] == gt_labels[:, None, :]) & pair_valid  # (B, D, M)
    iou_same = np.where(same_class, iou, -1.0)
    threshold = min(iou_threshold, 1 - 1e-10)  # COCO's cap: a perfect box still matches at 1.0
    taken = np.zeros((B, M), dtype=bool)
    matched = np.full((B, D), UNMATCHED, dtype=np.int64)
    rows = np.arange(B)
    for d in range(int(num_dets.max())):  # greedy: rank by rank, every image at once
        candidate = ~taken & (iou_same[:, d] >= threshold)  # (B, M)
        # highest IoU; on a tie COCO's loop keeps the last box, hence the reversed argmax
        best = M - 1 - np.where(candidate, iou_same[:, d], -1.0)[:, ::-1].argmax(-1)  # (B,)
        found = candidate[rows, best]
        matched[found, d] = best[found]
        taken[rows[found], best[found]] = True

    tp = matched != UNMATCHED
    best_same = iou_same.max(-1, initial=-1.0)  # (B, D)
    best_other = np.where(pair_valid & ~same_class, iou, -1.0).max(-1, initial=-1.0)
    reason = np.select(
        [tp, best_same >= threshold, best_other >= threshold, best_same >= LOCALISATION_IOU],
        [NOT_FP, DUPLICATE, WRONG_CLASS, POOR_LOCALISATION], BACKGROUND_FP)  # (B, D)

    results = []
    for i, order in enumerate(orders):
        n = len(order)
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)  # back to the detections' given order
        results.append(Classified(
            tp=torch.from_numpy(tp[i, :n][inverse].copy()),
            matched_gt_idx=torch.from_numpy(matched[i, :n][inverse].copy()),
            fp_reason=torch.from_numpy(reason[i, :n][inverse].astype(np.int64)),
            missed=torch.from_numpy(~taken[i, : num_gt[i]]),
        ))
    return results


def classify_detections(det: dict, gt: dict, iou: float = MATCH_IOU) -> Classified:
    """Judge one image's detections against its ground truth, as COCO's AP50 does.

    Detections are visited by decreasing score; each takes the not-yet-taken ground-truth box
    of its own class with the highest IoU, if that IoU >= `iou` (a **true positive**); otherwise
    it is a **false positive**, for the first of these reasons that applies: *duplicate* (a box of
    its class overlaps enough but was taken by a better-scored detection), *wrong class* (a box
    of another class overlaps enough), *poor localisation* (a box of its class overlaps by
    ``LOCALISATION_IOU`` to `iou`), *background*. Ground truth no detection takes is *missed*.

    Args:
        det: ``boxes`` (D, 4) xyxy, ``scores`` (D,), ``labels`` (D,).
        gt: ``boxes`` (M, 4) xyxy, ``labels`` (M,); M = 0 is fine (every detection is background).
        iou: the IoU a match needs.
    Returns:
        `Classified`: ``tp`` (D,), ``matched_gt_idx`` (D,), ``fp_reason`` (D,), ``missed`` (M,).
    """
    return classify_batch([det], [gt], iou)[0]


class PrecisionRecall(NamedTuple):
    precision: float  # TP / (TP + FP); nan without detections
    recall: float  # TP / ground truth; nan without ground truth
    num_tp: int
    num_fp: int
    num_gt: int


def precision_recall_at(classified: Classified | Sequence[Classified]) -> PrecisionRecall:
    """Precision and recall of one image's (or many images') classified detections.

    These are single points, at the thresholds the detections were filtered with; sweeping the
    score threshold traces the precision-recall curve whose area is AP (lesson 09).
    """
    items = [classified] if isinstance(classified, Classified) else list(classified)
    if not all(isinstance(c, Classified) for c in items):
        raise ValueError("classified: expected a Classified (from classify_detections) or a list of them")
    num_tp = sum(c.num_tp for c in items)
    num_fp = sum(c.num_fp for c in items)
    num_gt = sum(c.num_gt for c in items)
    precision = num_tp / (num_tp + num_fp) if num_tp + num_fp else math.nan
    recall = num_tp / num_gt if num_gt else math.nan
    return PrecisionRecall(precision, recall, num_tp, num_fp, num_gt)


# ----------------------------------------------------------------------------- drawing


def box_outlines(boxes_xyxy) -> np.ndarray:
    """(D, 4) xyxy boxes -> (D, 5, 2) closed outlines for a LineCollection."""
    b = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack([np.stack(p, axis=1) for p in ((x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1))], axis=1)


def _outline_effect(width: float = 3.5):
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=width, foreground="black"), patheffects.Normal()]


def detection_labels(det: dict, classified: Classified, class_names: Sequence[str]) -> list[str]:
    """ "circle 0.93" for a true positive, "circle 0.41 (duplicate)" for a false positive."""
    names = [class_names[k] for k in det["labels"].tolist()]
    labels = []
    for name, score, reason in zip(names, det["scores"].tolist(), classified.fp_reason.tolist()):
        suffix = "" if reason == NOT_FP else f" ({FP_REASONS[reason]})"
        labels.append(f"{name} {score:.2f}{suffix}")
    return labels


class Label(NamedTuple):
    """A box's text label: anchored at (x, y) in image pixels, above (va "bottom") or below (va "top")."""

    x: float
    y: float
    va: str
    text: str
    colour: str  # the box's colour, filling the label's background

    @property
    def text_colour(self) -> str:
        return "black" if self.colour == MISSED_COLOUR else "white"


def prediction_labels(det: dict, gt: dict, classified: Classified, class_names: Sequence[str],
                      image_height: float, max_labels: int = MAX_LABELS,
                      text_size: tuple[float, float] | None = None) -> list[Label]:
    """The labels of a picture: every missed box first (there are few), then detections by score.

    A detection's label sits above its top-left corner, a missed box's below its bottom-left
    corner; where the image ends there, the label goes just inside the box instead. With
    ``text_size = (line height, character width)`` in image pixels, a label that would cover an
    earlier one moves a line further out (labels of near-identical boxes stack).
    """
    margin = 0.07 * image_height
    gt_boxes = np.asarray(gt["boxes"], dtype=float).reshape(-1, 4)
    gt_labels = np.asarray(gt["labels"]).reshape(-1)
    missed = classified.missed.numpy()
    labels = [Label(x1, y2, "bottom" if y2 > image_height - margin else "top", f"missed {class_names[int(k)]}",
                    MISSED_COLOUR) for (x1, _, _, y2), k in zip(gt_boxes[missed], gt_labels[missed])]
    boxes = det["boxes"].detach().cpu().numpy().reshape(-1, 4)
    for (x1, y1, _, _), text, is_tp in zip(boxes, detection_labels(det, classified, class_names),
                                           classified.tp.tolist()):
        labels.append(Label(x1, y1, "top" if y1 < margin else "bottom", text, TP_COLOUR if is_tp else FP_COLOUR))
    labels = labels[:max_labels]
    return _stack(labels, *text_size, image_height) if text_size is not None else labels


def _stack(labels: list[Label], line_height: float, char_width: float, image_height: float,
           max_moves: int = 4) -> list[Label]:
    """Move each label that overlaps an earlier one by whole lines, away from its box (then towards it)."""
    placed: list[tuple[float, float, float, float]] = []  # (x1, y1, x2, y2) in image pixels
    out = []

    def extent(label: Label, y: float) -> tuple[float, float, float, float]:
        top = y - line_height if label.va == "bottom" else y
        return label.x, top, label.x + char_width * len(label.text), top + line_height

    def free(box) -> bool:
        return all(box[2] <= p[0] or p[2] <= box[0] or box[3] <= p[1] or p[3] <= box[1] for p in placed)

    for label in labels:
        away = -1.0 if label.va == "bottom" else 1.0  # up for a label above its box, down for one below
        tries = [label.y + away * k * line_height for k in range(max_moves + 1)]
        tries += [label.y - away * k * line_height for k in range(1, max_moves + 1)]
        for y in tries:
            box = extent(label, y)
            if box[1] >= 0 and box[3] <= image_height and free(box):
                label = label._replace(y=y)
                break
        placed.append(extent(label, label.y))
        out.append(label)
    return out


def text_size(ax, image_height: float, fontsize: float) -> tuple[float, float]:
    """(line height, character width) of labels of `fontsize` points, in image pixels of `ax`."""
    pixels_per_unit = ax.get_window_extent().height / image_height
    em = fontsize * ax.figure.dpi / 72  # screen pixels
    return 1.45 * em / pixels_per_unit, 0.62 * em / pixels_per_unit


class PredictionArtists:
    """The box outlines of classified detections and missed ground truth; `set` moves them in place."""

    def __init__(self, ax, animated: bool = False) -> None:
        from matplotlib.collections import LineCollection

        self.ax = ax
        effect = _outline_effect()
        self.found_gt = LineCollection([], colors=FOUND_GT_COLOUR, linewidths=1.0, linestyles=":",
                                       animated=animated, zorder=3)
        self.missed = LineCollection([], colors=MISSED_COLOUR, linewidths=2.0, linestyles=(0, (4, 2.5)),
                                     animated=animated, zorder=4)
        self.fp = LineCollection([], colors=FP_COLOUR, linewidths=2.0, animated=animated, zorder=5)
        self.tp = LineCollection([], colors=TP_COLOUR, linewidths=2.0, animated=animated, zorder=6)
        for collection in (self.missed, self.fp, self.tp):
            collection.set_path_effects(effect)
        for collection in self.artists:
            ax.add_collection(collection)

    @property
    def artists(self) -> list:
        return [self.found_gt, self.missed, self.fp, self.tp]

    def set(self, det: dict, gt: dict, classified: Classified) -> None:
        boxes = det["boxes"].detach().cpu().numpy().reshape(-1, 4)
        tp = classified.tp.numpy()
        gt_boxes = np.asarray(gt["boxes"], dtype=float).reshape(-1, 4)
        missed = classified.missed.numpy()
        self.tp.set_segments(list(box_outlines(boxes[tp])))
        self.fp.set_segments(list(box_outlines(boxes[~tp])))
        self.missed.set_segments(list(box_outlines(gt_boxes[missed])))
        self.found_gt.set_segments(list(box_outlines(gt_boxes[~missed])))


def draw_labels(ax, labels: Sequence[Label], fontsize: float = 7.5) -> list:
    """Matplotlib text artists for `labels` (for static pictures; the explorer draws them with PIL).

    The first label is drawn on top of the others (missed boxes, then the best-scored detections).
    """
    return [ax.text(label.x, label.y, label.text, fontsize=fontsize, va=label.va, ha="left",
                    color=label.text_colour, zorder=7 + 1 / (1 + rank), clip_on=True,
                    bbox={"facecolor": label.colour, "pad": 1.0, "lw": 0, "alpha": 0.9})
            for rank, label in enumerate(labels)]


class LabelPainter:
    """Draws `Label`s straight onto rendered pixels with Pillow, in matplotlib's DejaVu Sans.

    Matplotlib lays out and rasterises every glyph of every text on each draw (a few ms per
    label); Pillow's FreeType text costs a fraction of that, which keeps a slider move with
    dozens of labels within the explorer's time budget.
    """

    def __init__(self, fontsize: float, dpi: float) -> None:
        from matplotlib import font_manager
        from PIL import ImageFont

        self.font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), max(6, round(fontsize * dpi / 72)))

    def paint(self, picture, labels: Sequence[Label], to_pixels, clip: tuple[float, float, float, float]) -> None:
        """Draw onto the PIL image `picture`; `to_pixels` maps (N, 2) image coordinates to pixel (col, row)."""
        from PIL import ImageDraw

        if not labels:
            return
        draw = ImageDraw.Draw(picture)
        points = to_pixels(np.array([(label.x, label.y) for label in labels], dtype=float))
        left, top, right, bottom = clip
        for label, (col, row) in reversed(list(zip(labels, points))):  # the first label ends on top
            anchor = "ld" if label.va == "bottom" else "la"
            x1, y1, x2, y2 = draw.textbbox((col, row), label.text, font=self.font, anchor=anchor)
            shift_x = min(0.0, right - x2 - 1)  # keep the label inside the axes
            if x1 + shift_x > right or y2 < top or y1 > bottom:
                continue
            draw.rectangle((x1 + shift_x - 1, y1 - 1, x2 + shift_x + 1, y2 + 1), fill=label.colour)
            draw.text((col + shift_x, row), label.text, font=self.font, fill=label.text_colour, anchor=anchor)

    def paint_status(self, picture, text: str, centre_x: float, bottom_row: float) -> None:
        """One line of black text centred at `centre_x`, its descenders on `bottom_row` (pixels)."""
        from PIL import ImageDraw

        ImageDraw.Draw(picture).text((centre_x, bottom_row), text, font=self.font, fill="black", anchor="md")


def _legend(fig, **kwargs) -> None:
    from matplotlib.lines import Line2D

    effect = _outline_effect()
    handles = [
        Line2D([], [], color=TP_COLOUR, lw=2, path_effects=effect, label="true positive"),
        Line2D([], [], color=FP_COLOUR, lw=2, path_effects=effect, label="false positive"),
        Line2D([], [], color=MISSED_COLOUR, lw=2, ls=(0, (4, 2.5)), path_effects=effect, label="missed object"),
        Line2D([], [], color="#808080", lw=1, ls=":", label="object found (ground truth)"),
    ]
    options = {"loc": "lower center", "fontsize": 8, "ncols": 2, "framealpha": 1.0}
    fig.legend(handles=handles, **{**options, **kwargs})


def _format(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def draw_predictions(ax, image: Tensor, det: dict, gt: dict, class_names: Sequence[str],
                     iou: float = MATCH_IOU, title: str | None = None) -> Classified:
    """Draw one image with its detections coloured true / false positive and its missed objects dashed.

    A static picture (the explorer keeps the artists and moves them instead); returns the
    `Classified` detections. Boxes are in the image's own pixels.
    """
    classified = classify_detections(det, gt, iou)
    height, width = image.shape[-2:]
    ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    PredictionArtists(ax).set(det, gt, classified)
    draw_labels(ax, prediction_labels(det, gt, classified, class_names, height,
                                      text_size=text_size(ax, height, LABEL_FONTSIZE)), LABEL_FONTSIZE)
    pr = precision_recall_at(classified)
    default = (f"{pr.num_tp} TP, {pr.num_fp} FP, {classified.num_missed} missed: "
               f"precision {_format(pr.precision)}, recall {_format(pr.recall)}")
    ax.set_title(title if title is not None else default, fontsize=9.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return classified


# ----------------------------------------------------------------------------- the explorer


@contextmanager
def _one_thread():
    """Run torch on one thread: an update works on small tensors, where a parallel region gains
    nothing and, on a busy machine, can wait milliseconds for a second thread to be scheduled."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class _Judged:
    """One image's detections at a low score threshold `floor` (at most `cap`), classified once.

    Greedy NMS and COCO's greedy matching both decide a detection's fate from the better-scored
    ones only, so any higher score threshold or lower cap keeps a prefix of these detections,
    with the same true / false positive flags: counting for a new threshold is a look-up.
    """

    floor: float
    cap: int
    detections: dict[str, Tensor]  # by decreasing score
    classified: Classified
    scores: np.ndarray  # (D,)
    tp_cumsum: np.ndarray  # (D + 1,): true positives among the first n detections
    reason_cumsum: np.ndarray  # (D + 1, len(FP_REASONS)): false positives of each reason among them
    taken_at: np.ndarray  # (M,): rank of the detection that took each ground-truth box (D if none)

    @classmethod
    def of(cls, floor: float, cap: int, det: dict[str, Tensor], classified: Classified) -> _Judged:
        D = len(det["scores"])
        tp = classified.tp.numpy()
        reasons = classified.fp_reason.numpy()[:, None] == np.arange(len(FP_REASONS))[None, :]  # (D, R)
        taken_at = np.full(len(classified.missed), D)
        matched = classified.matched_gt_idx.numpy()
        taken_at[matched[tp]] = np.flatnonzero(tp)
        return cls(floor, cap, det, classified, det["scores"].numpy(),
                   np.concatenate([[0], np.cumsum(tp)]),
                   np.concatenate([np.zeros((1, len(FP_REASONS)), dtype=np.int64), np.cumsum(reasons, 0)]),
                   taken_at)

    def kept(self, score_thresh: float, max_dets: int) -> int:
        """How many detections a score threshold and a cap keep: a prefix (`cut_detections`)."""
        return min(int(np.count_nonzero(self.scores > score_thresh)), max_dets)

    def counts(self, score_thresh: float, max_dets: int) -> list[int]:
        """[true positives, detections, missed, false positives of each reason] for these settings."""
        n = self.kept(score_thresh, max_dets)
        return [int(self.tp_cumsum[n]), n, int(np.count_nonzero(self.taken_at >= n)),
                *self.reason_cumsum[n].tolist()]

    def cut(self, score_thresh: float, max_dets: int) -> tuple[dict[str, Tensor], Classified]:
        """The detections and their classification for these settings."""
        n = self.kept(score_thresh, max_dets)
        c = self.classified
        return ({key: value[:n] for key, value in self.detections.items()},
                Classified(c.tp[:n], c.matched_gt_idx[:n], c.fp_reason[:n], torch.from_numpy(self.taken_at >= n)))


class PredictionsExplorer:
    """A trained detector's detections on held-out images: true / false positives and missed objects.

    The forward pass runs once per image (:func:`cache_outputs`, all images at construction
    when ``set_stats`` asks for the whole set's precision and recall, otherwise on first
    view), unless ``cached`` brings the outputs of an earlier `cache_outputs` call. ``update(**params)`` changes any of ``image`` (an index or a name), ``score_thresh``,
    ``nms_thresh``, ``max_dets`` and ``iou`` (the IoU a true positive needs), re-runs only
    postprocessing and matching, moves the artists and returns the numbers; bad values raise
    ValueError. :meth:`render` gives the picture (PNG or JPEG bytes), :meth:`widget` the controls.
    """

    def __init__(self, model: nn.Module, images: Sequence[Tensor], targets: Sequence[dict],
                 class_names: Sequence[str], names: Sequence[str] | None = None, *, score_thresh: float = 0.3,
                 nms_thresh: float | None = None, max_dets: int | None = None, iou: float = MATCH_IOU,
                 set_stats: bool = True, cached: Sequence[CachedOutputs] | None = None, figsize=(5.0, 5.6),
                 dpi: int = 100, image_format: str = "png") -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format={image_format!r}: expected one of {IMAGE_FORMATS}")
        if len(images) == 0 or len(images) != len(targets):
            raise ValueError(f"images, targets: expected the same positive number of each, got {len(images)} "
                             f"and {len(targets)}")
        if names is not None and len(names) != len(images):
            raise ValueError(f"names: expected one name per image ({len(images)}), got {len(names)}")
        self.model = model.eval()
        self.images = list(images)
        self.targets = [{"boxes": torch.as_tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
                         "labels": torch.as_tensor(t["labels"], dtype=torch.int64).reshape(-1)} for t in targets]
        self.class_names = list(class_names)
        self.names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        self.image_format = image_format
        config = model.config
        self.params = {"image": 0, "score_thresh": score_thresh,
                       "nms_thresh": config.nms_thresh if nms_thresh is None else nms_thresh,
                       "max_dets": min(config.detections_per_img, MAX_DETS_RANGE[1]) if max_dets is None else max_dets,
                       "iou": iou}
        if cached is not None and len(cached) != len(self.images):
            raise ValueError(f"cached: expected the outputs of all {len(self.images)} images (from cache_outputs), "
                             f"got {len(cached)}")
        self._cache: list[CachedOutputs | None] = list(cached) if cached is not None else [None] * len(self.images)
        self._candidates: dict[int, Candidates] = {}  # image -> decoded candidates before NMS
        self._judged: dict[tuple[float, float], dict[int, _Judged]] = {}  # (nms, iou) -> image -> ...
        self.set_stats = set_stats
        missing = [i for i, c in enumerate(self._cache) if c is None]
        if set_stats and missing:
            self._cache = cache_outputs(model, self.images)
        self.fig = Figure(figsize=figsize, dpi=dpi)  # outside pyplot: never shown twice in a notebook
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.13, 0.19, 0.84, 0.72))
        self.artists = PredictionArtists(self.ax, animated=True)
        self.name_text = self.fig.text(0.55, 0.985, "", ha="center", va="top", fontsize=10)
        self._painter = LabelPainter(fontsize=EXPLORER_FONTSIZE, dpi=dpi)
        self._labels: list[Label] = []
        self._status = ""
        _legend(self.fig, bbox_to_anchor=(0.5, 0.0))
        self._backgrounds: dict[int, object] = {}
        self._shown_image: int | None = None
        self._picture: bytes | None = None
        self.detections: dict[str, Tensor] = {}
        self.classified: Classified | None = None
        self.image_pr: PrecisionRecall | None = None
        self.set_pr: PrecisionRecall | None = None
        self.set_fp_reasons: dict[str, int] = {}
        self.update()

    @classmethod
    def from_dataset(cls, model: nn.Module, dataset, indices: Sequence[int] | None = None, **kwargs):
        """An explorer over the items ``(image, target)`` of `dataset` (e.g. the held-out shapes)."""
        indices = list(range(len(dataset))) if indices is None else list(indices)
        items = [dataset[i] for i in indices]
        records = getattr(dataset, "records", None)
        names = []
        for i, (_, target) in zip(indices, items):
            file_name = records[i][0].name if records is not None else f"#{i}"
            names.append(f"{file_name} ({len(target['labels'])} objects)")
        return cls(model, [image for image, _ in items], [target for _, target in items],
                   dataset.class_names, names, **kwargs)

    # --- parameters -------------------------------------------------------------------------

    def _image_index(self, image) -> int:
        if isinstance(image, str):
            if image not in self.names:
                raise ValueError(f"image={image!r}: expected one of the names {self.names[:3]}...")
            return self.names.index(image)
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not 0 <= image < len(self.images):
            raise ValueError(f"image={image!r}: expected an index in [0, {len(self.images)}) or a name")
        return int(image)

    def _validate(self, params: dict) -> dict:
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}: expected some of {sorted(self.params)}")
        p = {**self.params, **params}
        p["image"] = self._image_index(p["image"])
        _check_filter_params(p["score_thresh"], p["nms_thresh"], p["max_dets"])
        if not _is_number(p["iou"]) or not 0.0 < p["iou"] <= 1.0:
            raise ValueError(f"iou={p['iou']!r}: expected an IoU in (0, 1]")
        p["max_dets"] = int(p["max_dets"])
        return p

    # --- computing ----------------------------------------------------------------------------

    def cached(self, image: int) -> CachedOutputs:
        """The raw head outputs of image `image`, from one forward pass the first time it is asked for."""
        if self._cache[image] is None:
            self._cache[image] = cache_outputs(self.model, [self.images[image]])[0]
        return self._cache[image]

    def judged(self, indices: Sequence[int], p: dict) -> list[_Judged]:
        """Postprocessed and classified detections of these images, reused across slider moves.

        Per (NMS threshold, match IoU) an image keeps its detections at the sliders' lowest score
        threshold and largest cap, classified once. Every score threshold or cap above those only
        takes a prefix of them (`_Judged.cut`). Suppression and matching run again only for a new
        NMS threshold or match IoU (or a threshold or cap beyond the sliders' ranges); the candidates
        they start from are decoded once per image (`candidates`).
        """
        cap = max(MAX_DETS_RANGE[1], p["max_dets"])
        store = self._judged.setdefault((p["nms_thresh"], p["iou"]), {})
        stale = [i for i in indices if i not in store or store[i].floor > p["score_thresh"] or store[i].cap < cap]
        if stale:
            candidates = self.candidates(stale, p["score_thresh"])
            floor = min(c.score_thresh for c in candidates)
            detections = suppress(candidates, floor, p["nms_thresh"], cap)
            classified = classify_batch(detections, [self.targets[i] for i in stale], p["iou"])
            store.update((i, _Judged.of(floor, cap, d, c)) for i, d, c in zip(stale, detections, classified))
        return [store[i] for i in indices]

    def candidates(self, indices: Sequence[int], score_thresh: float) -> list[Candidates]:
        """Decoded candidates of these images at `score_thresh` or below, decoded once per image.

        Decoded at the sliders' lowest threshold (lower only if asked for), so that every NMS threshold
        and every higher score threshold reuses them.
        """
        floor = min(SCORE_RANGE[0], score_thresh)
        stale = [i for i in indices if i not in self._candidates or self._candidates[i].score_thresh > floor]
        if stale:
            self._candidates.update(zip(stale, decode_candidates([self.cached(i) for i in stale], floor)))
        return [self._candidates[i] for i in indices]

    def update(self, **params) -> dict:
        """Change some parameters, re-run postprocessing and matching as needed, move the artists.

        Returns `numbers()`.
        """
        p = self._validate(params)
        self.params = p
        with _one_thread():
            self._update(p)
        return self.numbers()

    def _update(self, p: dict) -> None:
        i = p["image"]
        s, n_max = p["score_thresh"], p["max_dets"]
        if self.set_stats:
            judged = self.judged(range(len(self.images)), p)
            counts = np.array([j.counts(s, n_max) for j in judged])  # (images, 3 + len(FP_REASONS))
            num_tp, num_dets, _ = counts[:, :3].sum(0)
            num_gt = sum(len(t["labels"]) for t in self.targets)
            self.set_pr = PrecisionRecall(num_tp / num_dets if num_dets else math.nan,
                                          num_tp / num_gt if num_gt else math.nan,
                                          int(num_tp), int(num_dets - num_tp), num_gt)
            self.set_fp_reasons = dict(zip(FP_REASONS, counts[:, 3:].sum(0).tolist()))
            current = judged[i]
        else:
            current = self.judged([i], p)[0]
        self.detections, self.classified = current.cut(s, n_max)
        self.image_pr = precision_recall_at(self.classified)
        self._draw(i)

    def numbers(self) -> dict:
        """The counts, precision and recall shown: for the image, and for the whole set if computed."""
        pr, c = self.image_pr, self.classified
        out = {"detections": len(c.tp), "tp": pr.num_tp, "fp": pr.num_fp, "missed": c.num_missed,
               "num_gt": pr.num_gt, "precision": pr.precision, "recall": pr.recall,
               "fp_reasons": {name: int((c.fp_reason == k).sum()) for k, name in enumerate(FP_REASONS)}}
        if self.set_pr is not None:
            s = self.set_pr
            out["set"] = {"images": len(self.images), "tp": s.num_tp, "fp": s.num_fp,
                          "missed": s.num_gt - s.num_tp, "num_gt": s.num_gt, "precision": s.precision,
                          "recall": s.recall, "fp_reasons": dict(self.set_fp_reasons)}
        return out

    # --- drawing ------------------------------------------------------------------------------

    def _draw(self, image: int) -> None:
        height, width = self.images[image].shape[-2:]
        self.ax.set_xlim(0, width)  # the artists' transform needs these even when the pixels are cached
        self.ax.set_ylim(height, 0)
        if image not in self._backgrounds:  # image, axes, name and legend: drawn once per image
            for old in list(self.ax.images):
                old.remove()
            self.ax.imshow(self.images[image].permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0),
                           zorder=0)
            self.ax.set_xlim(0, width)
            self.ax.set_ylim(height, 0)
            self.ax.set_xlabel("x (pixels)")
            self.ax.set_ylabel("y (pixels)")
            self.name_text.set_text(self.names[image])
            self.fig.canvas.draw()
            self._backgrounds[image] = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._shown_image = image
        self.artists.set(self.detections, self.targets[image], self.classified)
        self._labels = prediction_labels(self.detections, self.targets[image], self.classified, self.class_names,
                                         height, text_size=text_size(self.ax, height, EXPLORER_FONTSIZE))
        p, pr, c = self.params, self.image_pr, self.classified
        self._status = (f"score > {p['score_thresh']:.2f}, NMS IoU {p['nms_thresh']:.2f}, top {p['max_dets']}: "
                        f"{pr.num_tp} TP, {pr.num_fp} FP, {c.num_missed} missed")
        self._picture = None

    def render(self) -> bytes:
        """The current picture as PNG (or JPEG) bytes: saved background, box outlines, then the labels."""
        if self._picture is None:
            import io

            from PIL import Image

            canvas = self.fig.canvas
            canvas.restore_region(self._backgrounds[self._shown_image])
            for artist in self.artists.artists:
                self.fig.draw_artist(artist)
            picture = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())  # (H, W, 3) uint8
            fig_height = picture.height

            def to_pixels(points):  # image coordinates -> (column, row) from the top-left corner
                display = self.ax.transData.transform(points)
                return np.stack([display[:, 0], fig_height - display[:, 1]], axis=1)

            x0, y0, x1, y1 = self.ax.bbox.extents
            self._painter.paint(picture, self._labels, to_pixels, (x0, fig_height - y1, x1, fig_height - y0))
            self._painter.paint_status(picture, self._status, (x0 + x1) / 2, fig_height - y1 - 4)
            if self.image_format == "png":
                self._picture = png_bytes(np.asarray(picture))
            else:
                buffer = io.BytesIO()
                picture.save(buffer, format="JPEG", quality=90)
                self._picture = buffer.getvalue()
        return self._picture

    def table_html(self) -> str:
        """Counts, precision and recall for the image (and the whole set), with the false positives' reasons."""
        n = self.numbers()
        rows = [("this image", n)] + ([(f"all {n['set']['images']} images", n["set"])] if "set" in n else [])
        head = ("<tr><th></th><th>TP</th><th>FP</th><th>missed</th><th>precision</th><th>recall</th>"
                + "".join(f"<th>FP: {r}</th>" for r in FP_REASONS) + "</tr>")
        body = "".join(
            f"<tr><td><b>{label}</b></td><td style='color:{TP_COLOUR}'><b>{r['tp']}</b></td>"
            f"<td style='color:{FP_COLOUR}'><b>{r['fp']}</b></td><td>{r['missed']} of {r['num_gt']}</td>"
            f"<td>{_format(r['precision'])}</td><td>{_format(r['recall'])}</td>"
            + "".join(f"<td>{r['fp_reasons'][reason]}</td>" for reason in FP_REASONS) + "</tr>"
            for label, r in rows)
        return f"<table>{head}{body}</table>"

    # --- widgets ------------------------------------------------------------------------------

    def widget(self):
        """A dropdown over the images and sliders for the three inference settings, around the picture."""
        import ipywidgets as W

        p = self.params
        image = W.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=p["image"],
                           description="image", layout={"width": "360px"})
        score = W.FloatSlider(value=p["score_thresh"], min=SCORE_RANGE[0], max=SCORE_RANGE[1], step=0.05,
                              description="score >=", readout_format=".2f", continuous_update=True)
        nms = W.FloatSlider(value=p["nms_thresh"], min=NMS_RANGE[0], max=NMS_RANGE[1], step=0.05,
                            description="NMS IoU", readout_format=".2f", continuous_update=True)
        max_dets = W.IntSlider(value=p["max_dets"], min=MAX_DETS_RANGE[0], max=MAX_DETS_RANGE[1], step=1,
                               description="detections", continuous_update=True)
        picture = W.Image(value=self.render(), format=self.image_format)
        table = W.HTML(value=self.table_html())
        message = W.HTML()

        def on_change(_change=None):
            try:
                self.update(image=image.value, score_thresh=score.value, nms_thresh=nms.value,
                            max_dets=max_dets.value)
                message.value = ""
                picture.value = self.render()
                table.value = self.table_html()
            except ValueError as error:  # say what is wrong, keep the last picture
                message.value = f"<span style='color:{FP_COLOUR}'>{error}</span>"

        for control in (image, score, nms, max_dets):
            control.observe(on_change, names="value")
        controls = W.VBox([image, score, nms, max_dets, message])
        return W.VBox([W.HBox([picture, controls]), table])
