"""COCO box evaluation: greedy matching, precision-recall curves, 101-point AP.

The RetinaNet paper reports COCO AP (Section 5, Table 2): the mean over IoU
thresholds 0.50:0.05:0.95 and over categories of the area under an interpolated
precision-recall curve. This module recomputes pycocotools' ``COCOeval`` for
boxes from scratch, piece by piece, and is taught by
``notebooks/09_evaluation.ipynb``:

1. ``match_detections``: in one image and one class, detections are visited
   from the highest score down and each takes the unmatched ground-truth box it
   overlaps most, if that IoU reaches the threshold (true positive); otherwise
   it is a false positive.
2. ``precision_recall``: over the whole data set, detections of a class sorted
   by score give a precision and a recall after each one.
3. ``interpolated_precision`` / ``interpolated_ap``: precision is made monotone
   from the right and read at recall 0, 0.01, ..., 1; AP is the mean of those
   101 values.
4. ``coco_ap``: the twelve numbers of ``COCOeval.summarize()``.
5. ``classify_detections``: the same matching at one IoU threshold over all classes, saying
   why each false positive is wrong (duplicate, wrong class, poor localisation, background) and
   which ground truth is missed; ``precision_recall_at`` counts them. Lesson 08's predictions
   explorer shows them.

COCO details reproduced exactly:

- ``max_dets`` caps detections per image *and category* (highest scores kept).
- Area ranges use the target's ``area`` when given (COCO's annotation
  ``area``, e.g. a mask area), otherwise the box width * height. Detection
  areas are always box width * height. A range ``(lo, hi)`` includes both ends,
  so a box of exactly 32**2 pixels counts as small and as medium.
- Ground truth outside the area range, and crowd boxes (``iscrowd``), are
  ignored: a detection matched to them counts neither as true nor as false
  positive, and a regular box is always preferred over an ignored one. Crowd
  boxes may absorb any number of detections and their IoU divides by the
  detection's area instead of the union. Unmatched detections outside the area
  range are ignored too.
- IoU has no "+1" on widths; a category with no (non-ignored) ground truth gets
  precision and recall -1, and means skip -1 entries.

Evaluation is bookkeeping on small arrays (the matching is a sequential loop over
a few boxes at a time), so it runs in NumPy float64 on the CPU: several times
less overhead per call than torch at that size, and the same arithmetic as
pycocotools. Inputs may be tensors on any device (or arrays); results are CPU
tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

# Built with np.linspace exactly as COCOeval's Params: torch.linspace differs in the last
# bit at some points (0.56, 0.57, ...), enough to move a recall of exactly 57/100 to the
# other side of a threshold.
IOU_THRESHOLDS = torch.from_numpy(np.linspace(0.5, 0.95, 10))  # (T,)
RECALL_THRESHOLDS = torch.from_numpy(np.linspace(0.0, 1.0, 101))  # (R,)
MAX_DETS = (1, 10, 100)
AREA_RANGES = {  # (lo, hi) in square pixels, both ends included
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
UNMATCHED = -1  # matched_gt_idx of a detection that matched no ground truth
NO_GT = -1.0  # precision / recall of a category without ground truth

_EPS = np.spacing(1.0)  # COCO adds it to tp + fp before dividing
PAD_DET_LABEL, PAD_GT_LABEL = -1, -2  # labels of padding rows: they never equal each other or a class
_IOU_CAP = 1 - 1e-10  # COCO caps IoU thresholds just below 1, so a perfect box still matches at 1.0

# Why a false positive is wrong, in the order they are tested (Hoiem et al.'s error types):
FP_REASONS = ("duplicate", "wrong class", "poor localisation", "background")
DUPLICATE, WRONG_CLASS, POOR_LOCALISATION, BACKGROUND_FP = range(len(FP_REASONS))
NOT_FP = -1  # fp_reason of a true positive
LOCALISATION_IOU = 0.1  # a same-class overlap in [0.1, iou_threshold) is a localisation error


class PRCurve(NamedTuple):
    """Precision-recall curve of one class, one point per detection by decreasing score."""

    precision: torch.Tensor  # (D,)
    recall: torch.Tensor  # (D,)
    scores: torch.Tensor  # (D,)
    num_gt: int


class CocoArrays(NamedTuple):
    """The arrays of ``COCOeval.eval``, same layout."""

    precision: torch.Tensor  # (T, R, K, A, M), NO_GT where a category has no ground truth
    recall: torch.Tensor  # (T, K, A, M)
    category_ids: list[int]  # the K categories, sorted


class _Image(NamedTuple):
    det_boxes: np.ndarray  # (D, 4) xyxy float64
    det_scores: np.ndarray  # (D,)
    det_labels: np.ndarray  # (D,)
    gt_boxes: np.ndarray  # (M, 4)
    gt_labels: np.ndarray  # (M,)
    gt_area: np.ndarray  # (M,)
    gt_crowd: np.ndarray  # (M,) bool


class _Matches(NamedTuple):
    scores: np.ndarray  # (D,) decreasing
    matched: np.ndarray  # (A, T, D) bool
    ignored: np.ndarray  # (A, T, D) bool
    num_gt: np.ndarray  # (A,) non-ignored ground truth


# ----------------------------------------------------------------------------- input checks


def _to_numpy(value, name: str, shape: tuple, dtype) -> np.ndarray:
    array = torch.as_tensor(value).detach().cpu().numpy().astype(dtype, copy=False)
    if array.ndim != len(shape) or any(
        s is not None and s != n for s, n in zip(shape, array.shape, strict=True)
    ):
        expected = ", ".join("N" if s is None else str(s) for s in shape)
        expected = f"({expected},)" if len(shape) == 1 else f"({expected})"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(array.shape)}")
    return array


def _check_boxes(boxes, name: str) -> np.ndarray:
    if torch.as_tensor(boxes).numel() == 0:  # [] or an empty tensor: an image without boxes
        return np.zeros((0, 4))
    boxes = _to_numpy(boxes, name, (None, 4), np.float64)
    if not np.isfinite(boxes).all():
        raise ValueError(
            f"{name} must be finite, got {boxes[~np.isfinite(boxes).all(1)][0].tolist()}"
        )
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be xyxy boxes with x1 <= x2 and y1 <= y2, got {boxes[row].tolist()} at row {row}"
        )
    return boxes


def _check_vector(value, name: str, length: int, dtype) -> np.ndarray:
    return _to_numpy(value, name, (length,), dtype)


def _check_finite(value, name: str, length: int, minimum: float | None = None) -> np.ndarray:
    """A (length,) float vector of finite values (at least `minimum` if given)."""
    array = _to_numpy(value, name, (length,), np.float64)
    bad = ~np.isfinite(array) if minimum is None else ~(np.isfinite(array) & (array >= minimum))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        expected = "a finite number" if minimum is None else f"a finite number >= {minimum:g}"
        raise ValueError(f"{name}[{row}] = {array[row]}: expected {expected}")
    return array


def _check_labels(value, name: str, length: int) -> np.ndarray:
    """A (length,) vector of integer class ids: floats only with integral values, never truncated."""
    array = _to_numpy(value, name, (length,), np.float64)
    bad = ~np.isfinite(array) | (array != np.round(array))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{row}] = {array[row]}: expected an integer class id")
    return array.astype(np.int64)


def _get(entry, key: str, name: str):
    if not isinstance(entry, Mapping):
        raise ValueError(f"{name} must be a dict, got {type(entry).__name__}")
    if key not in entry:
        raise ValueError(f"{name} is missing key '{key}' (has {sorted(entry)})")
    return entry[key]


def _box_area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _prepare(detections, targets) -> list[_Image]:
    for arg, name in ((detections, "detections"), (targets, "targets")):
        if not isinstance(arg, Sequence):
            raise ValueError(
                f"{name} must be a list with one dict per image, got {type(arg).__name__}"
            )
    if len(detections) != len(targets):
        raise ValueError(
            f"detections and targets must have one entry per image, got {len(detections)} "
            f"detections and {len(targets)} targets"
        )
    images = []
    for i, (det, tgt) in enumerate(zip(detections, targets, strict=True)):
        d, t = f"detections[{i}]", f"targets[{i}]"
        det_boxes = _check_boxes(_get(det, "boxes", d), f"{d}['boxes']")
        gt_boxes = _check_boxes(_get(tgt, "boxes", t), f"{t}['boxes']")
        D, M = len(det_boxes), len(gt_boxes)
        area = tgt.get("area")
        crowd = tgt.get("iscrowd")
        images.append(
            _Image(
                det_boxes=det_boxes,
                det_scores=_check_finite(_get(det, "scores", d), f"{d}['scores']", D),
                det_labels=_check_labels(_get(det, "labels", d), f"{d}['labels']", D),
                gt_boxes=gt_boxes,
                gt_labels=_check_labels(_get(tgt, "labels", t), f"{t}['labels']", M),
                gt_area=_box_area(gt_boxes)
                if area is None
                else _check_finite(area, f"{t}['area']", M, minimum=0.0),
                gt_crowd=np.zeros(M, bool)
                if crowd is None
                else _check_vector(crowd, f"{t}['iscrowd']", M, bool),
            )
        )
    return images


def _check_iou_threshold(value, name: str) -> None:
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise ValueError(f"{name}={float(value)}: expected an IoU threshold in [0, 1]")


def _check_max_dets(max_dets) -> tuple[int, ...]:
    max_dets = (max_dets,) if isinstance(max_dets, int) else tuple(max_dets)
    if not max_dets or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in max_dets):
        raise ValueError(f"max_dets={max_dets}: expected one or more positive integers")
    return tuple(sorted(max_dets))


# ----------------------------------------------------------------------------- matching


def _box_iou(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """IoU (..., D, M) of xyxy boxes (..., D, 4) and (..., M, 4), no "+1"; for a crowd box (..., M)
    the union is the detection's area."""
    top_left = np.maximum(det_boxes[..., :, None, :2], gt_boxes[..., None, :, :2])  # (..., D, M, 2)
    bottom_right = np.minimum(det_boxes[..., :, None, 2:], gt_boxes[..., None, :, 2:])  # (..., D, M, 2)
    wh = np.clip(bottom_right - top_left, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # (..., D, M)
    det_area = _box_area(det_boxes)[..., :, None]
    union = np.where(gt_crowd[..., None, :], det_area, det_area + _box_area(gt_boxes)[..., None, :] - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _greedy_match(
    ious: np.ndarray, iou_thresholds: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray
) -> np.ndarray:
    """COCO's greedy matching for a batch of images, all IoU thresholds and area ranges at once.

    Args:
        ious: (B, D, M), each image's detections sorted by decreasing score; a pair that may
            never match (another class, padding) has IoU -1.
        iou_thresholds: (T,).
        gt_ignore: (B, A, M) ground truth ignored in each area range.
        gt_crowd: (B, M) crowd boxes, which can be matched many times.

    Returns matched_gt_idx (B, A, T, D): the ground truth each detection took, or UNMATCHED.
    """
    B, D, M = ious.shape
    A, T = gt_ignore.shape[1], len(iou_thresholds)
    matched_gt_idx = np.full((B, A, T, D), UNMATCHED)
    if M == 0:
        return matched_gt_idx
    thresholds = np.minimum(iou_thresholds, _IOU_CAP)[:, None]  # (T, 1)
    gt_taken = np.zeros((B, A, T, M), bool)
    crowd = gt_crowd[:, None, None, :]  # (B, 1, 1, M)
    ignore = gt_ignore[:, :, None, :]  # (B, A, 1, M)
    # a rank at which every image's detection is below the lowest threshold with every box matches nothing
    for d in np.flatnonzero((ious.max(-1) >= thresholds.min()).any(0)):
        iou = ious[:, None, None, d]  # (B, 1, 1, M)
        candidate = (~gt_taken | crowd) & (iou >= thresholds)  # (B, A, T, M)
        # a regular box beats an ignored one whatever their IoUs
        regular = candidate & ~ignore
        candidate = np.where(regular.any(-1, keepdims=True), regular, candidate)
        # highest IoU; on a tie COCO's loop keeps the last box, hence the reversed argmax
        best = M - 1 - np.where(candidate, iou, -1.0)[..., ::-1].argmax(-1)  # (B, A, T)
        found = candidate.any(-1)  # (B, A, T)
        matched_gt_idx[..., d] = np.where(found, best, UNMATCHED)
        gt_taken[found, best[found]] = True
    return matched_gt_idx


def match_detections(det_boxes, det_scores, gt_boxes, iou_threshold: float = 0.5) -> torch.Tensor:
    """Greedy matching of one image's detections of one class, as COCO does it.

    Detections are visited by decreasing score (ties keep their order); each takes the
    not-yet-matched ground-truth box with the highest IoU if that IoU >= iou_threshold.

    Args:
        det_boxes: (D, 4) xyxy.
        det_scores: (D,).
        gt_boxes: (M, 4) xyxy.
        iou_threshold: minimum IoU of a match.

    Returns:
        matched_gt_idx (D,) int64, in the order of det_boxes: the index of the matched
        ground-truth box, or UNMATCHED (-1) for a false positive.
    """
    det_boxes = _check_boxes(det_boxes, "det_boxes")
    det_scores = _check_vector(det_scores, "det_scores", len(det_boxes), np.float64)
    gt_boxes = _check_boxes(gt_boxes, "gt_boxes")
    _check_iou_threshold(iou_threshold, "iou_threshold")
    M = len(gt_boxes)
    order = np.argsort(-det_scores, kind="stable")
    ious = _box_iou(det_boxes[order], gt_boxes, np.zeros(M, bool))
    no_ignore = np.zeros((1, 1, M), bool)
    matched_sorted = _greedy_match(ious[None], np.array([iou_threshold]), no_ignore, no_ignore[0])[0, 0, 0]
    matched_gt_idx = np.empty_like(matched_sorted)
    matched_gt_idx[order] = matched_sorted
    return torch.from_numpy(matched_gt_idx)


def _match_image_category(
    image: _Image, category: int, iou_thresholds: np.ndarray, area_ranges: np.ndarray, max_det: int
) -> _Matches:
    """COCOeval.evaluateImg for one image and category, all thresholds and area ranges at once."""
    is_det, is_gt = image.det_labels == category, image.gt_labels == category
    order = np.argsort(-image.det_scores[is_det], kind="stable")[:max_det]
    det_boxes, det_scores = image.det_boxes[is_det][order], image.det_scores[is_det][order]
    gt_area, gt_crowd = image.gt_area[is_gt], image.gt_crowd[is_gt]
    lo, hi = area_ranges[:, :1], area_ranges[:, 1:]  # (A, 1)
    gt_ignore = gt_crowd | (gt_area < lo) | (gt_area > hi)  # (A, M)
    ious = _box_iou(det_boxes, image.gt_boxes[is_gt], gt_crowd)  # (D, M)
    matched_gt_idx = _greedy_match(ious[None], iou_thresholds, gt_ignore[None], gt_crowd[None])[0]  # (A, T, D)
    matched = matched_gt_idx != UNMATCHED
    # ignored: matched to an ignored box, or unmatched and outside the area range.
    # A padding column makes UNMATCHED (-1) index a harmless False.
    A = len(area_ranges)
    gt_ignore_padded = np.concatenate([gt_ignore, np.zeros((A, 1), bool)], axis=1)  # (A, M + 1)
    took_ignored = gt_ignore_padded[np.arange(A)[:, None, None], matched_gt_idx]  # (A, T, D)
    det_area = _box_area(det_boxes)
    outside = (det_area < lo) | (det_area > hi)  # (A, D)
    ignored = np.where(matched, took_ignored, outside[:, None, :])
    return _Matches(det_scores, matched, ignored, (~gt_ignore).sum(1))


def _match_all(images, iou_thresholds, area_ranges, max_det) -> dict[int, list[_Matches]]:
    """Per category, the matches of every image that has detections or ground truth of it."""
    per_category: dict[int, list[_Matches]] = {}
    for image in images:
        for category in np.union1d(image.det_labels, image.gt_labels).tolist():
            matches = _match_image_category(image, category, iou_thresholds, area_ranges, max_det)
            per_category.setdefault(category, []).append(matches)
    return dict(sorted(per_category.items()))


def _tp_fp(matches: list[_Matches], max_det: int):
    """Detections of one category over all images, the top max_det per image, by score.

    Returns scores (N,), tp (A, T, N) and fp (A, T, N) bool, num_gt (A,).
    """
    keep = np.concatenate([np.arange(len(m.scores)) < max_det for m in matches])
    scores = np.concatenate([m.scores for m in matches])[keep]
    matched = np.concatenate([m.matched for m in matches], axis=-1)[..., keep]
    ignored = np.concatenate([m.ignored for m in matches], axis=-1)[..., keep]
    order = np.argsort(-scores, kind="stable")  # ties: image order, as COCO's mergesort
    tp = (matched & ~ignored)[..., order]
    fp = (~matched & ~ignored)[..., order]
    return scores[order], tp, fp, sum(m.num_gt for m in matches)


# ----------------------------------------------------------------------------- curves and AP


def _interpolate(precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    *batch, D = precision.shape
    if D == 0:
        return np.zeros((*batch, len(thresholds)))
    monotone = np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]
    rows = recall.reshape(-1, D)  # (B, D)
    idx = np.stack([np.searchsorted(row, thresholds, side="left") for row in rows])  # (B, R)
    sampled = np.take_along_axis(monotone.reshape(-1, D), np.minimum(idx, D - 1), axis=-1)
    return np.where(idx < D, sampled, 0.0).reshape(*batch, len(thresholds))


def interpolated_precision(precision, recall, recall_thresholds=RECALL_THRESHOLDS) -> torch.Tensor:
    """Precision made monotone from the right, read at each recall threshold.

    p_interp(r) = max_{r' >= r} p(r'), taken at the first curve point with recall >= r;
    0 where the curve never reaches r.

    Args:
        precision: (..., D) along a curve.
        recall: (..., D) non-decreasing along the curve.
        recall_thresholds: (R,), COCO's 0:0.01:1 by default.

    Returns: (..., R) float64.
    """
    precision = _to_numpy(precision, "precision", (None,) * np.ndim(precision), np.float64)
    recall = _to_numpy(recall, "recall", precision.shape, np.float64)
    thresholds = _to_numpy(recall_thresholds, "recall_thresholds", (None,), np.float64)
    return torch.from_numpy(_interpolate(precision, recall, thresholds))


def interpolated_ap(precision, recall) -> torch.Tensor:
    """COCO's 101-point AP: the mean of ``interpolated_precision``. (..., D) -> (...) float64."""
    return interpolated_precision(precision, recall).mean(-1)


def precision_recall(
    detections, targets, iou_threshold: float = 0.5, max_dets: int = 100
) -> dict[int, PRCurve]:
    """Precision-recall curve per class over a data set (COCO matching, all areas).

    Detections matched to crowd boxes count neither way and are left out of the
    curve. Classes without ground truth have no recall and are left out.

    Args:
        detections: one dict per image, ``boxes`` (D, 4) xyxy, ``scores`` (D,), ``labels`` (D,).
        targets: one dict per image, ``boxes`` (M, 4) xyxy, ``labels`` (M,), optionally
            ``iscrowd`` (M,) and ``area`` (M,).
        iou_threshold: minimum IoU of a true positive.
        max_dets: detections kept per image and class, highest scores first.

    Returns: {label: PRCurve}, labels sorted.
    """
    images = _prepare(detections, targets)
    _check_iou_threshold(iou_threshold, "iou_threshold")
    (max_det,) = _check_max_dets(max_dets)
    all_areas = np.array([AREA_RANGES["all"]])
    curves = {}
    for category, matches in _match_all(
        images, np.array([iou_threshold]), all_areas, max_det
    ).items():
        scores, tp, fp, num_gt = _tp_fp(matches, max_det)
        if num_gt[0] == 0:
            continue
        counted = tp[0, 0] | fp[0, 0]
        tp_sum = torch.from_numpy(np.cumsum(tp[0, 0][counted], dtype=np.float64))
        fp_sum = torch.from_numpy(np.cumsum(fp[0, 0][counted], dtype=np.float64))
        curves[category] = PRCurve(
            precision=tp_sum / (tp_sum + fp_sum),
            recall=tp_sum / int(num_gt[0]),
            scores=torch.from_numpy(scores[counted]),
            num_gt=int(num_gt[0]),
        )
    return curves


def coco_accumulate(
    detections, targets, iou_thresholds=None, max_dets: Sequence[int] = MAX_DETS
) -> CocoArrays:
    """``COCOeval.evaluate()`` + ``accumulate()`` for boxes: the precision and recall arrays.

    Args: as ``coco_ap``.

    Returns: CocoArrays(precision (T, R, K, A, M), recall (T, K, A, M), category_ids), with
    the area ranges A in the order of AREA_RANGES and max_dets M sorted.
    """
    images = _prepare(detections, targets)
    iou_thresholds = IOU_THRESHOLDS if iou_thresholds is None else iou_thresholds
    iou_thresholds = torch.as_tensor(iou_thresholds, dtype=torch.float64).cpu().reshape(-1).numpy()
    if len(iou_thresholds) == 0:
        raise ValueError("iou_thresholds: expected at least one IoU threshold in [0, 1], got none")
    for t in iou_thresholds:
        _check_iou_threshold(t, "iou_thresholds")
    max_dets = _check_max_dets(max_dets)
    area_ranges = np.array(list(AREA_RANGES.values()))  # (A, 2)
    per_category = _match_all(images, iou_thresholds, area_ranges, max_dets[-1])
    T, R, A, M = len(iou_thresholds), len(RECALL_THRESHOLDS), len(area_ranges), len(max_dets)
    K = len(per_category)
    precision = np.full((T, R, K, A, M), NO_GT)
    recall = np.full((T, K, A, M), NO_GT)
    thresholds = RECALL_THRESHOLDS.numpy()
    for k, matches in enumerate(per_category.values()):
        for m, max_det in enumerate(max_dets):
            _, tp, fp, num_gt = _tp_fp(matches, max_det)
            tp_sum = np.cumsum(tp, axis=-1, dtype=np.float64)  # (A, T, N)
            fp_sum = np.cumsum(fp, axis=-1, dtype=np.float64)
            has_gt = num_gt > 0  # (A,); the rest stays NO_GT
            rc = tp_sum / np.maximum(num_gt, 1)[:, None, None]
            pr = tp_sum / (tp_sum + fp_sum + _EPS)
            q = _interpolate(pr, rc, thresholds)  # (A, T, R)
            final_recall = rc[..., -1] if rc.shape[-1] else np.zeros((A, T))  # (A, T)
            precision[:, :, k, has_gt, m] = q[has_gt].transpose(1, 2, 0)  # (T, R, A')
            recall[:, k, has_gt, m] = final_recall[has_gt].T  # (T, A')
    precision, recall = torch.from_numpy(precision), torch.from_numpy(recall)
    return CocoArrays(precision, recall, list(per_category))


def coco_ap(
    detections, targets, iou_thresholds=None, max_dets: Sequence[int] = MAX_DETS
) -> dict[str, float]:
    """The twelve numbers of pycocotools' ``COCOeval.summarize()`` for boxes.

    Args:
        detections: one dict per image, ``boxes`` (D, 4) xyxy, ``scores`` (D,),
            ``labels`` (D,) int64. An image without detections has D = 0.
        targets: one dict per image, ``boxes`` (M, 4) xyxy, ``labels`` (M,) int64,
            optionally ``iscrowd`` (M,) and ``area`` (M,) (default: box width * height).
        iou_thresholds: (T,), default IOU_THRESHOLDS (0.50:0.05:0.95).
        max_dets: detections kept per image and category for AR1, AR10, AR100;
            AP uses the largest.

    Returns: {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs",
    "ARm", "ARl"} (AR keys follow max_dets), -1 where nothing has ground truth.
    """
    precision, recall, _ = coco_accumulate(detections, targets, iou_thresholds, max_dets)
    thresholds = IOU_THRESHOLDS if iou_thresholds is None else iou_thresholds
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64).reshape(-1)
    max_dets = _check_max_dets(max_dets)
    area = {name: a for a, name in enumerate(AREA_RANGES)}
    most = len(max_dets) - 1

    def mean(values: torch.Tensor) -> float:
        values = values[values > NO_GT]
        return float(values.mean()) if values.numel() else NO_GT

    def at_iou(x: torch.Tensor, iou: float) -> torch.Tensor:
        return x[torch.isclose(thresholds, torch.tensor(iou, dtype=torch.float64))]

    stats = {
        "AP": mean(precision[..., area["all"], most]),
        "AP50": mean(at_iou(precision, 0.5)[..., area["all"], most]),
        "AP75": mean(at_iou(precision, 0.75)[..., area["all"], most]),
        "APs": mean(precision[..., area["small"], most]),
        "APm": mean(precision[..., area["medium"], most]),
        "APl": mean(precision[..., area["large"], most]),
    }
    for m, max_det in enumerate(max_dets):
        stats[f"AR{max_det}"] = mean(recall[..., area["all"], m])
    stats["ARs"] = mean(recall[..., area["small"], most])
    stats["ARm"] = mean(recall[..., area["medium"], most])
    stats["ARl"] = mean(recall[..., area["large"], most])
    return stats


# ----------------------------------------------------------------------------- why a detection is wrong


class Classified(NamedTuple):
    """One image's detections judged against its ground truth (detections in their given order)."""

    tp: torch.Tensor  # (D,) bool: true positive
    matched_gt_idx: torch.Tensor  # (D,) int64: the ground-truth box taken, or UNMATCHED (-1)
    fp_reason: torch.Tensor  # (D,) int64: index into FP_REASONS, NOT_FP (-1) for a true positive
    missed: torch.Tensor  # (M,) bool: ground truth no detection took

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


def _pad(arrays: list[np.ndarray], width: int, fill, trailing: tuple = ()) -> np.ndarray:
    """Stack per-image arrays of different lengths into (B, width, *trailing), padding with `fill`."""
    out = np.full((len(arrays), width, *trailing), fill, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def classify_detections(detections, targets, iou_threshold: float = 0.5) -> list[Classified]:
    """Judge each image's detections against its ground truth, as COCO's AP at one IoU threshold does.

    Detections are visited by decreasing score (ties keep their order), all classes at once; each
    takes the not-yet-taken ground-truth box of its own class with the highest IoU, if that IoU
    >= `iou_threshold` (a **true positive**), exactly as ``match_detections`` per class. Otherwise
    it is a **false positive**, for the first of these reasons that applies: *duplicate* (a box
    of its class overlaps enough but was taken by a better-scored detection), *wrong class* (a
    box of another class overlaps enough), *poor localisation* (a box of its class overlaps by
    ``LOCALISATION_IOU`` to `iou_threshold`), *background*. Ground truth no detection takes is
    *missed*. Every ground-truth box counts (``iscrowd`` and ``area`` are not used).

    Args:
        detections: one dict per image, ``boxes`` (D, 4) xyxy, ``scores`` (D,), ``labels`` (D,).
        targets: one dict per image, ``boxes`` (M, 4) xyxy, ``labels`` (M,); M = 0 is fine (every
            detection is background).
        iou_threshold: the IoU a match needs.

    Returns: one `Classified` per image: ``tp`` (D,), ``matched_gt_idx`` (D,), ``fp_reason`` (D,),
    ``missed`` (M,).
    """
    images = _prepare(detections, targets)
    _check_iou_threshold(iou_threshold, "iou_threshold")
    if not images:
        return []
    # Every image at once: detections by decreasing score, padded to the longest image.
    orders = [np.argsort(-image.det_scores, kind="stable") for image in images]
    num_dets = np.array([len(order) for order in orders])
    num_gt = np.array([len(image.gt_labels) for image in images])
    B, D, M = len(images), max(int(num_dets.max()), 1), max(int(num_gt.max()), 1)
    det_boxes = _pad([im.det_boxes[o] for im, o in zip(images, orders)], D, 0.0, (4,))  # (B, D, 4)
    det_labels = _pad([im.det_labels[o] for im, o in zip(images, orders)], D, PAD_DET_LABEL)  # (B, D)
    gt_boxes = _pad([im.gt_boxes for im in images], M, 0.0, (4,))  # (B, M, 4)
    gt_labels = _pad([im.gt_labels for im in images], M, PAD_GT_LABEL)  # (B, M)
    pair_valid = (np.arange(D) < num_dets[:, None])[:, :, None] & (np.arange(M) < num_gt[:, None])[:, None, :]

    no_crowd = np.zeros((B, M), bool)
    iou = _box_iou(det_boxes, gt_boxes, no_crowd)  # (B, D, M)
    same_class = (det_labels[:, :, None] == gt_labels[:, None, :]) & pair_valid  # (B, D, M)
    iou_same = np.where(same_class, iou, -1.0)
    matched = _greedy_match(iou_same, np.array([iou_threshold]), no_crowd[:, None], no_crowd)[:, 0, 0]  # (B, D)
    tp = matched != UNMATCHED
    taken = np.zeros((B, M + 1), bool)  # a last column for UNMATCHED to take
    taken[np.arange(B)[:, None], matched] = True

    threshold = min(iou_threshold, _IOU_CAP)
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


class PrecisionRecall(NamedTuple):
    """Precision and recall at one setting (one point of a precision-recall curve)."""

    precision: float  # TP / (TP + FP); nan without detections
    recall: float  # TP / ground truth; nan without ground truth
    num_tp: int
    num_fp: int
    num_gt: int

    @classmethod
    def of(cls, num_tp: int, num_fp: int, num_gt: int) -> PrecisionRecall:
        precision = num_tp / (num_tp + num_fp) if num_tp + num_fp else math.nan
        return cls(precision, num_tp / num_gt if num_gt else math.nan, num_tp, num_fp, num_gt)


def precision_recall_at(classified: Classified | Sequence[Classified]) -> PrecisionRecall:
    """Precision and recall of one image's (or many images') classified detections.

    These are single points, at the thresholds the detections were filtered with; sweeping the
    score threshold traces the precision-recall curve whose area is AP (``precision_recall``).
    """
    items = [classified] if isinstance(classified, Classified) else list(classified)
    if not all(isinstance(c, Classified) for c in items):
        raise ValueError("classified: expected a Classified (from classify_detections) or a list of them")
    return PrecisionRecall.of(sum(c.num_tp for c in items), sum(c.num_fp for c in items),
                              sum(c.num_gt for c in items))


def plot_pr_curves(
    curves: Mapping[int, PRCurve], ax=None, class_names=None, interpolated: bool = True
):
    """Draw each class's precision-recall curve, with its AP in the legend.

    Args:
        curves: {label: PRCurve}, as returned by ``precision_recall``.
        ax: matplotlib Axes to draw on (a new figure when None).
        class_names: optional {label: name} (or a list indexed by label) for the legend.
        interpolated: also draw the 101-point interpolated precision, dashed, same colour.

    Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for label, curve in curves.items():
        name = f"class {label}" if class_names is None else str(class_names[label])
        ap = float(interpolated_ap(curve.precision, curve.recall))
        (line,) = ax.plot(curve.recall, curve.precision, label=f"{name} (AP {ap:.3f})")
        if interpolated:
            ax.plot(
                RECALL_THRESHOLDS,
                interpolated_precision(curve.precision, curve.recall),
                linestyle="--",
                color=line.get_color(),
            )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_title("Precision-recall per class" + (" (dashed: interpolated)" if interpolated else ""))
    if curves:
        ax.legend(loc="best", fontsize="small")
    return ax
