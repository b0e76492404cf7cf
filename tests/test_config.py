"""Presets and their validation."""

import pytest

from retina_lessons.config import PRESETS, RetinaNetConfig, get_config


def test_presets_differ_where_the_paper_and_torchvision_differ():
    paper, v1, v2 = get_config("paper"), get_config("torchvision_v1"), get_config("torchvision_v2")
    assert (paper.p6_from, v1.p6_from, v2.p6_from) == ("c5", "p5", "c5")
    assert (paper.box_loss, v1.box_loss, v2.box_loss) == ("smooth_l1", "l1", "giou")
    assert (paper.head_norm, v1.head_norm, v2.head_norm) == (None, None, "group")
    assert (paper.detections_per_img, v1.detections_per_img) == (100, 300)
    assert paper.loss_normalization == "per_batch" and v1.loss_normalization == "per_image"
    assert all(c.num_anchors == 9 for name, c in PRESETS.items() if name != "classroom")
    assert get_config("classroom").num_anchors == 3  # three scales, one (square) ratio


def test_get_config_applies_changes_and_the_config_is_frozen():
    config = get_config("classroom", num_classes=7)
    assert config.num_classes == 7
    with pytest.raises(AttributeError):
        config.num_classes = 3


@pytest.mark.parametrize("changes", [{"backbone": "vgg"}, {"p6_from": "p4"}, {"box_loss": "l2"},
                                     {"num_classes": 0}, {"focal_gamma": -1.0}, {"focal_alpha": 1.5},
                                     {"prior_prob": 1.5}, {"fg_iou": 0.3},
                                     {"trainable_layers": 9}])
def test_invalid_values_raise(changes):
    with pytest.raises(ValueError, match=next(iter(changes))):
        RetinaNetConfig(**changes)


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="name"):
        get_config("yolo")
