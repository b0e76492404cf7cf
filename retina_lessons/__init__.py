"""RetinaNet Lessons: RetinaNet (Lin et al. 2017, "Focal Loss for Dense Object Detection"), built step by step.

Each module holds one concept and names the notebook that teaches it; `model.py` only wires them.

Shape glossary (used in every docstring and ``# (B, N, K)`` comment):

    B       images in a batch
    N       anchors over all pyramid levels of one image (levels concatenated: P3 first)
    A       anchors per location (scales x ratios, 9 by default)
    K       classes (one sigmoid per class, no background class)
    M       ground-truth boxes of an image (0 is allowed)
    H x W   a grid: an image, or a feature map
    C3..C5  backbone taps, strides 8, 16, 32;  P3..P7  pyramid levels, strides 8..128

Conventions: boxes are xyxy pixel coordinates (x1 < x2, y1 < y2); images are float (3, H, W) in
[0, 1]; targets are dicts with ``boxes`` (M, 4) and ``labels`` (M,) in [0, K). Bad input raises a
``ValueError`` that names the argument and what was expected.
"""

from .anchors import AnchorGenerator
from .boxes import box_iou
from .config import CLASSROOM, PAPER, TORCHVISION_V1, TORCHVISION_V2, RetinaNetConfig, get_config
from .focal_loss import sigmoid_focal_loss
from .matching import BACKGROUND, IGNORE, match_anchors
from .model import RetinaNet

__all__ = [
    "BACKGROUND",
    "CLASSROOM",
    "IGNORE",
    "PAPER",
    "TORCHVISION_V1",
    "TORCHVISION_V2",
    "AnchorGenerator",
    "RetinaNet",
    "RetinaNetConfig",
    "box_iou",
    "get_config",
    "match_anchors",
    "sigmoid_focal_loss",
]
