"""A picture of one image's detections judged against its ground truth: right, wrong and missed.

True positives are outlined in green, false positives in vermillion (their label says why they
are wrong: duplicate, wrong class, poor localisation, background) and ground truth no detection
took is dashed yellow; ground truth that was found is dotted white under its detection. The
judging is :func:`retina_lessons.evaluation.classify_detections`; this module only draws it.

- :func:`prediction_labels`: the labels' texts, colours and places (:mod:`.labels` lays them out);
- :class:`PredictionArtists`: the four outline collections, which an explorer moves in place;
- :func:`add_verdict_legend`: what the colours mean;
- :func:`draw_predictions`: a static picture of one image.

Shown by the predictions explorer (:mod:`retina_lessons.explorers.predictions`, lesson 08).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch import Tensor

from ..evaluation import FP_REASONS, NOT_FP, Classified, classify_detections, precision_recall_at
from .canvas import PALETTE, add_legend, box_outlines, outline_effect
from .labels import Label, draw_labels, stack_labels, text_size

MATCH_IOU = 0.5  # COCO's AP50 criterion (and the paper's NMS threshold, a different use of 0.5)
TP_COLOUR = PALETTE["green"]
FP_COLOUR = PALETTE["vermillion"]
MISSED_COLOUR = PALETTE["yellow"]
FOUND_GT_COLOUR = "#FFFFFF"
OUTLINE_WIDTH = 3.5  # points: the black rim around a box's colour
MAX_LABELS = 20  # text labels per picture: the missed boxes, then the highest-scoring detections
LABEL_FONTSIZE = 7.5  # points


def format_rate(value: float) -> str:
    """A precision or recall with two decimals, a dash where it is undefined (nan)."""
    return "–" if math.isnan(value) else f"{value:.2f}"


def detection_labels(det: dict, classified: Classified, class_names: Sequence[str]) -> list[str]:
    """ "circle 0.93" for a true positive, "circle 0.41 (duplicate)" for a false positive."""
    names = [class_names[k] for k in det["labels"].tolist()]
    labels = []
    for name, score, reason in zip(names, det["scores"].tolist(), classified.fp_reason.tolist()):
        suffix = "" if reason == NOT_FP else f" ({FP_REASONS[reason]})"
        labels.append(f"{name} {score:.2f}{suffix}")
    return labels


def prediction_labels(det: dict, gt: dict, classified: Classified, class_names: Sequence[str],
                      image_height: float, max_labels: int = MAX_LABELS,
                      text_size: tuple[float, float] | None = None) -> list[Label]:
    """The labels of a picture: every missed box first (there are few), then detections by score.

    A detection's label sits above its top-left corner, a missed box's below its bottom-left
    corner; where the image ends there, the label goes just inside the box instead. With
    ``text_size = (line height, character width)`` in image pixels, labels that would cover
    each other are stacked (:func:`~retina_lessons.explorers.labels.stack_labels`).
    """
    margin = 0.07 * image_height
    gt_boxes = np.asarray(gt["boxes"], dtype=float).reshape(-1, 4)
    gt_labels = np.asarray(gt["labels"]).reshape(-1)
    missed = classified.missed.numpy()
    labels = [Label(x1, y2, "bottom" if y2 > image_height - margin else "top", f"missed {class_names[int(k)]}",
                    MISSED_COLOUR, "black") for (x1, _, _, y2), k in zip(gt_boxes[missed], gt_labels[missed])]
    boxes = det["boxes"].detach().cpu().numpy().reshape(-1, 4)
    for (x1, y1, _, _), text, is_tp in zip(boxes, detection_labels(det, classified, class_names),
                                           classified.tp.tolist()):
        labels.append(Label(x1, y1, "top" if y1 < margin else "bottom", text, TP_COLOUR if is_tp else FP_COLOUR))
    labels = labels[:max_labels]
    return stack_labels(labels, *text_size, image_height) if text_size is not None else labels


class PredictionArtists:
    """The box outlines of classified detections and missed ground truth; `set` moves them in place."""

    def __init__(self, ax, animated: bool = False) -> None:
        from matplotlib.collections import LineCollection

        self.ax = ax
        effect = outline_effect(OUTLINE_WIDTH)
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


def add_verdict_legend(fig_or_ax, **kwargs) -> None:
    """A legend of the four outlines (true / false positive, missed, found ground truth)."""
    from matplotlib.lines import Line2D

    effect = outline_effect(OUTLINE_WIDTH)
    add_legend(fig_or_ax, [
        Line2D([], [], color=TP_COLOUR, lw=2, path_effects=effect, label="true positive"),
        Line2D([], [], color=FP_COLOUR, lw=2, path_effects=effect, label="false positive"),
        Line2D([], [], color=MISSED_COLOUR, lw=2, ls=(0, (4, 2.5)), path_effects=effect, label="missed object"),
        Line2D([], [], color="#808080", lw=1, ls=":", label="object found (ground truth)"),
    ], **kwargs)


def draw_predictions(ax, image: Tensor, det: dict, gt: dict, class_names: Sequence[str],
                     iou: float = MATCH_IOU, title: str | None = None) -> Classified:
    """Draw one image with its detections coloured true / false positive and its missed objects dashed.

    A static picture (the explorer keeps the artists and moves them instead); returns the
    `Classified` detections. Boxes are in the image's own pixels.
    """
    (classified,) = classify_detections([det], [gt], iou)
    height, width = image.shape[-2:]
    ax.imshow(image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    PredictionArtists(ax).set(det, gt, classified)
    draw_labels(ax, prediction_labels(det, gt, classified, class_names, height,
                                      text_size=text_size(ax, height, LABEL_FONTSIZE)), LABEL_FONTSIZE)
    pr = precision_recall_at(classified)
    default = (f"{pr.num_tp} TP, {pr.num_fp} FP, {classified.num_missed} missed: "
               f"precision {format_rate(pr.precision)}, recall {format_rate(pr.recall)}")
    ax.set_title(title if title is not None else default, fontsize=9.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return classified
