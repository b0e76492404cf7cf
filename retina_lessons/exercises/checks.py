"""Automatic checks for the classroom exercises.

Every lesson ends with exercises: the student writes one function, then runs a
check cell such as ``checks.check_box_iou(my_box_iou)``. Each checker runs the
function on a list of named cases chosen to catch the usual mistakes (boxes that
do not overlap, N != M, unsorted scores, extreme logits, odd feature-map sizes,
empty inputs, float64), compares with a reference (torchvision's where it has
the same piece) and prints a short verdict::

    ✓ box_iou: all 11 checks passed

or, on the first failing case, what went in, what was expected, what came back
and a hint aimed at the mistake that case is built to catch. A checker returns
True or False and never raises, whatever the student's code does; a function
that still raises ``NotImplementedError`` gets a one-line "not implemented yet".

Checkers and the function each one expects (shapes as in the package glossary):

- ``check_box_iou(fn)``: ``fn(boxes1 (N, 4), boxes2 (M, 4)) -> iou (N, M)``
- ``check_focal_loss(fn)``: ``fn(logits, targets, alpha=0.25, gamma=2.0) -> loss``
- ``check_nms(fn)``: ``fn(boxes (N, 4), scores (N,), iou_threshold) -> keep (K,) int64``
- ``check_level_anchors(fn)``: ``fn(feature_size, stride, sizes, aspect_ratios) -> (H*W*A, 4)``
- ``check_encode_boxes(fn)``: ``fn(gt_boxes (N, 4), anchors (N, 4), weights) -> box_deltas (N, 4)``
- ``check_decode_boxes(fn)``: ``fn(box_deltas (N, 4), anchors (N, 4), weights) -> boxes (N, 4)``
- ``check_fpn_top_down(fn)``: ``fn(lateral_c3, lateral_c4, lateral_c5) -> [m3, m4, m5]``
- ``check_head_reshape(fn)``: ``fn(head_output (B, A*K, H, W), num_anchors) -> (B, H*W*A, K)``
- ``check_ap_from_pr(fn)``: ``fn(recall (R,), precision (R,)) -> AP (a number)``
- ``check_num_anchors(fn)``: ``fn(image_size (H, W), num_anchors_per_location=9) -> int``
- ``check_frozen_batchnorm(fn)``: ``fn(x, weight, bias, running_mean, running_var, eps) -> y``
- ``check_hflip(fn)``: ``fn(image (3, H, W), boxes (M, 4)) -> (image, boxes)``
- ``check_modulating_factor(fn)``: ``fn(logits, targets, gamma) -> (1 - p_t) ** gamma``

The exercise convention (cell tags, solution markers) is described in
``retina_lessons/exercises/student_edition.py``; the lessons that use each checker are
listed in TEACHING.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection._utils import BoxCoder

__all__ = [
    "ALL_CHECKS",
    "check_ap_from_pr",
    "check_box_iou",
    "check_decode_boxes",
    "check_encode_boxes",
    "check_focal_loss",
    "check_fpn_top_down",
    "check_head_reshape",
    "check_level_anchors",
    "check_nms",
    "check_num_anchors",
    "check_frozen_batchnorm",
    "check_hflip",
    "check_modulating_factor",
]

# torchvision's BoxCoder clamps dw, dh at log(1000 / 16) before exp() in decode.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
# COCO's 101 recall thresholds 0.00, 0.01, ..., 1.00, built as pycocotools builds them.
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)

_MAX_SHOWN = 16  # tensors with more elements are shown as their shape only


# --------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class _Case:
    """One named input for a checker; ``hint`` targets the mistake it catches."""

    name: str
    args: tuple
    hint: str
    kwargs: dict = field(default_factory=dict)
    check_dtype: bool = False  # also require the reference's dtype


class _Problem(str):
    """A mismatch that carries its own hint (the case's hint does not apply to it)."""

    def __new__(cls, text: str, hint: str) -> _Problem:
        problem = super().__new__(cls, text)
        problem.hint = hint
        return problem


def _fmt(value: Any, digits: int = 4) -> str:
    """Short, rounded text for a tensor, number or nested sequence."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.numel() == 0:
            return f"empty tensor of shape {tuple(value.shape)}"
        if value.numel() > _MAX_SHOWN or value.dim() > 3:
            return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        return _fmt(value.tolist(), digits)
    if isinstance(value, np.ndarray):
        return _fmt(torch.from_numpy(value), digits)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v, digits) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_fmt(v, digits) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _safe_fmt(value: Any, digits: int = 4) -> str:
    try:
        return _fmt(value, digits)
    except Exception:  # a student's object whose repr fails must not stop the check
        return f"<{type(value).__name__}>"


def _short_error(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 120:
        message = message[:117] + "..."
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list | tuple):
        return type(value)(_clone(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    return True


def _compare_tensors(
    expected: torch.Tensor,
    got: Any,
    *,
    check_dtype: bool,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> str | None:
    """None when ``got`` matches ``expected``, else a one-line description."""
    if not isinstance(got, torch.Tensor):
        return _Problem(
            f"expected a torch.Tensor, got {type(got).__name__}",
            "Return a torch.Tensor: compute with torch operations on the inputs "
            "(or torch.stack the pieces at the end).",
        )
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if check_dtype and got.dtype != expected.dtype:
        return f"expected dtype {expected.dtype}, got {got.dtype}"
    if got.dtype == torch.bool and expected.dtype != torch.bool:
        return _Problem(
            f"expected dtype {expected.dtype}, got a boolean tensor",
            "Return the numbers themselves, not the result of a comparison.",
        )
    got64 = got.detach().cpu().to(torch.float64)
    expected64 = expected.detach().cpu().to(torch.float64)
    if not torch.isfinite(got64).all() and torch.isfinite(expected64).all():
        return "some values are NaN or inf"
    close = torch.isclose(got64, expected64, rtol=rtol, atol=atol)
    if close.all():
        return None
    index = tuple(int(i) for i in (~close).nonzero()[0])
    return (
        f"values differ, first at index {list(index)}: "
        f"expected {expected64[index].item():.6g}, got {got64[index].item():.6g}"
    )


def _run_checks(
    title: str,
    fn: Any,
    cases: Sequence[_Case],
    reference: Callable,
    arg_names: Sequence[str],
    compare: Callable[[Any, Any, _Case], str | None] | None = None,
) -> bool:
    """Run ``fn`` on every case, print one verdict, return True when all pass."""
    if compare is None:

        def compare(expected, got, case):
            return _compare_tensors(expected, got, check_dtype=case.check_dtype)

    if not callable(fn):
        print(f"✗ {title}: expected a function, got {type(fn).__name__}")
        return False

    failures = []
    for number, case in enumerate(cases):
        expected = reference(*case.args, **case.kwargs)
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        got: Any = None
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError as err:
            if number == 0:
                print(f"✗ {title}: not implemented yet (replace the `raise NotImplementedError`)")
                return False
            problem = f"raised {_short_error(err)}"
        except (Exception, SystemExit) as err:  # the student's code may raise anything
            problem = f"raised {_short_error(err)}"
        else:
            try:
                problem = compare(expected, got, case)
            except Exception as err:
                problem = f"returned something that cannot be compared ({_short_error(err)})"
            if problem is None:
                changed = [
                    name
                    for name, before, after in zip(arg_names, case.args, args, strict=False)
                    if not _same(before, after)
                ]
                if changed:
                    problem = _Problem(
                        f"changed its input `{changed[0]}` in place",
                        "Build new tensors (c = a + b) instead of modifying the inputs "
                        "(a += b, a[...] = ..., .zero_()): the caller still needs them.",
                    )
        if problem is not None:
            failures.append((case, problem, expected, got))

    if not failures:
        print(f"✓ {title}: all {len(cases)} checks passed")
        return True

    case, problem, expected, got = failures[0]
    shown_args = ", ".join(
        f"{name}={_safe_fmt(value)}" for name, value in zip(arg_names, case.args, strict=False)
    )
    shown_args += "".join(f", {name}={_safe_fmt(value)}" for name, value in case.kwargs.items())
    lines = [
        f"✗ {title}: failed '{case.name}' ({len(failures)} of {len(cases)} checks failed)",
        f"  input:    {shown_args}",
        f"  expected: {_safe_fmt(expected)}",
    ]
    if problem.startswith("raised"):
        lines.append(f"  got:      {problem}")
    else:
        lines.append(f"  got:      {_safe_fmt(got)}")
        lines.append(f"  problem:  {problem}")
    lines.append(f"  hint:     {getattr(problem, 'hint', None) or case.hint}")
    if len(failures) > 1:
        lines.append("  also failing: " + ", ".join(f"'{f[0].name}'" for f in failures[1:]))
    print("\n".join(lines))
    return False


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_boxes(num: int, g: torch.Generator, max_xy: float = 100.0, max_wh: float = 60.0):
    xy = torch.rand(num, 2, generator=g) * max_xy
    wh = torch.rand(num, 2, generator=g) * max_wh + 1.0
    return torch.cat([xy, xy + wh], dim=1)  # (num, 4) xyxy


def _t(values, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


# --------------------------------------------------------------------------- box IoU


def _box_iou_cases() -> list[_Case]:
    g = _generator(0)
    union_hint = (
        "IoU = intersection / (area1 + area2 - intersection), with width = x2 - x1 "
        "(no +1: boxes are in continuous pixel coordinates)."
    )
    pairwise_hint = (
        "Compare every box of boxes1 with every box of boxes2: broadcast "
        "boxes1[:, None, :2] against boxes2[None, :, :2]. The result has one row per "
        "box of boxes1 and one column per box of boxes2: shape (N, M)."
    )
    return [
        _Case("identical boxes", (_t([[0, 0, 2, 2]]), _t([[0, 0, 2, 2]])), union_hint),
        _Case("partial overlap", (_t([[0, 0, 2, 2]]), _t([[1, 1, 3, 3]])), union_hint),
        _Case("one box inside the other", (_t([[0, 0, 4, 4]]), _t([[1, 1, 2, 2]])), union_hint),
        _Case(
            "disjoint boxes (apart in x and y)",
            (_t([[0, 0, 1, 1]]), _t([[2, 2, 3, 3]])),
            "For boxes that do not overlap, x2 - x1 of the overlap is negative; two "
            "negatives multiply to a positive area. Clamp the overlap width and height "
            "at 0 (.clamp(min=0)) before multiplying.",
        ),
        _Case(
            "disjoint boxes (apart in x only)",
            (_t([[0, 0, 1, 4]]), _t([[2, 0, 3, 4]])),
            "A negative overlap width times a positive height gives a negative area: "
            "clamp the overlap width and height at 0 (.clamp(min=0)).",
        ),
        _Case(
            "boxes that share an edge",
            (_t([[0, 0, 1, 1]]), _t([[1, 0, 2, 1]])),
            "Boxes that only touch have zero overlap. Width is x2 - x1, without the "
            "old +1 pixel convention.",
        ),
        _Case(
            "negative coordinates",
            (_t([[-5, -5, 5, 5]]), _t([[0, 0, 10, 10]])),
            "Boxes may extend past the image (negative x1, y1): do not clamp the "
            "coordinates themselves, only the overlap width and height.",
        ),
        _Case("N != M (3 vs 5 boxes)", (_random_boxes(3, g), _random_boxes(5, g)), pairwise_hint),
        _Case("N = M (4 vs 4 boxes)", (_random_boxes(4, g), _random_boxes(4, g)), pairwise_hint),
        _Case(
            "empty boxes1",
            (torch.zeros(0, 4), _random_boxes(3, g)),
            "With no boxes the answer is an empty tensor of shape (0, M); broadcasting "
            "handles this without special cases.",
        ),
        _Case(
            "empty boxes2",
            (_random_boxes(2, g), torch.zeros(0, 4)),
            "With no boxes the answer is an empty tensor of shape (N, 0); broadcasting "
            "handles this without special cases.",
        ),
        _Case(
            "float64 boxes",
            (_random_boxes(2, g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: float64 boxes give a float64 IoU. Avoid "
            "torch.zeros(N, M) without dtype=boxes1.dtype.",
            check_dtype=True,
        ),
    ]


def check_box_iou(fn: Callable) -> bool:
    """Check ``fn(boxes1, boxes2) -> iou``.

    - ``boxes1``: (N, 4) float tensor of xyxy boxes in pixels.
    - ``boxes2``: (M, 4) float tensor of xyxy boxes.
    - returns: (N, M) tensor, ``iou[i, j]`` = IoU of ``boxes1[i]`` and ``boxes2[j]``,
      same dtype as the inputs.

    Reference: ``torchvision.ops.box_iou``.
    """
    return _run_checks(
        "box_iou", fn, _box_iou_cases(), torchvision.ops.box_iou, ("boxes1", "boxes2")
    )


# --------------------------------------------------------------------------- focal loss


def _focal_loss_reference(logits, targets, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss per element, computed in log space so it stays finite."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    # log(1 - p_t): log(1 - p) for positives, log(p) for negatives.
    log_one_minus_p_t = targets * F.logsigmoid(-logits) + (1 - targets) * F.logsigmoid(logits)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * torch.exp(gamma * log_one_minus_p_t) * bce


def _focal_loss_cases() -> list[_Case]:
    g = _generator(1)
    logits = torch.randn(3, 4, generator=g) * 3
    targets = (torch.rand(3, 4, generator=g) < 0.4).float()
    formula_hint = (
        "FL = -alpha_t * (1 - p_t)**gamma * log(p_t), with p_t = p for targets 1 and "
        "1 - p for targets 0, and alpha_t = alpha for targets 1, 1 - alpha for targets 0."
    )
    return [
        _Case("default alpha=0.25, gamma=2", (logits, targets), formula_hint),
        _Case(
            "positives only (targets all 1)",
            (logits[0], torch.ones(4)),
            "Positives are weighted by alpha and modulated by (1 - p)**gamma.",
        ),
        _Case(
            "negatives only (targets all 0)",
            (logits[1], torch.zeros(4)),
            "Negatives are weighted by 1 - alpha and modulated by p**gamma "
            "(gamma goes on 1 - p_t, not on p_t).",
        ),
        _Case(
            "gamma=0 is alpha-weighted cross-entropy",
            (logits, targets),
            "With gamma=0 the modulating factor is 1; use the gamma argument, do not hard-code 2.",
            kwargs={"alpha": 0.25, "gamma": 0.0},
        ),
        _Case(
            "alpha=0.75, gamma=1",
            (logits, targets),
            "Use the alpha and gamma arguments: alpha_t = alpha * t + (1 - alpha) * (1 - t).",
            kwargs={"alpha": 0.75, "gamma": 1.0},
        ),
        _Case(
            "extreme logits +-100",
            (_t([100.0, -100.0, 100.0, -100.0]), _t([0.0, 0.0, 1.0, 1.0])),
            "sigmoid(100) rounds to exactly 1.0, so log(1 - p) is -inf. Work with "
            "logits: F.binary_cross_entropy_with_logits for the log term, and "
            "F.logsigmoid for log p and log(1 - p); clamping p only hides the problem.",
        ),
        _Case(
            "elementwise output (2, 3, 4)",
            (torch.randn(2, 3, 4, generator=g), (torch.rand(2, 3, 4, generator=g) < 0.5).float()),
            "Return one loss per element, like reduction='none': no sum() or mean().",
        ),
        _Case(
            "empty input",
            (torch.zeros(0, 3), torch.zeros(0, 3)),
            "An empty batch gives an empty loss tensor (shape (0, 3)); mean() of nothing is NaN.",
        ),
        _Case(
            "float64 logits",
            (logits.double(), targets.double()),
            "Keep the inputs' dtype: build every tensor from the logits.",
            check_dtype=True,
        ),
    ]


def check_focal_loss(fn: Callable) -> bool:
    """Check ``fn(logits, targets, alpha=0.25, gamma=2.0) -> loss``.

    - ``logits``: float tensor of any shape (raw classification scores).
    - ``targets``: float tensor of the same shape, 1 for the object's class, 0 elsewhere.
    - returns: the loss per element (same shape, no reduction), as
      ``torchvision.ops.sigmoid_focal_loss(..., reduction="none")``; finite even at
      logits of +-100.
    """
    return _run_checks(
        "focal_loss", fn, _focal_loss_cases(), _focal_loss_reference, ("logits", "targets")
    )


# --------------------------------------------------------------------------- NMS


def _compare_indices(expected, got, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return _Problem(
            f"expected a torch.Tensor of indices, got {type(got).__name__}",
            "Return the kept indices as a tensor: torch.tensor(keep, dtype=torch.int64).",
        )
    if got.dtype == torch.bool:
        return _Problem(
            "got a boolean mask instead of indices",
            "Return the indices of the kept boxes (int64) in decreasing score order, "
            "not a True/False mask over the boxes.",
        )
    if got.dtype != torch.int64:
        return _Problem(
            f"expected int64 indices, got dtype {got.dtype}",
            "Indices are int64 in PyTorch: .to(torch.int64) or dtype=torch.long.",
        )
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected {expected.numel()} kept boxes, got shape {tuple(got.shape)}"
    if not torch.equal(got.cpu(), expected):
        return "different indices (or order)"
    return None


def _clustered_boxes(num: int, g: torch.Generator) -> torch.Tensor:
    centres = torch.tensor([[30.0, 30.0], [70.0, 40.0], [50.0, 80.0]])
    pick = torch.randint(0, 3, (num,), generator=g)
    xy = centres[pick] + torch.randn(num, 2, generator=g) * 6
    half = 10 + torch.rand(num, 2, generator=g) * 8
    return torch.cat([xy - half, xy + half], dim=1)  # (num, 4)


def _nms_cases() -> list[_Case]:
    g = _generator(2)
    overlap = _t([[0, 0, 10, 10], [1, 1, 11, 11]])  # IoU 81 / 119 = 0.68
    unsorted_boxes = _t([[0, 0, 10, 10], [20, 0, 30, 10], [1, 0, 11, 10], [40, 0, 50, 10]])
    sort_hint = (
        "Visit boxes in decreasing score order (scores.argsort(descending=True)) and "
        "return indices into the original boxes, highest score first."
    )
    return [
        _Case(
            "two overlapping boxes",
            (overlap, _t([0.9, 0.8]), 0.5),
            "A box is suppressed when its IoU with a kept, higher-scoring box is "
            "GREATER than iou_threshold (not smaller).",
        ),
        _Case("unsorted scores", (unsorted_boxes, _t([0.3, 0.5, 0.6, 0.9]), 0.5), sort_hint),
        _Case(
            "IoU exactly at the threshold",
            (_t([[0, 0, 3, 1], [1, 0, 4, 1]]), _t([0.9, 0.8]), 0.5),
            "These boxes have IoU exactly 0.5: torchvision suppresses only IoU > "
            "threshold, so both are kept. Use >, not >=.",
        ),
        _Case(
            "chain A-B-C: suppressed boxes do not suppress",
            (_t([[0, 0, 10, 10], [6, 0, 16, 10], [12, 0, 22, 10]]), _t([0.9, 0.8, 0.7]), 0.2),
            "B overlaps A and C, but A and C do not overlap. B is removed by A, and a "
            "removed box must not remove anything: compare each box only with boxes "
            "already kept.",
        ),
        _Case(
            "no overlaps: keep everything, sorted",
            (
                _t([[0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30], [20, 20, 30, 30]]),
                _t([0.1, 0.7, 0.4, 0.9]),
                0.5,
            ),
            sort_hint,
        ),
        _Case("single box", (_t([[5, 5, 9, 9]]), _t([0.3]), 0.5), "One box is always kept: [0]."),
        _Case(
            "empty input",
            (torch.zeros(0, 4), torch.zeros(0), 0.5),
            "No boxes give an empty int64 tensor: torch.empty(0, dtype=torch.int64).",
        ),
        _Case(
            "40 clustered boxes, threshold 0.5",
            (_clustered_boxes(40, g), torch.rand(40, generator=g), 0.5),
            sort_hint,
        ),
        _Case(
            "40 clustered boxes, threshold 0.3",
            (_clustered_boxes(40, g), torch.rand(40, generator=g), 0.3),
            "Use the iou_threshold argument rather than a fixed 0.5.",
        ),
    ]


def check_nms(fn: Callable) -> bool:
    """Check ``fn(boxes, scores, iou_threshold) -> keep``.

    - ``boxes``: (N, 4) float tensor of xyxy boxes.
    - ``scores``: (N,) float tensor.
    - ``iou_threshold``: float; a box is dropped when its IoU with a kept box of
      higher score is greater than this.
    - returns: (K,) int64 tensor of indices into ``boxes``, in decreasing score order.

    Reference: ``torchvision.ops.nms``.
    """
    return _run_checks(
        "nms",
        fn,
        _nms_cases(),
        torchvision.ops.nms,
        ("boxes", "scores", "iou_threshold"),
        compare=_compare_indices,
    )


# --------------------------------------------------------------------------- anchors


def _level_anchors_reference(feature_size, stride, sizes, aspect_ratios):
    """One level of torchvision's AnchorGenerator: (H*W*A, 4) xyxy anchors."""
    scales = torch.as_tensor(sizes, dtype=torch.float32)
    ratios = torch.as_tensor(aspect_ratios, dtype=torch.float32)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).view(-1)  # (A,) ratio-major, then size
    hs = (h_ratios[:, None] * scales[None, :]).view(-1)
    base = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()  # (A, 4)
    H, W = feature_size
    shift_y, shift_x = torch.meshgrid(
        torch.arange(H, dtype=torch.float32) * stride,
        torch.arange(W, dtype=torch.float32) * stride,
        indexing="ij",
    )
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)  # (H*W*A, 4)


def _level_anchors_cases() -> list[_Case]:
    retina_sizes = tuple(32 * 2 ** (k / 3) for k in range(3))
    base_hint = (
        "Base anchor: h_ratio = sqrt(r), w_ratio = 1 / h_ratio, w = w_ratio * size, "
        "h = h_ratio * size, anchor = round([-w, -h, w, h] / 2). On a 1 x 1 grid the only "
        "centre is (0, 0), so the anchors are the base anchors themselves."
    )
    grid_hint = (
        "Centres are at (x * stride, y * stride) for x in range(W), y in range(H) (no "
        "half-stride offset); the rows go location by location (y, then x) and within "
        "a location through the A base anchors: (H, W, A, 4) -> (H*W*A, 4)."
    )
    return [
        _Case("one square anchor", ((1, 1), 8, (32,), (1.0,)), base_hint),
        _Case(
            "aspect ratios 0.5, 1, 2",
            ((1, 1), 8, (32,), (0.5, 1.0, 2.0)),
            "The aspect ratio is height / width: ratio 2 gives a tall anchor "
            "(h_ratio = sqrt(2), w_ratio = 1 / sqrt(2)). " + base_hint,
        ),
        _Case(
            "base anchors are rounded",
            ((1, 1), 8, (20,), (0.5,)),
            "torchvision rounds the base anchors to whole pixels: .round() after "
            "dividing [-w, -h, w, h] by 2.",
        ),
        _Case(
            "order: ratio-major, then size",
            ((1, 1), 8, (32, 64), (0.5, 1.0, 2.0)),
            "Base anchors go ratio by ratio, and within a ratio through the sizes: "
            "ws = (w_ratios[:, None] * sizes[None, :]).view(-1).",
        ),
        _Case("grid 2 x 3 (H != W), stride 8", ((2, 3), 8, (16,), (1.0,)), grid_hint),
        _Case("grid 3 x 2 with 3 anchors", ((3, 2), 16, (32,), (0.5, 1.0, 2.0)), grid_hint),
        _Case(
            "RetinaNet P3: 9 anchors on 5 x 7, stride 8",
            ((5, 7), 8, retina_sizes, (0.5, 1.0, 2.0)),
            grid_hint,
        ),
    ]


def check_level_anchors(fn: Callable) -> bool:
    """Check ``fn(feature_size, stride, sizes, aspect_ratios) -> anchors``.

    - ``feature_size``: ``(H, W)``, the level's grid size (ints).
    - ``stride``: int, pixels between neighbouring grid cells.
    - ``sizes``: tuple of anchor sizes in pixels (e.g. ``(32, 40.3, 50.8)``).
    - ``aspect_ratios``: tuple of height / width ratios (e.g. ``(0.5, 1.0, 2.0)``).
    - returns: (H*W*A, 4) float tensor of xyxy anchors, A = len(sizes) * len(aspect_ratios),
      in torchvision's order: location-major (row y, then x), then the A base
      anchors (ratio-major, then size); centres at (x * stride, y * stride).

    Reference: ``torchvision.models.detection.anchor_utils.AnchorGenerator``.
    """
    return _run_checks(
        "level_anchors",
        fn,
        _level_anchors_cases(),
        _level_anchors_reference,
        ("feature_size", "stride", "sizes", "aspect_ratios"),
    )


# --------------------------------------------------------------------------- box coding


def _encode_reference(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights).encode_single(gt_boxes, anchors)


def _decode_reference(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    return BoxCoder(weights, bbox_xform_clip=BBOX_XFORM_CLIP).decode_single(box_deltas, anchors)


def _encode_cases() -> list[_Case]:
    g = _generator(3)
    anchors = _t([[0, 0, 16, 8], [10, 10, 42, 74]])
    formula_hint = (
        "dx = (gt_cx - anchor_cx) / anchor_w, dy likewise with heights, "
        "dw = log(gt_w / anchor_w), dh = log(gt_h / anchor_h), where the centre "
        "cx = x1 + 0.5 * w."
    )
    return [
        _Case(
            "gt equal to the anchors",
            (anchors, anchors),
            "A ground-truth box equal to its anchor encodes to (0, 0, 0, 0).",
        ),
        _Case(
            "shifted boxes",
            (anchors + _t([4, -2, 4, -2]), anchors),
            "dx, dy are the centre offsets divided by the ANCHOR's width and height.",
        ),
        _Case(
            "larger box, same top-left corner",
            (_t([[0, 0, 32, 24], [10, 10, 26, 42]]), anchors),
            "The centre is x1 + 0.5 * w (not x1 + w, not x1 + x2), and "
            "dw = log(gt_w / anchor_w): ground truth over anchor, not the reverse.",
        ),
        _Case("20 random pairs", (_random_boxes(20, g), _random_boxes(20, g)), formula_hint),
        _Case(
            "weights (10, 10, 5, 5)",
            (_random_boxes(6, g), _random_boxes(6, g)),
            "Encoding MULTIPLIES by the weights: dx = wx * (gt_cx - anchor_cx) / anchor_w, "
            "dw = ww * log(gt_w / anchor_w).",
            kwargs={"weights": (10.0, 10.0, 5.0, 5.0)},
        ),
        _Case(
            "no boxes",
            (torch.zeros(0, 4), torch.zeros(0, 4)),
            "No boxes give an empty (0, 4) tensor.",
        ),
        _Case(
            "float64 boxes",
            (_random_boxes(3, g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: build every tensor from gt_boxes / anchors.",
            check_dtype=True,
        ),
    ]


def check_encode_boxes(fn: Callable) -> bool:
    """Check ``fn(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)) -> box_deltas``.

    - ``gt_boxes``: (N, 4) xyxy ground-truth box matched to each anchor.
    - ``anchors``: (N, 4) xyxy anchors.
    - ``weights``: ``(wx, wy, ww, wh)``, multiplied into the deltas (RetinaNet uses 1s).
    - returns: (N, 4) ``(dx, dy, dw, dh)``.

    Reference: torchvision's ``BoxCoder(weights).encode_single(gt_boxes, anchors)``.
    """
    return _run_checks(
        "encode_boxes", fn, _encode_cases(), _encode_reference, ("gt_boxes", "anchors")
    )


def _decode_cases() -> list[_Case]:
    g = _generator(4)
    anchors = _t([[0, 0, 16, 8], [10, 10, 42, 74]])
    formula_hint = (
        "cx = anchor_cx + dx * anchor_w, w = anchor_w * exp(dw) (the same for y and h), "
        "then the box is (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)."
    )
    return [
        _Case(
            "zero deltas give the anchors",
            (torch.zeros(2, 4), anchors),
            "Deltas (0, 0, 0, 0) decode to the anchor itself.",
        ),
        _Case("shift only", (_t([[0.25, -0.5, 0, 0], [1, 0.1, 0, 0]]), anchors), formula_hint),
        _Case(
            "scale only",
            (_t([[0, 0, math.log(2), 0], [0, 0, 0, -math.log(2)]]), anchors),
            "Width and height scale by exp(dw), exp(dh) around the anchor's centre.",
        ),
        _Case(
            "20 random deltas",
            (torch.randn(20, 4, generator=g) * 0.5, _random_boxes(20, g)),
            formula_hint,
        ),
        _Case(
            "weights (10, 10, 5, 5)",
            (torch.randn(6, 4, generator=g), _random_boxes(6, g)),
            "Decoding DIVIDES the deltas by the weights before using them "
            "(dx = deltas[:, 0] / wx), undoing what encode multiplied in.",
            kwargs={"weights": (10.0, 10.0, 5.0, 5.0)},
        ),
        _Case(
            "huge dw, dh are clamped",
            (_t([[0, 0, 10, 10], [0, 0, 100, 3]]), anchors),
            "Clamp dw and dh at max=log(1000 / 16) before exp(), as torchvision's BoxCoder "
            "does; otherwise one wild prediction becomes an enormous (or inf) box.",
        ),
        _Case(
            "very negative dw, dh are not clamped",
            (_t([[0, 0, -10, -6], [0, 0, -3, -10]]), anchors),
            "Only the upper side is clamped (dw.clamp(max=log(1000 / 16))); shrinking is "
            "not limited.",
        ),
        _Case(
            "no boxes",
            (torch.zeros(0, 4), torch.zeros(0, 4)),
            "No deltas give an empty (0, 4) tensor.",
        ),
        _Case(
            "float64 deltas",
            (torch.randn(3, 4, generator=g).double(), _random_boxes(3, g).double()),
            "Keep the inputs' dtype: build every tensor from box_deltas / anchors.",
            check_dtype=True,
        ),
    ]


def check_decode_boxes(fn: Callable) -> bool:
    """Check ``fn(box_deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)) -> boxes``.

    - ``box_deltas``: (N, 4) ``(dx, dy, dw, dh)`` predicted for each anchor.
    - ``anchors``: (N, 4) xyxy anchors.
    - ``weights``: ``(wx, wy, ww, wh)``; the deltas are divided by them.
    - returns: (N, 4) xyxy boxes; dw, dh clamped at ``max=log(1000 / 16)`` before exp().

    Reference: torchvision's ``BoxCoder(weights).decode_single(box_deltas, anchors)``.
    """
    return _run_checks(
        "decode_boxes", fn, _decode_cases(), _decode_reference, ("box_deltas", "anchors")
    )


# --------------------------------------------------------------------------- FPN


def _fpn_top_down_reference(lateral_c3, lateral_c4, lateral_c5):
    m5 = lateral_c5
    m4 = lateral_c4 + F.interpolate(m5, size=lateral_c4.shape[-2:], mode="nearest")
    m3 = lateral_c3 + F.interpolate(m4, size=lateral_c3.shape[-2:], mode="nearest")
    return [m3, m4, m5]


def _compare_maps(expected, got, case) -> str | None:
    list_hint = "Return the three merged maps as a list, finest first: [m3, m4, m5]."
    if not isinstance(got, list | tuple):
        return _Problem(f"expected a list [m3, m4, m5], got {type(got).__name__}", list_hint)
    if len(got) != 3:
        return _Problem(f"expected a list of 3 maps [m3, m4, m5], got {len(got)}", list_hint)
    shapes = [tuple(getattr(m, "shape", ())) for m in got]
    if shapes != [tuple(m.shape) for m in expected] and shapes == [
        tuple(m.shape) for m in expected[::-1]
    ]:
        return _Problem("the maps come coarsest first", list_hint)
    for name, want, have in zip(("m3", "m4", "m5"), expected, got, strict=True):
        problem = _compare_tensors(want, have, check_dtype=False, rtol=1e-5, atol=1e-5)
        if problem is not None:
            hint = getattr(problem, "hint", None)
            return _Problem(f"{name}: {problem}", hint) if hint else f"{name}: {problem}"
    return None


def _fpn_cases() -> list[_Case]:
    g = _generator(5)

    def laterals(batch, channels, sizes):
        return tuple(torch.randn(batch, channels, h, w, generator=g) for h, w in sizes)

    merge_hint = (
        "m5 = l5; m4 = l4 + upsample(m5); m3 = l3 + upsample(m4): each level adds the "
        "MERGED map from the level above (m4, not l4), upsampled with "
        "F.interpolate(..., mode='nearest')."
    )
    odd_hint = (
        "Upsample to the lateral's own size, F.interpolate(m5, size=l4.shape[-2:], "
        "mode='nearest'): with odd image sizes a coarser map is not exactly half "
        "the finer one, so scale_factor=2 gives the wrong shape."
    )
    return [
        _Case("sizes 8, 4, 2", laterals(1, 2, [(8, 8), (4, 4), (2, 2)]), merge_hint),
        _Case("non-square 8x12, 4x6, 2x3", laterals(1, 3, [(8, 12), (4, 6), (2, 3)]), merge_hint),
        _Case("odd sizes 13x10, 7x5, 4x3", laterals(1, 2, [(13, 10), (7, 5), (4, 3)]), odd_hint),
        _Case("batch of 2, odd sizes", laterals(2, 4, [(25, 17), (13, 9), (7, 5)]), odd_hint),
    ]


def check_fpn_top_down(fn: Callable) -> bool:
    """Check ``fn(lateral_c3, lateral_c4, lateral_c5) -> [m3, m4, m5]``.

    - ``lateral_c3``, ``lateral_c4``, ``lateral_c5``: (B, C, H_i, W_i) outputs of the
      1x1 lateral convs, finest first; sizes need not be exact multiples of 2.
    - returns: the merged maps before the 3x3 output convs, finest first:
      ``m5 = l5``, ``m4 = l4 + nearest_upsample(m5 to l4's size)``,
      ``m3 = l3 + nearest_upsample(m4 to l3's size)``.

    Reference: the top-down pathway of ``torchvision.ops.FeaturePyramidNetwork``.
    """
    return _run_checks(
        "fpn_top_down",
        fn,
        _fpn_cases(),
        _fpn_top_down_reference,
        ("lateral_c3", "lateral_c4", "lateral_c5"),
        compare=_compare_maps,
    )


# --------------------------------------------------------------------------- head reshape


def _head_reshape_reference(head_output, num_anchors):
    B, AK, H, W = head_output.shape
    K = AK // num_anchors
    x = head_output.view(B, num_anchors, K, H, W)  # (B, A, K, H, W)
    return x.permute(0, 3, 4, 1, 2).reshape(B, -1, K)  # (B, H*W*A, K)


def _head_reshape_cases() -> list[_Case]:
    def numbered(B, A, K, H, W):
        return torch.arange(B * A * K * H * W, dtype=torch.float32).view(B, A * K, H, W)

    order_hint = (
        "Channel a * K + k holds class k of anchor a: view(B, A, K, H, W), move A and "
        "K to the end with permute(0, 3, 4, 1, 2), then reshape(B, -1, K): rows go "
        "through the grid row by row (y, then x) and through the A anchors at each "
        "location. A reshape without the permute mixes locations and classes."
    )
    return [
        _Case("one anchor, 3 classes, 2 x 2", (numbered(1, 1, 3, 2, 2), 1), order_hint),
        _Case("3 anchors, 2 classes, 2 x 3", (numbered(1, 3, 2, 2, 3), 3), order_hint),
        _Case(
            "A = K = 3 (same shape either way)",
            (numbered(1, 3, 3, 2, 2), 3),
            "The channels are anchor-major: view(B, A, K, H, W), not view(B, K, A, H, W). "
            "Here A = K, so only the values tell the two apart.",
        ),
        _Case(
            "batch of 2, box head (K = 4)",
            (numbered(2, 9, 4, 3, 2), 9),
            "Keep the batch dimension first; every image gets its own H*W*A rows. " + order_hint,
        ),
    ]


def check_head_reshape(fn: Callable) -> bool:
    """Check ``fn(head_output, num_anchors) -> per-anchor outputs``.

    - ``head_output``: (B, A*K, H, W), a head's output for one level, channel
      ``a * K + k`` holding value k of anchor a.
    - ``num_anchors``: A, anchors per location.
    - returns: (B, H*W*A, K), rows ordered location-major (y, then x) then anchor, as
      torchvision's RetinaNet heads: ``view(B, A, K, H, W).permute(0, 3, 4, 1, 2)
      .reshape(B, -1, K)``.
    """
    return _run_checks(
        "head_reshape",
        fn,
        _head_reshape_cases(),
        _head_reshape_reference,
        ("head_output", "num_anchors"),
    )


# --------------------------------------------------------------------------- AP


def _ap_reference(recall, precision) -> float:
    """COCO's 101-point AP from one precision-recall curve (as pycocotools accumulates)."""
    recall = np.asarray(recall.tolist(), dtype=np.float64)
    precision = np.asarray(precision.tolist(), dtype=np.float64)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # monotone from the right
    inds = np.searchsorted(recall, COCO_RECALL_THRESHOLDS, side="left")
    sampled = np.zeros(len(COCO_RECALL_THRESHOLDS))
    valid = inds < len(recall)
    sampled[valid] = envelope[inds[valid]]
    return float(sampled.mean())


def _compare_numbers(expected: float, got: Any, case: _Case) -> str | None:
    number_hint = "Return the AP as one number: the mean of the 101 sampled precisions."
    if isinstance(got, torch.Tensor | np.ndarray) and math.prod(got.shape) != 1:
        return _Problem(
            f"expected a single number, got an array of shape {tuple(got.shape)}", number_hint
        )
    try:
        value = float(got)
    except (TypeError, ValueError, RuntimeError):
        return _Problem(f"expected a single number, got {type(got).__name__}", number_hint)
    if not math.isfinite(value):
        return "the AP is NaN or inf"
    if abs(value - expected) > 1e-6:
        return f"expected {expected:.6g}, got {value:.6g}"
    return None


def _ap_cases() -> list[_Case]:
    g = _generator(6)
    # A ranked list of 24 detections against 16 ground-truth boxes: recall k / 16.
    is_tp = torch.rand(24, generator=g) < 0.6
    tp = torch.cumsum(is_tp.double(), 0)
    realistic = (tp / 16, tp / torch.arange(1, 25, dtype=torch.float64))

    def pr(recall, precision):
        return (_t(recall, torch.float64), _t(precision, torch.float64))

    return [
        _Case(
            "perfect detector",
            pr([0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 1.0, 1.0]),
            "Precision 1 up to recall 1 gives AP 1: each of the 101 thresholds, 1.0 "
            "included, finds a recall >= it (searchsorted with side='left') and takes "
            "its precision; the AP is their mean, not an area.",
        ),
        _Case(
            "recall stops at 0.5",
            pr([0.25, 0.5], [1.0, 1.0]),
            "Sample precision at the 101 thresholds linspace(0, 1, 101) and average all "
            "101 values; thresholds beyond the largest recall count as 0 (AP = 51 / 101 "
            "here). Not 11 points, not the area under the curve.",
        ),
        _Case(
            "precision rises again (needs the envelope)",
            pr([0.125, 0.25, 0.375, 0.5, 0.625, 0.75], [1.0, 0.5, 0.67, 0.5, 0.6, 0.4]),
            "First make precision monotone non-increasing from the right: precision[i] = "
            "max(precision[i:]), e.g. torch.cummax on the flipped tensor.",
        ),
        _Case(
            "recall exactly on a threshold",
            pr([0.25, 0.5, 0.75], [1.0, 0.5, 0.25]),
            "For each threshold t take the precision at the first recall >= t: "
            "torch.searchsorted(recall, thresholds, side='left').",
        ),
        _Case(
            "single point", pr([1.0], [0.5]), "One point (recall 1, precision 0.5) gives AP 0.5."
        ),
        _Case(
            "no detections",
            pr([], []),
            "With no detections every threshold is beyond the largest recall: AP = 0.",
        ),
        _Case(
            "24 detections, 16 ground-truth boxes",
            realistic,
            "Envelope from the right, then 101 thresholds with side='left', 0 beyond the "
            "largest recall, mean of the 101 values.",
        ),
    ]


def check_ap_from_pr(fn: Callable) -> bool:
    """Check ``fn(recall, precision) -> ap``.

    - ``recall``: (R,) float64 tensor, sorted increasing (one value per ranked detection).
    - ``precision``: (R,) float64 tensor.
    - returns: a number (float or 0-d tensor), COCO's 101-point interpolated AP:
      precision made monotone non-increasing from the right, sampled at the recall
      thresholds ``linspace(0, 1, 101)`` with ``searchsorted(..., side="left")``
      (0 where a threshold is beyond the largest recall), averaged over all 101.

    Reference: ``COCOeval.accumulate`` in pycocotools.
    """
    return _run_checks(
        "ap_from_pr",
        fn,
        _ap_cases(),
        _ap_reference,
        ("recall", "precision"),
        compare=_compare_numbers,
    )


# --------------------------------------------------------------------------- anchor count (lesson 00)


def _num_anchors_reference(image_size, num_anchors_per_location=9):
    height, width = image_size
    return sum(math.ceil(height / 2**level) * math.ceil(width / 2**level)
               for level in range(3, 8)) * num_anchors_per_location


def _compare_counts(expected: int, got: Any, case: _Case) -> str | None:
    try:
        value = int(got)
    except (TypeError, ValueError, RuntimeError):
        return _Problem(f"expected a whole number, got {type(got).__name__}", "Return an int.")
    if value != got:
        return _Problem(f"expected a whole number, got {got!r}", "Round up each level's grid with math.ceil.")
    return None if value == expected else f"expected {expected}, got {value}"


def check_num_anchors(fn: Callable) -> bool:
    """Check ``fn(image_size, num_anchors_per_location=9) -> int``.

    The number of anchors RetinaNet places on P3..P7 of an image of ``image_size`` (H, W): each
    level l has a ceil(H / 2^l) x ceil(W / 2^l) grid with ``num_anchors_per_location`` anchors per
    location. Reference: the grid sizes of `retina_lessons.anchors.feature_sizes`.
    """
    cases = [
        _Case("800 x 800, the paper's image", ((800, 800),), "Sum over the five levels P3..P7."),
        _Case("a landscape 640 x 480 image", ((480, 640),), "H and W may differ: multiply each level's H and W."),
        _Case("an odd size 97 x 131", ((97, 131),),
              "Each stride-2 layer rounds up: use math.ceil(H / 2**l), not integer division."),
        _Case("a tiny 32 x 32 image", ((32, 32),), "P6 and P7 still have one location each (ceil of 0.5 and 0.25)."),
        _Case("one anchor per location", ((256, 256),), "Multiply by num_anchors_per_location, not by 9.",
              kwargs={"num_anchors_per_location": 1}),
    ]
    return _run_checks("num_anchors", fn, cases, _num_anchors_reference, ("image_size",), compare=_compare_counts)


# --------------------------------------------------------------------------- frozen BatchNorm (lesson 01)


def _frozen_bn_reference(x, weight, bias, running_mean, running_var, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)


def check_frozen_batchnorm(fn: Callable) -> bool:
    """Check ``fn(x, weight, bias, running_mean, running_var, eps=1e-5) -> y``.

    - ``x``: (B, C, H, W); the four others: (C,) tensors.
    - returns: (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel, with the
      stored statistics (never the batch's). Reference: ``F.batch_norm(..., training=False)``.
    """
    g = _generator(11)

    def case(name, shape, hint, **kwargs):
        C = shape[1]
        args = (torch.randn(shape, generator=g) * 3 + 1, torch.rand(C, generator=g) + 0.5,
                torch.randn(C, generator=g), torch.randn(C, generator=g), torch.rand(C, generator=g) * 2 + 0.1)
        return _Case(name, args, hint, kwargs=kwargs)

    cases = [
        case("a batch of 2, 3 channels", (2, 3, 4, 5), "Use running_mean and running_var, not x.mean() / x.var()."),
        case("channels differ from width", (1, 4, 3, 6),
             "Reshape the (C,) tensors to (1, C, 1, 1) so they broadcast over channels, not over W."),
        case("a tiny variance", (2, 2, 3, 3), "eps goes inside the square root: sqrt(running_var + eps).",
             eps=0.5),
        case("one image", (1, 5, 2, 2), "Scale by weight, then add bias, after normalising."),
    ]
    return _run_checks("frozen_batchnorm", fn, cases, _frozen_bn_reference,
                       ("x", "weight", "bias", "running_mean", "running_var"))


# --------------------------------------------------------------------------- flip (lesson 07)


def _hflip_reference(image, boxes):
    width = image.shape[-1]
    x1, y1, x2, y2 = boxes.unbind(-1)
    return image.flip(-1), torch.stack([width - x2, y1, width - x1, y2], dim=-1)


def _compare_pairs(expected, got, case) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return _Problem(f"expected a pair (image, boxes), got {type(got).__name__}",
                        "Return both: `return flipped_image, flipped_boxes`.")
    for name, e, g_ in zip(("image", "boxes"), expected, got):
        problem = _compare_tensors(e, g_, check_dtype=False)
        if problem is not None:
            return _Problem(f"{name}: {problem}", getattr(problem, "hint", None) or case.hint)
    return None


def check_hflip(fn: Callable) -> bool:
    """Check ``fn(image, boxes) -> (flipped_image, flipped_boxes)``.

    - ``image``: (3, H, W); ``boxes``: (M, 4) xyxy in pixels.
    - returns: the image mirrored left to right and its boxes, still xyxy: x1' = W - x2,
      x2' = W - x1 (y unchanged). Reference: ``retina_lessons.datasets.hflip``.
    """
    g = _generator(12)
    image = torch.rand(3, 6, 10, generator=g)
    cases = [
        _Case("one box", (image, _t([[1.0, 2, 4, 5]])), "x1' = W - x2 and x2' = W - x1, so x1' < x2' still."),
        _Case("a box touching the right edge", (image, _t([[6.0, 0, 10, 6]])),
              "Boxes are in pixel edges, not pixel centres: use W, not W - 1."),
        _Case("a wide image", (torch.rand(3, 4, 17, generator=g), _t([[0.0, 1, 3, 2], [5, 0, 17, 4]])),
              "Flip along the last dimension (width): image.flip(-1), not the height."),
        _Case("no boxes", (image, torch.zeros(0, 4)), "An image without boxes is fine: return an empty (0, 4) tensor."),
    ]
    return _run_checks("hflip", fn, cases, _hflip_reference, ("image", "boxes"), compare=_compare_pairs)


# --------------------------------------------------------------------------- modulating factor (lesson 10)


def _modulating_reference(logits, targets, gamma):
    log_one_minus_p_t = targets * F.logsigmoid(-logits) + (1 - targets) * F.logsigmoid(logits)
    return torch.exp(gamma * log_one_minus_p_t)


def check_modulating_factor(fn: Callable) -> bool:
    """Check ``fn(logits, targets, gamma) -> (1 - p_t) ** gamma`` per element.

    p = sigmoid(logits); p_t = p where the target is 1 and 1 - p where it is 0. The factor is 1 for
    gamma = 0 and shrinks the loss of well-classified anchors (p_t near 1) as gamma grows.
    """
    g = _generator(13)
    logits = torch.randn(2, 5, generator=g) * 3
    targets = (torch.rand(2, 5, generator=g) > 0.5).float()
    cases = [
        _Case("gamma = 2", (logits, targets, 2.0), "p_t is p for positives and 1 - p for negatives."),
        _Case("only negatives", (logits, torch.zeros_like(logits), 2.0),
              "For a negative (t = 0), 1 - p_t = p: a confident negative has p near 0 and a tiny factor."),
        _Case("gamma = 0", (logits, targets, 0.0), "With gamma = 0 the factor is exactly 1 (cross-entropy)."),
        _Case("gamma = 5", (logits, targets, 5.0), "Raise (1 - p_t) to the power gamma, not gamma to a power."),
        _Case("saturated logits", (_t([[-40.0, 40.0, 40.0]]), _t([[0.0, 1.0, 0.0]]), 0.5),
              "Stay finite at large logits: compute log(1 - p_t) with F.logsigmoid, then exp(gamma * ...)."),
    ]
    return _run_checks("modulating_factor", fn, cases, _modulating_reference, ("logits", "targets", "gamma"))


ALL_CHECKS: dict[str, Callable[[Callable], bool]] = {
    "box_iou": check_box_iou,
    "focal_loss": check_focal_loss,
    "nms": check_nms,
    "level_anchors": check_level_anchors,
    "encode_boxes": check_encode_boxes,
    "decode_boxes": check_decode_boxes,
    "fpn_top_down": check_fpn_top_down,
    "head_reshape": check_head_reshape,
    "ap_from_pr": check_ap_from_pr,
    "num_anchors": check_num_anchors,
    "frozen_batchnorm": check_frozen_batchnorm,
    "hflip": check_hflip,
    "modulating_factor": check_modulating_factor,
}
