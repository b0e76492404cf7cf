"""The predictions explorer: what a trained detector finds on held-out images, right and wrong.

Paper, Section 4.1 ("Inference"): the detector's confidence is thresholded at 0.05, at most 1000
candidates per pyramid level are decoded, and class-aware non-maximum suppression (IoU 0.5) keeps
the best boxes. Section 5 evaluates with COCO's matching: visited from the highest score down, a
detection is a **true positive** when it takes a not-yet-taken ground-truth box of its own class
with IoU >= 0.5, otherwise a **false positive**; a ground-truth box nobody takes is **missed**.
This module lets a student move the three inference knobs (score threshold, NMS IoU threshold,
detections per image) and watch true positives, false positives, missed objects, precision and
recall change, on one image and over the whole held-out set.

It computes with the library and only caches: the forward pass, postprocessing's two halves
(:func:`retina_lessons.postprocess.decode_candidates` and :func:`~retina_lessons.postprocess.suppress`)
and the judging (:func:`retina_lessons.evaluation.classify_detections`):

- :func:`cache_outputs`: the forward pass, run **once** per image; it keeps the raw head outputs
  (``cls_logits (N, K)``, ``box_deltas (N, 4)``) and what decoding needs (anchors, sizes).
- :func:`filter_detections`: only the postprocessing, the library's
  :func:`~retina_lessons.postprocess.detections_from_outputs` with the given thresholds, boxes
  mapped back to the original image. For many images, the same in its two halves:
  :func:`decode_cached` once per image, then :func:`suppress_cached` for each NMS threshold.
- :func:`cut_detections`: a higher score threshold or a lower cap keeps a prefix of the sorted
  detections, so most slider moves need no postprocessing at all.
- :class:`PredictionsExplorer`: ``update(**params)`` re-runs only what the move needs of
  postprocessing and judging on the cached outputs (milliseconds at the classroom size), moves
  the outlines of :mod:`.verdicts` over a saved background (:class:`~.canvas.Canvas`), paints the
  labels of :mod:`.labels` with Pillow and encodes the picture for an ``ipywidgets.Image``;
  :meth:`PredictionsExplorer.widget` wires a dropdown and three sliders to it.

Taught in ``notebooks/08_inference.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..evaluation import (
    FP_REASONS,
    Classified,
    PrecisionRecall,
    classify_detections,
    precision_recall_at,
)
from ..postprocess import Candidates, decode_candidates, detections_from_outputs, suppress
from ..transform import postprocess_boxes
from ..validation import is_real
from .canvas import (
    IMAGE_FORMATS,
    Canvas,
    check_choice,
    coloured,
    encode_image,
    error_html,
    html_table,
    image_index,
    merged_params,
    one_thread,
)
from .labels import Label, LabelPainter, text_size
from .verdicts import (
    FP_COLOUR,
    MATCH_IOU,
    TP_COLOUR,
    PredictionArtists,
    add_verdict_legend,
    format_rate,
    prediction_labels,
)

EXPLORER_FONTSIZE = 8.0
IMAGES_PER_CALL = 16  # images per suppress call in suppress_cached
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


def _check_score_thresh(score_thresh) -> None:
    if not is_real(score_thresh) or not 0.0 <= score_thresh < 1.0:
        raise ValueError(f"score_thresh={score_thresh!r}: expected a number in [0, 1)")


def _check_max_dets(max_dets) -> None:
    if isinstance(max_dets, bool) or not isinstance(max_dets, (int, np.integer)) or max_dets < 1:
        raise ValueError(f"max_dets={max_dets!r}: expected a positive integer")


def _check_filter_params(score_thresh, nms_thresh, max_dets) -> None:
    _check_score_thresh(score_thresh)
    if not is_real(nms_thresh) or not 0.0 <= nms_thresh <= 1.0:
        raise ValueError(f"nms_thresh={nms_thresh!r}: expected an IoU in [0, 1]")
    _check_max_dets(max_dets)


def _check_cached(cached: Sequence[CachedOutputs]) -> dict[int, list[int]]:
    """Indices of `cached` grouped by padded frame (shared anchors)."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(cached):
        if not isinstance(c, CachedOutputs):
            raise ValueError(f"cached[{i}]: expected CachedOutputs (from cache_outputs), got {type(c).__name__}")
        groups.setdefault(id(c.anchors_xyxy), []).append(i)
    return groups


@dataclass
class CachedCandidates:
    """One image's decoded candidates before NMS (`postprocess.decode_candidates` at `score_thresh`).

    boxes (C, 4) xyxy in the resized image's pixels, clipped to it; scores (C,); labels (C,);
    the level order of the decoder.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    score_thresh: float
    num_classes: int
    image_size: tuple[int, int]
    original_size: tuple[int, int]


def decode_cached(cached: Sequence[CachedOutputs], score_thresh: float = 0.05) -> list[CachedCandidates]:
    """`postprocess.decode_candidates` for many cached images, split by image to be kept.

    One call per group of images that share a padded frame (and so their anchors).
    """
    _check_score_thresh(score_thresh)
    out: list[CachedCandidates | None] = [None] * len(cached)
    for indices in _check_cached(cached).values():
        first = cached[indices[0]]
        c = decode_candidates(
            torch.stack([cached[i].cls_logits for i in indices]),  # (B, N, K)
            torch.stack([cached[i].box_deltas for i in indices]),  # (B, N, 4)
            first.anchors_xyxy, first.num_anchors_per_level, [cached[i].image_size for i in indices],
            score_thresh=score_thresh, topk_candidates=first.topk_candidates, box_weights=first.box_weights,
            box_delta_clamp=first.box_delta_clamp)
        order = torch.sort(c.image_idx, stable=True).indices  # group by image, levels in order within each
        counts = torch.bincount(c.image_idx, minlength=len(indices)).tolist()
        parts = [x[order].split(counts) for x in (c.boxes, c.scores, c.labels)]
        for b, i in enumerate(indices):
            out[i] = CachedCandidates(parts[0][b], parts[1][b], parts[2][b], float(score_thresh),
                                      cached[i].num_classes, cached[i].image_size, cached[i].original_size)
    return out


def suppress_cached(candidates: Sequence[CachedCandidates], score_thresh: float = 0.05, nms_thresh: float = 0.5,
                    max_dets: int = 100) -> list[dict[str, Tensor]]:
    """`postprocess.suppress` of the candidates scored above `score_thresh`, boxes in the original images.

    `score_thresh` may be any at least the one the candidates were decoded at: the per-level top-k
    of a higher threshold keeps exactly these. Images go to ``suppress`` `IMAGES_PER_CALL` at a
    time: torchvision's ``batched_nms`` loops over the (image, class) groups scanning every box for
    each, a cost that grows with the square of the batch.
    """
    _check_filter_params(score_thresh, nms_thresh, max_dets)
    out = []
    for start in range(0, len(candidates), IMAGES_PER_CALL):
        chunk = candidates[start : start + IMAGES_PER_CALL]
        for i, c in enumerate(chunk):
            if not isinstance(c, CachedCandidates):
                raise ValueError(f"candidates[{start + i}]: expected CachedCandidates, got {type(c).__name__}")
            if score_thresh < c.score_thresh:
                raise ValueError(f"score_thresh={score_thresh}: below the {c.score_thresh} the candidates of "
                                 f"image {start + i} were decoded at")
        keep = [c.scores > score_thresh for c in chunk]
        flat = Candidates(image_idx=torch.cat([torch.full((int(k.sum()),), i) for i, k in enumerate(keep)]),
                          boxes=torch.cat([c.boxes[k] for c, k in zip(chunk, keep)]),  # (C, 4)
                          scores=torch.cat([c.scores[k] for c, k in zip(chunk, keep)]),
                          labels=torch.cat([c.labels[k] for c, k in zip(chunk, keep)]))
        detections = suppress(flat, len(chunk), chunk[0].num_classes, nms_thresh=nms_thresh,
                              detections_per_img=int(max_dets))
        out += postprocess_boxes(detections, [c.image_size for c in chunk], [c.original_size for c in chunk])
    return out


def filter_detections_batch(cached: Sequence[CachedOutputs], score_thresh: float = 0.05,
                            nms_thresh: float = 0.5, max_dets: int = 100) -> list[dict[str, Tensor]]:
    """:func:`filter_detections` for many cached images at once: `decode_cached`, then `suppress_cached`."""
    _check_filter_params(score_thresh, nms_thresh, max_dets)
    return suppress_cached(decode_cached(cached, score_thresh), score_thresh, nms_thresh, max_dets)


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


# ----------------------------------------------------------------------------- the explorer


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
        check_choice("image_format", image_format, IMAGE_FORMATS)
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
        self._candidates: dict[int, CachedCandidates] = {}  # image -> decoded candidates before NMS
        self._judged: dict[tuple[float, float], dict[int, _Judged]] = {}  # (nms, iou) -> image -> ...
        self.set_stats = set_stats
        missing = [i for i, c in enumerate(self._cache) if c is None]
        if set_stats and missing:
            self._cache = cache_outputs(model, self.images)
        self.canvas = Canvas(figsize, dpi)  # outside pyplot: never shown twice in a notebook
        self.fig = self.canvas.fig
        self.ax = self.fig.add_axes((0.13, 0.19, 0.84, 0.72))
        self.artists = PredictionArtists(self.ax, animated=True)
        self.name_text = self.fig.text(0.55, 0.985, "", ha="center", va="top", fontsize=10)
        self._painter = LabelPainter(fontsize=EXPLORER_FONTSIZE, dpi=dpi)
        self._labels: list[Label] = []
        self._status = ""
        add_verdict_legend(self.fig, bbox_to_anchor=(0.5, 0.0))
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
        return image_index(image, self.names)

    def _validate(self, params: dict) -> dict:
        p = merged_params(self.params, params)
        p["image"] = self._image_index(p["image"])
        _check_filter_params(p["score_thresh"], p["nms_thresh"], p["max_dets"])
        if not is_real(p["iou"]) or not 0.0 < p["iou"] <= 1.0:
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
            detections = suppress_cached(candidates, floor, p["nms_thresh"], cap)
            classified = classify_detections(detections, [self.targets[i] for i in stale], p["iou"])
            store.update((i, _Judged.of(floor, cap, d, c)) for i, d, c in zip(stale, detections, classified))
        return [store[i] for i in indices]

    def candidates(self, indices: Sequence[int], score_thresh: float) -> list[CachedCandidates]:
        """Decoded candidates of these images at `score_thresh` or below, decoded once per image.

        Decoded at the sliders' lowest threshold (lower only if asked for), so that every NMS threshold
        and every higher score threshold reuses them.
        """
        floor = min(SCORE_RANGE[0], score_thresh)
        stale = [i for i in indices if i not in self._candidates or self._candidates[i].score_thresh > floor]
        if stale:
            self._candidates.update(zip(stale, decode_cached([self.cached(i) for i in stale], floor)))
        return [self._candidates[i] for i in indices]

    def update(self, **params) -> dict:
        """Change some parameters, re-run postprocessing and matching as needed, move the artists.

        Returns `numbers()`.
        """
        p = self._validate(params)
        self.params = p
        with one_thread():
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
            self.set_pr = PrecisionRecall.of(int(num_tp), int(num_dets - num_tp), num_gt)
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
        if not self.canvas.has(image):  # image, axes, name and legend: drawn once per image
            for old in list(self.ax.images):
                old.remove()
            self.ax.imshow(self.images[image].permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0),
                           zorder=0)
            self.ax.set_xlim(0, width)
            self.ax.set_ylim(height, 0)
            self.ax.set_xlabel("x (pixels)")
            self.ax.set_ylabel("y (pixels)")
            self.name_text.set_text(self.names[image])
            self.canvas.save(image)
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
            from PIL import Image

            pixels = self.canvas.pixels(self._shown_image, self.artists.artists)  # (H, W, 3) uint8
            picture = Image.fromarray(pixels.copy())
            self._painter.paint_in_axes(picture, self.ax, self._labels)
            x0, _, x1, y1 = self.ax.bbox.extents
            self._painter.paint_status(picture, self._status, (x0 + x1) / 2, picture.height - y1 - 4)
            self._picture = encode_image(np.asarray(picture), self.image_format)
        return self._picture

    def table_html(self) -> str:
        """Counts, precision and recall for the image (and the whole set), with the false positives' reasons."""
        n = self.numbers()
        rows = [("this image", n)] + ([(f"all {n['set']['images']} images", n["set"])] if "set" in n else [])
        header = ["", "TP", "FP", "missed", "precision", "recall", *(f"FP: {reason}" for reason in FP_REASONS)]
        return html_table(header, [
            [label, coloured(str(r["tp"]), TP_COLOUR), coloured(str(r["fp"]), FP_COLOUR),
             f"{r['missed']} of {r['num_gt']}", format_rate(r["precision"]), format_rate(r["recall"]),
             *(str(r["fp_reasons"][reason]) for reason in FP_REASONS)]
            for label, r in rows])

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
                message.value = error_html(error)

        for control in (image, score, nms, max_dets):
            control.observe(on_change, names="value")
        controls = W.VBox([image, score, nms, max_dets, message])
        return W.VBox([W.HBox([picture, controls]), table])
