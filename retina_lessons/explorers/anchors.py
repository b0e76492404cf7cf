"""The anchor explorer: which anchors are positive, ignored or negative, and why.

Paper, Section 4 ("Anchors"): every anchor whose IoU with a ground-truth box is at least
``FG_IOU`` (0.5) is trained as that object; anchors whose best IoU is below ``BG_IOU`` (0.4)
are background; the band in between is ignored. This module shows the rule at work on a
real photo (``grace_hopper.jpg`` with the boxes of ``data/grace_hopper_boxes.json``) and on
generated shapes, one pyramid level, scale, ratio and location at a time.

The computing and drawing behind each control are plain functions and a class with an
``update(**params)`` method, so that they are tested without a browser:

- :func:`anchor_states`: ``(anchors, gt_boxes, fg_iou, bg_iou) -> (matched_gt_idx, counts)``,
  the same assignment as :func:`retina_lessons.matching.match_anchors`.
- :func:`draw_anchor_state`: draws anchors colour-coded by state over an image.
- :class:`AnchorExplorer`: anchors and IoUs are computed once per (image, convention); an
  update only re-thresholds and moves matplotlib artists, then re-renders the figure by
  restoring a saved background (photo, ground truth) and drawing the anchors over it into a
  PNG shown in an ``ipywidgets.Image``. No ``ipympl`` is needed: it works in JupyterLab 4 with
  ipywidgets 8 as installed.

Taught in ``notebooks/05_matching_and_box_coding.ipynb`` (and used in ``04_anchors.ipynb``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..anchors import FIRST_LEVEL, AnchorGenerator, feature_sizes
from ..boxes import resize_boxes
from ..config import BG_IOU, CLASSROOM, FG_IOU, TORCHVISION_V1, RetinaNetConfig
from ..matching import (
    BACKGROUND,
    IGNORE,
    Overlaps,
    anchor_overlaps,
    assign_by_iou,
)
from ..transform import resized_size
from ..validation import check_iou_thresholds
from .canvas import (
    IMAGE_FORMATS,
    Canvas,
    add_legend,
    box_outlines,
    check_choice,
    coloured,
    encode_image,
    error_html,
    html_table,
    image_index,
    merged_params,
    one_thread,
    outline_effect,
)
from .labels import Label, LabelPainter, draw_labels, stack_labels, text_size

STATES = ("positive", "ignored", "negative")
POSITIVE, IGNORED, NEGATIVE = range(len(STATES))  # state codes: indices into STATES
# Okabe-Ito colours, told apart also by readers with a red-green colour deficiency.
STATE_COLOURS = {"positive": "#009E73", "ignored": "#E69F00", "negative": "#56B4E9"}
GT_COLOUR = "#FFFFFF"
GT_FONTSIZE = 8.0  # points, the ground-truth names
LOCATION_COLOUR = "#CC79A7"
ALL = "all"
CONVENTIONS = ("torchvision", "centered")
DEFAULT_LEVEL = 5  # P5, a middle level: the photo has positive and ignored anchors there


# ----------------------------------------------------------------------------- computing


def count_states(matched_gt_idx: Tensor, best_iou: Tensor, fg_iou: float = FG_IOU) -> dict[str, int]:
    """Number of positive, ignored and negative anchors, and of positives below `fg_iou` (low-quality)."""
    positive = matched_gt_idx >= 0
    return {
        "positive": int(positive.sum()),
        "ignored": int((matched_gt_idx == IGNORE).sum()),
        "negative": int((matched_gt_idx == BACKGROUND).sum()),
        "low_quality": int((positive & (best_iou < fg_iou)).sum()),
    }


def anchor_states(anchors_xyxy: Tensor, gt_boxes: Tensor, fg_iou: float = FG_IOU,
                  bg_iou: float = BG_IOU, allow_low_quality_matches: bool = True,
                  overlaps: Overlaps | None = None) -> tuple[Tensor, dict[str, int]]:
    """Assign anchors to ground truth as training does, and count each state.

    The assignment is :func:`retina_lessons.matching.match_anchors`'s, computed by the same two
    steps (:func:`~retina_lessons.matching.anchor_overlaps`, then
    :func:`~retina_lessons.matching.assign_by_iou`).

    Args:
        anchors_xyxy: (N, 4) anchors.
        gt_boxes: (M, 4) ground truth of one image; M = 0 is allowed (all negative).
        fg_iou, bg_iou: the thresholds, 0 <= bg_iou <= fg_iou <= 1.
        allow_low_quality_matches: give each ground-truth box its best anchor(s) even below fg_iou.
        overlaps: the anchors' :class:`~retina_lessons.matching.Overlaps` with `gt_boxes`, if already computed.
    Returns:
        matched_gt_idx: (N,) as `match_anchors`: a box index, BACKGROUND or IGNORE.
        counts: {"positive", "ignored", "negative", "low_quality"} -> number of anchors.
    """
    if anchors_xyxy.dim() != 2 or anchors_xyxy.shape[-1] != 4:
        raise ValueError(f"anchors_xyxy has shape {tuple(anchors_xyxy.shape)}: expected (N, 4)")
    if gt_boxes.dim() != 2 or gt_boxes.shape[-1] != 4:
        raise ValueError(f"gt_boxes has shape {tuple(gt_boxes.shape)}: expected (M, 4)")
    check_iou_thresholds(fg_iou, bg_iou)
    if overlaps is None:
        overlaps = anchor_overlaps(anchors_xyxy, gt_boxes.to(anchors_xyxy.dtype))
    elif overlaps.best_iou.shape != (anchors_xyxy.shape[0],):
        raise ValueError(f"overlaps are for {tuple(overlaps.best_iou.shape)} anchors: expected "
                         f"({anchors_xyxy.shape[0]},)")
    matched = assign_by_iou(overlaps, fg_iou, bg_iou, allow_low_quality_matches)
    return matched, count_states(matched, overlaps.best_iou, fg_iou)


def state_codes(matched_gt_idx: Tensor | np.ndarray) -> np.ndarray:
    """(N,) matched_gt_idx -> (N,) index into STATES: 0 positive, 1 ignored, 2 negative."""
    matched = np.asarray(matched_gt_idx)
    return np.where(matched >= 0, POSITIVE, np.where(matched == IGNORE, IGNORED, NEGATIVE))


def state_colours(matched_gt_idx: Tensor | np.ndarray) -> np.ndarray:
    """(N,) matched_gt_idx -> (N, 4) RGBA colours from `STATE_COLOURS`."""
    from matplotlib.colors import to_rgba

    table = np.array([to_rgba(STATE_COLOURS[s]) for s in STATES])  # (3, 4)
    return table[state_codes(matched_gt_idx)]


# ----------------------------------------------------------------------------- drawing


class AnchorArtists:
    """The matplotlib artists that show anchors by state; `set` moves them in place."""

    def __init__(self, ax, animated: bool = False) -> None:
        from matplotlib.collections import LineCollection

        self.ax = ax
        self.boxes = LineCollection([], linewidths=1.6, animated=animated, zorder=4)
        self.low_quality = LineCollection([], linewidths=2.0, linestyles="--", animated=animated,
                                          colors=STATE_COLOURS["positive"], zorder=5)
        ax.add_collection(self.boxes)
        ax.add_collection(self.low_quality)
        sizes = {"negative": 3.0, "ignored": 4.5, "positive": 5.5}
        self.centres = {  # one marker per location, in the best state of its anchors
            state: ax.plot([], [], "o", ms=sizes[state], mew=0.5, mec="#202020", color=STATE_COLOURS[state],
                           animated=animated, zorder=3)[0]
            for state in STATES
        }
        self.location = ax.plot([], [], "P", ms=11, color=LOCATION_COLOUR, mec="black", mew=0.8,
                                animated=animated, zorder=6)[0]
        self.title = ax.set_title("", fontsize=10)
        self.title.set_animated(animated)

    @property
    def artists(self) -> list:
        return [self.boxes, self.low_quality, *self.centres.values(), self.location, self.title]

    def set(self, anchors_xyxy: np.ndarray, matched_gt_idx: np.ndarray, low_quality: np.ndarray,
            centres: np.ndarray, centre_states: np.ndarray, location: tuple[float, float] | None,
            title: str, spacing: float | None = None) -> None:
        """Draw these anchors (outlines, coloured by state) and these anchor centres.

        anchors_xyxy (n, 4), matched_gt_idx (n,), low_quality (n,) bool; centres (L, 2) with
        centre_states (L,) state codes (POSITIVE, IGNORED, NEGATIVE); location: a marked centre;
        spacing: distance between neighbouring centres in data units (sizes the markers).
        """
        if spacing is not None:  # markers no wider than about half the gap between centres
            ax = self.ax
            pixels_per_unit = ax.bbox.width / abs(np.diff(ax.get_xlim())[0])
            gap_points = spacing * pixels_per_unit * 72 / ax.figure.dpi
            for state, marker_size in (("negative", 3.0), ("ignored", 4.5), ("positive", 5.5)):
                size = float(np.clip(0.45 * gap_points, 1.0, marker_size))
                self.centres[state].set_markersize(size)
                self.centres[state].set_markeredgewidth(0.5 if size >= 2.5 else 0.0)
        outlines = box_outlines(anchors_xyxy)  # (n, 5, 2)
        colours = state_colours(matched_gt_idx)
        self.boxes.set_segments(list(outlines[~low_quality]))
        self.boxes.set_color(colours[~low_quality])
        self.low_quality.set_segments(list(outlines[low_quality]))
        for code, state in enumerate(STATES):
            pts = centres[centre_states == code]
            self.centres[state].set_data(pts[:, 0], pts[:, 1])
        self.location.set_data(*(([location[0]], [location[1]]) if location is not None else ([], [])))
        self.title.set_text(title)


def _legend(fig_or_ax, **kwargs) -> None:
    """State colours, the low-quality line style and the ground truth, as a legend."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=STATE_COLOURS[s], lw=2, marker="o", ms=5, label=s) for s in STATES]
    handles.append(Line2D([], [], color=STATE_COLOURS["positive"], lw=2, ls="--",
                          label="positive (low-quality match)"))
    handles.append(Line2D([], [], color=GT_COLOUR, lw=2, label="ground truth",
                          path_effects=outline_effect()))
    add_legend(fig_or_ax, handles, **{"ncols": 3, **kwargs})


def ground_truth_labels(gt_boxes: Tensor | np.ndarray, names: Sequence[str] | None) -> list[Label]:
    """One name label per box, just inside its top-left corner (none without `names`)."""
    boxes = np.asarray(gt_boxes, dtype=float).reshape(-1, 4)
    if names and len(names) != len(boxes):
        raise ValueError(f"names: expected one per box ({len(boxes)}) or none, got {len(names)}")
    return [Label(box[0] + 2, box[1] + 2, "top", name, GT_COLOUR, "black") for box, name in zip(boxes, names or [])]


def draw_ground_truth(ax, gt_boxes: Tensor | np.ndarray, names: Sequence[str] | None = None,
                      image_height: float | None = None) -> list:
    """Ground-truth boxes as white outlines with a black rim (visible on any background), and their names.

    With `image_height` (the axes' height in data units), names that would cover each other are
    stacked (:func:`~retina_lessons.explorers.labels.stack_labels`). Returns the artists drawn.
    """
    from matplotlib.collections import LineCollection

    labels = ground_truth_labels(gt_boxes, names)
    collection = LineCollection(list(box_outlines(gt_boxes)), colors=GT_COLOUR, linewidths=2.0, zorder=2)
    collection.set_path_effects(outline_effect())
    ax.add_collection(collection)
    if image_height is not None:
        labels = stack_labels(labels, *text_size(ax, image_height, GT_FONTSIZE), image_height)
    return [collection, *draw_labels(ax, labels, GT_FONTSIZE)]


def draw_anchor_state(ax, anchors_xyxy: Tensor, gt_boxes: Tensor, fg_iou: float = FG_IOU,
                      bg_iou: float = BG_IOU, allow_low_quality_matches: bool = True,
                      image: Tensor | None = None, image_extent: tuple[float, float] | None = None,
                      names: Sequence[str] | None = None, title: str | None = None,
                      show: Tensor | None = None) -> dict[str, int]:
    """Draw anchors coloured by their state, over `image` and its ground truth.

    A static picture (the explorer keeps the artists and moves them instead). The states are
    those of matching against all of `anchors_xyxy` (low-quality matches included); `show`, an
    (N,) bool mask, draws only some of them. `image` is (3, H, W) in [0, 1]; `image_extent`
    (height, width) stretches it to the boxes' frame. Returns the counts of the anchors drawn.
    """
    if show is None:
        show = torch.ones(len(anchors_xyxy), dtype=torch.bool)
    elif show.shape != (len(anchors_xyxy),) or show.dtype != torch.bool:
        raise ValueError(f"show has shape {tuple(show.shape)} and dtype {show.dtype}: expected "
                         f"({len(anchors_xyxy)},) bool")
    overlaps = anchor_overlaps(anchors_xyxy, gt_boxes.to(anchors_xyxy.dtype))
    matched, _ = anchor_states(anchors_xyxy, gt_boxes, fg_iou, bg_iou, allow_low_quality_matches, overlaps)
    matched, best_iou = matched[show].numpy(), overlaps.best_iou[show].numpy()
    counts = count_states(matched, best_iou, fg_iou)
    if image is not None:
        height, width = image_extent if image_extent is not None else image.shape[-2:]
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0))
    else:
        height = float(max(anchors_xyxy[:, 3].max(), gt_boxes[:, 3].max() if len(gt_boxes) else 0))
    draw_ground_truth(ax, gt_boxes, names, image_height=float(height))
    low_quality = (matched >= 0) & (best_iou < fg_iou)
    anchors = anchors_xyxy[show].numpy()
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    codes = state_codes(matched)
    artists = AnchorArtists(ax)
    default_title = (f"{counts['positive']} positive, {counts['ignored']} ignored, "
                     f"{counts['negative']} negative")
    artists.set(anchors, matched, low_quality, centres, codes, None, title or default_title)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return counts


# ----------------------------------------------------------------------------- examples


@dataclass
class ExplorerImage:
    """One image the explorer can show, in the frame its anchors live in.

    image: (3, H0, W0) float in [0, 1], drawn stretched to `image_size`; gt_boxes (M, 4) in
    the `image_size` frame; anchors cover the batch padded to a multiple of `size_divisible`.
    """

    name: str
    image: Tensor
    gt_boxes: Tensor
    image_size: tuple[int, int]  # (H, W) after resizing, the anchors' frame
    anchor_sizes: tuple[float, ...]
    anchor_scales: tuple[float, ...]
    anchor_ratios: tuple[float, ...]
    names: list[str] = field(default_factory=list)
    size_divisible: int = 32

    @property
    def padded_size(self) -> tuple[int, int]:
        d = self.size_divisible
        return (math.ceil(self.image_size[0] / d) * d, math.ceil(self.image_size[1] / d) * d)


def explorer_image(name: str, image: Tensor, gt_boxes: Tensor, config: RetinaNetConfig,
                   names: Sequence[str] | None = None) -> ExplorerImage:
    """An image with its boxes, resized (boxes only; the pixels are stretched when drawn) as `config` says."""
    height, width = image.shape[-2:]
    size = resized_size(height, width, config.min_size, config.max_size)
    boxes = gt_boxes.float().reshape(-1, 4)
    if size != (height, width):
        boxes = resize_boxes(boxes, (height, width), size)
    return ExplorerImage(name, image, boxes, size, tuple(config.anchor_sizes),
                         tuple(config.anchor_scales), tuple(config.anchor_ratios),
                         list(names) if names is not None else [], config.size_divisible)


def photo_example(config: RetinaNetConfig = TORCHVISION_V1) -> ExplorerImage:
    """grace_hopper.jpg with its hand-made boxes, resized as torchvision does (937 x 800)."""
    from ..shipped import load_grace_hopper

    image, target = load_grace_hopper()
    return explorer_image("grace_hopper.jpg (800 px, torchvision anchors)", image, target["boxes"],
                          config, target["names"])


# The classroom anchor sizes with the paper's nine anchors per location (three ratios): the explorer
# teaches the paper's anchors, while the trained CLASSROOM preset keeps only the square ones.
SHAPES_CONFIG = CLASSROOM.replace(anchor_ratios=(0.5, 1.0, 2.0))


def shapes_examples(num_images: int = 6, config: RetinaNetConfig = SHAPES_CONFIG,
                    seed: int = 0) -> list[ExplorerImage]:
    """Generated shapes images (128 px) with the classroom anchors (16 to 406 px)."""
    from ..synthetic import ShapesDataset

    dataset = ShapesDataset(num_images, image_size=config.min_size, seed=seed, split="val")
    examples = []
    for i in range(num_images):
        image, target = dataset[i]
        names = [dataset.class_names[k] for k in target["labels"].tolist()]
        examples.append(explorer_image(f"shapes #{i} ({len(names)} objects, classroom anchors)",
                                       image, target["boxes"], config, names))
    return examples


def default_examples() -> list[ExplorerImage]:
    return [photo_example(), *shapes_examples()]


# ----------------------------------------------------------------------------- the explorer


@dataclass
class _Prepared:
    """Everything computed once per (image, convention)."""

    generator: AnchorGenerator
    grid_sizes: list[tuple[int, int]]
    level_anchors: list[np.ndarray]  # per level (H_l * W_l * A, 4)
    overlaps: Overlaps  # (N,) each over all levels: matching's threshold-free half, as training computes it
    best_iou: np.ndarray  # (N,) overlaps.best_iou as NumPy, for the table
    level_offsets: list[int]


def _format_scale(scale: float) -> str:
    exponent = math.log2(scale)
    for denominator in (1, 2, 3, 4):
        numerator = exponent * denominator
        if abs(numerator - round(numerator)) < 1e-9:
            numerator = round(numerator)
            return f"2^{numerator}" if denominator == 1 else f"2^({numerator}/{denominator})"
    return f"{scale:.3g}"


def _format_ratio(ratio: float) -> str:
    """Ratio = height / width, written h:w."""
    return f"{ratio:g}:1" if ratio >= 1 else f"1:{1 / ratio:g}"


class AnchorExplorer:
    """Anchors of one level, scale, ratio and location, coloured positive / ignored / negative.

    ``update(**params)`` changes any of: ``image`` (an index into `examples` or a name), ``level``
    (3..7), ``scale`` / ``ratio`` (an index into the level's scales / ratios, or ``"all"``),
    ``fg_iou``, ``bg_iou``, ``location`` (``"all"`` or a grid cell ``(x, y)``),
    ``convention`` (``"torchvision"`` or ``"centered"``), ``low_quality`` (bool); bad values
    raise ValueError. It returns the counts for the anchors shown; :meth:`render` gives the
    picture as PNG bytes, :meth:`widget` the ipywidgets controls around it.
    """

    def __init__(self, examples: Sequence[ExplorerImage] | None = None, figsize=(6.4, 6.8),
                 dpi: int = 80, image_format: str = "png") -> None:
        check_choice("image_format", image_format, IMAGE_FORMATS)
        self.examples = list(examples) if examples is not None else default_examples()
        if not self.examples:
            raise ValueError("examples: expected at least one ExplorerImage")
        self.image_format = image_format
        self.params = {"image": 0, "level": DEFAULT_LEVEL, "scale": ALL, "ratio": ALL,
                       "fg_iou": FG_IOU, "bg_iou": BG_IOU, "location": ALL,
                       "convention": "torchvision", "low_quality": True}
        self._prepared: dict[tuple[int, str], _Prepared] = {}
        # A figure of its own, outside pyplot: nothing is shown twice in a notebook.
        self.canvas = Canvas(figsize, dpi)
        self.fig = self.canvas.fig
        self.ax = self.fig.add_axes((0.11, 0.17, 0.86, 0.74))
        self.artists = AnchorArtists(self.ax, animated=True)
        self._shown_image: int | None = None  # its background (all but the anchors) is saved on the canvas
        self._labels: dict[int, list[Label]] = {}  # per image: the ground-truth names, laid out once
        self._painter = LabelPainter(GT_FONTSIZE, dpi)
        self.counts: dict[str, int] = {}
        self.level_counts: dict[str, int] = {}
        self.rows: list[dict] = []  # per anchor drawn at a single location: shape, IoU, state
        self._png: bytes | None = None
        self.update()

    # --- parameters -------------------------------------------------------------------------

    def _image_index(self, image) -> int:
        return image_index(image, [e.name for e in self.examples])

    def _validate(self, params: dict) -> dict:
        p = merged_params(self.params, params)
        p["image"] = self._image_index(p["image"])
        if p["convention"] not in CONVENTIONS:
            raise ValueError(f"convention={p['convention']!r}: expected one of {CONVENTIONS}")
        example = self.examples[p["image"]]
        num_levels = len(example.anchor_sizes)
        levels = range(FIRST_LEVEL, FIRST_LEVEL + num_levels)
        if not isinstance(p["level"], (int, np.integer)) or p["level"] not in levels:
            raise ValueError(f"level={p['level']!r}: expected one of {list(levels)} (P3 = 3)")
        for name, options in (("scale", example.anchor_scales), ("ratio", example.anchor_ratios)):
            value = p[name]
            if value != ALL and (not isinstance(value, (int, np.integer)) or not 0 <= value < len(options)):
                raise ValueError(f"{name}={value!r}: expected 'all' or an index in [0, {len(options)})")
        check_iou_thresholds(p["fg_iou"], p["bg_iou"])
        if not isinstance(p["low_quality"], (bool, np.bool_)):
            raise ValueError(f"low_quality={p['low_quality']!r}: expected True or False")
        location = p["location"]
        if location != ALL:
            grid_h, grid_w = self.grid_size(p["image"], p["level"])
            if (not isinstance(location, (tuple, list)) or len(location) != 2
                    or not all(isinstance(v, (int, np.integer)) for v in location)
                    or not (0 <= location[0] < grid_w and 0 <= location[1] < grid_h)):
                raise ValueError(f"location={location!r}: expected 'all' or a grid cell (x, y) with "
                                 f"0 <= x < {grid_w} and 0 <= y < {grid_h} on P{p['level']}")
            p["location"] = (int(location[0]), int(location[1]))
        return p

    def grid_size(self, image, level: int) -> tuple[int, int]:
        """(H_l, W_l) of pyramid level `level` for an image (index or name)."""
        example = self.examples[self._image_index(image)]
        return feature_sizes(example.padded_size, len(example.anchor_sizes))[level - FIRST_LEVEL]

    # --- computing ----------------------------------------------------------------------------

    def prepared(self, image: int, convention: str) -> _Prepared:
        """Anchors of every level and their IoUs with the ground truth, computed once."""
        key = (image, convention)
        if key not in self._prepared:
            example = self.examples[image]
            generator = AnchorGenerator(example.anchor_sizes, example.anchor_scales,
                                        example.anchor_ratios, convention)
            grid_sizes = feature_sizes(example.padded_size, generator.num_levels)
            per_level = generator.per_level(example.padded_size, grid_sizes)
            all_anchors = torch.cat(per_level)  # (N, 4)
            overlaps = anchor_overlaps(all_anchors, example.gt_boxes.to(all_anchors.dtype))
            level_anchors = [a.numpy() for a in per_level]
            offsets = np.cumsum([0] + [len(a) for a in per_level]).tolist()
            self._prepared[key] = _Prepared(generator, grid_sizes, level_anchors, overlaps,
                                            overlaps.best_iou.numpy(), offsets)
        return self._prepared[key]

    def _select(self, p: dict, prep: _Prepared):
        """Indices (into all N anchors) of the anchors the parameters pick, as (L, k) per location."""
        level_index = p["level"] - FIRST_LEVEL
        grid_h, grid_w = prep.grid_sizes[level_index]
        num_ratios, num_scales = len(prep.generator.ratios), len(prep.generator.scales)
        index = np.arange(grid_h * grid_w * num_ratios * num_scales) + prep.level_offsets[level_index]
        index = index.reshape(grid_h, grid_w, num_ratios, num_scales)  # (H_l, W_l, R, S)
        if p["location"] != ALL:
            x, y = p["location"]
            index = index[y : y + 1, x : x + 1]
        if p["ratio"] != ALL:
            index = index[:, :, p["ratio"] : p["ratio"] + 1]
        if p["scale"] != ALL:
            index = index[:, :, :, p["scale"] : p["scale"] + 1]
        return index.reshape(index.shape[0] * index.shape[1], -1)  # (L, k): locations x anchors

    def update(self, **params) -> dict[str, int]:
        """Change some parameters, recompute the states and redraw; returns the counts shown."""
        p = self._validate(params)
        image_changed = p["image"] != self._shown_image
        self.params = p
        prep = self.prepared(p["image"], p["convention"])
        example = self.examples[p["image"]]

        with one_thread():
            matched_all = assign_by_iou(prep.overlaps, p["fg_iou"], p["bg_iou"], p["low_quality"]).numpy()  # (N,)
        level_index = p["level"] - FIRST_LEVEL
        level_slice = slice(prep.level_offsets[level_index], prep.level_offsets[level_index + 1])
        self.level_counts = count_states(matched_all[level_slice], prep.best_iou[level_slice], p["fg_iou"])
        self.image_counts = count_states(matched_all, prep.best_iou, p["fg_iou"])

        index = self._select(p, prep)  # (L, k)
        flat = index.reshape(-1)
        matched = matched_all[flat]
        best_iou = prep.best_iou[flat]
        anchors = prep.level_anchors[level_index][flat - prep.level_offsets[level_index]]  # (L * k, 4)
        self.counts = count_states(matched, best_iou, p["fg_iou"])

        codes = state_codes(matched).reshape(index.shape)  # (L, k)
        centre_states = codes.min(axis=1)  # a location shows its best state
        centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).reshape(*index.shape, 2)[:, 0]  # (L, 2)
        low_quality = (matched >= 0) & (best_iou < p["fg_iou"])
        if p["location"] == ALL:
            keep = codes.reshape(-1) != NEGATIVE  # outlines only for positive and ignored anchors
            location = None
        else:
            keep = np.ones(len(flat), dtype=bool)
            location = tuple(centres[0])
        self.rows = self._rows(p, prep, flat, matched, best_iou, anchors) if p["location"] != ALL else []
        if image_changed:
            self._draw_background(p["image"])
        self.artists.set(anchors[keep], matched[keep], low_quality[keep], centres,
                         centre_states, location, self._title(p, prep),
                         spacing=example.padded_size[1] / prep.grid_sizes[level_index][1])
        self._png = None
        return self.counts

    def _rows(self, p, prep, flat, matched, best_iou, anchors) -> list[dict]:
        level_index = p["level"] - FIRST_LEVEL
        num_scales = len(prep.generator.scales)
        rows = []
        for i, n in enumerate(flat.tolist()):  # at most A anchors
            a = n - prep.level_offsets[level_index]
            ratio_index, scale_index = divmod(a % (len(prep.generator.ratios) * num_scales), num_scales)
            state = STATES[0] if matched[i] >= 0 else STATES[1] if matched[i] == IGNORE else STATES[2]
            rows.append({"ratio": _format_ratio(prep.generator.ratios[ratio_index]),
                         "scale": _format_scale(prep.generator.scales[scale_index]),
                         "width": float(anchors[i, 2] - anchors[i, 0]),
                         "height": float(anchors[i, 3] - anchors[i, 1]),
                         "best_iou": max(float(best_iou[i]), 0.0), "state": state})  # no box: IoU 0
        return rows

    def _title(self, p: dict, prep: _Prepared) -> str:
        gen = prep.generator
        scale = ALL if p["scale"] == ALL else _format_scale(gen.scales[p["scale"]])
        ratio = ALL if p["ratio"] == ALL else _format_ratio(gen.ratios[p["ratio"]])
        where = "all locations" if p["location"] == ALL else f"cell (x={p['location'][0]}, y={p['location'][1]})"
        c = self.counts
        low = f" ({c['low_quality']} low-quality)" if c["low_quality"] else ""
        return (f"P{p['level']}, scale {scale}, ratio h:w {ratio}, {where}\n"
                f"{c['positive']} positive{low}, {c['ignored']} ignored, {c['negative']} negative "
                f"(IoU >= {p['fg_iou']:.2f} / < {p['bg_iou']:.2f})")

    # --- rendering ----------------------------------------------------------------------------

    def _draw_background(self, image: int) -> None:
        """Draw what stays put (image, ground truth, axes) and save its pixels; once per image."""
        ax = self.ax
        example = self.examples[image]
        padded_h, padded_w = example.padded_size
        ax.set_xlim(0, padded_w)  # the anchors' transform needs these even when the pixels are cached
        ax.set_ylim(padded_h, 0)
        self._shown_image = image
        if self.canvas.has(image):
            return
        for artist in [*ax.images, *ax.texts]:
            artist.remove()
        for collection in list(ax.collections):
            if collection not in self.artists.artists:
                collection.remove()
        height, width = example.image_size
        ax.imshow(example.image.permute(1, 2, 0).clamp(0, 1).numpy(), extent=(0, width, height, 0),
                  zorder=0)
        ax.set_facecolor("#404040")  # the zero padding of the batch
        draw_ground_truth(ax, example.gt_boxes)  # the names are painted over the anchors in `render`
        ax.set_xlim(0, padded_w)  # imshow may have moved them
        ax.set_ylim(padded_h, 0)
        ax.set_xlabel("x (pixels, resized image)")
        ax.set_ylabel("y (pixels)")
        if not self.fig.legends:
            _legend(self.fig, bbox_to_anchor=(0.5, 0.0))
        self._labels[image] = stack_labels(ground_truth_labels(example.gt_boxes, example.names),
                                           *text_size(ax, padded_h, GT_FONTSIZE), padded_h)
        self.canvas.save(image)

    def render(self) -> bytes:
        """The current picture as PNG (or JPEG) bytes: saved background + the anchors on top."""
        if self._png is None:
            from PIL import Image

            pixels = self.canvas.pixels(self._shown_image, self.artists.artists)  # (H, W, 3) uint8
            picture = Image.fromarray(pixels.copy())
            self._painter.paint_in_axes(picture, self.ax, self._labels[self._shown_image])  # names on top
            self._png = encode_image(np.asarray(picture), self.image_format)
        return self._png

    def table_html(self) -> str:
        """Counts for the selection, the level and the whole image; the anchors at a single cell."""
        p = self.params
        header = ["", *(coloured(s, STATE_COLOURS[s]) for s in STATES), "low-quality"]
        rows = [[label, *(str(counts[s]) for s in (*STATES, "low_quality"))]
                for label, counts in (("shown", self.counts), (f"P{p['level']}", self.level_counts),
                                      ("all levels", self.image_counts))]
        html = html_table(header, rows)
        if self.rows:
            anchors = [[r["ratio"], r["scale"], f"{r['width']:.0f} x {r['height']:.0f}", f"{r['best_iou']:.3f}",
                        coloured(r["state"], STATE_COLOURS[r["state"]])] for r in self.rows]
            html += html_table(["ratio h:w", "scale", "w x h", "best IoU", "state"], anchors)
        return html

    # --- widgets ------------------------------------------------------------------------------

    def widget(self):
        """Dropdowns and sliders wired to `update`, around the picture (an ipywidgets.Image)."""
        import ipywidgets as W

        example = self.examples[self.params["image"]]
        image = W.Dropdown(options=[(e.name, i) for i, e in enumerate(self.examples)],
                           value=self.params["image"], description="image", layout={"width": "420px"})
        level = W.Dropdown(options=[(f"P{lv} (stride {2 ** lv})", lv) for lv in
                                    range(FIRST_LEVEL, FIRST_LEVEL + len(example.anchor_sizes))],
                           value=self.params["level"], description="level")
        scale = W.Dropdown(description="scale")
        ratio = W.Dropdown(description="ratio h:w")
        convention = W.Dropdown(options=CONVENTIONS, value=self.params["convention"], description="centres")
        fg = W.FloatSlider(value=self.params["fg_iou"], min=0.0, max=1.0, step=0.05, description="fg IoU >=")
        bg = W.FloatSlider(value=self.params["bg_iou"], min=0.0, max=1.0, step=0.05, description="bg IoU <")
        low_quality = W.Checkbox(value=self.params["low_quality"], description="low-quality matches")
        everywhere = W.Checkbox(value=self.params["location"] == ALL, description="all locations")
        grid_x = W.IntSlider(min=0, description="grid x")
        grid_y = W.IntSlider(min=0, description="grid y")
        picture = W.Image(format=self.image_format)
        table = W.HTML()
        message = W.HTML()
        busy = {"flag": False}

        def fill_choices():
            ex = self.examples[self.params["image"]]
            scale.options = [(ALL, ALL)] + [(_format_scale(s), i) for i, s in enumerate(ex.anchor_scales)]
            ratio.options = [(ALL, ALL)] + [(_format_ratio(r), i) for i, r in enumerate(ex.anchor_ratios)]
            scale.value, ratio.value = self.params["scale"], self.params["ratio"]
            grid_h, grid_w = self.grid_size(self.params["image"], self.params["level"])
            grid_x.max, grid_y.max = grid_w - 1, grid_h - 1
            grid_x.disabled = grid_y.disabled = everywhere.value

        def show():
            picture.value = self.render()
            table.value = self.table_html()

        def on_change(_change=None):
            if busy["flag"]:
                return
            busy["flag"] = True
            try:
                changes = {"image": image.value, "level": level.value, "convention": convention.value,
                           "fg_iou": fg.value, "bg_iou": bg.value, "low_quality": low_quality.value}
                if changes["image"] != self.params["image"] or changes["level"] != self.params["level"]:
                    changes.update(scale=ALL, ratio=ALL)  # choices may differ; sliders are clamped below
                    grid_h, grid_w = self.grid_size(changes["image"], changes["level"])
                    grid_x.max, grid_y.max = grid_w - 1, grid_h - 1
                    grid_x.value, grid_y.value = min(grid_x.value, grid_w - 1), min(grid_y.value, grid_h - 1)
                else:
                    changes.update(scale=scale.value, ratio=ratio.value)
                changes["location"] = ALL if everywhere.value else (grid_x.value, grid_y.value)
                self.update(**changes)
                fill_choices()
                message.value = ""
                show()
            except ValueError as error:  # e.g. bg IoU above fg IoU: say so, keep the last picture
                message.value = error_html(error)
            finally:
                busy["flag"] = False

        fill_choices()
        grid_x.value, grid_y.value = (self.grid_size(self.params["image"], self.params["level"])[1] // 2,
                                      self.grid_size(self.params["image"], self.params["level"])[0] // 2)
        for control in (image, level, scale, ratio, convention, fg, bg, low_quality, everywhere, grid_x, grid_y):
            control.observe(on_change, names="value")
        show()
        controls = W.VBox([image, level, scale, ratio, convention, fg, bg, low_quality, everywhere,
                           grid_x, grid_y, table, message])
        return W.HBox([picture, controls])
