"""Table-driven tests of RetinaNetConfig's checks: every field refused out of range, naming itself."""

import math

import pytest

from retina_lessons.config import CLASSROOM, PRESETS, RetinaNetConfig

NAN = math.nan

# field -> (bad value, words the message must contain besides "field=")
CASES = [
    ("num_classes", 0, "an integer >= 1"),
    ("num_classes", 2.5, "an integer >= 1"),
    ("num_classes", True, "an integer >= 1"),
    ("trainable_layers", 6, "an integer in [0, 5]"),
    ("trainable_layers", -1, "an integer in [0, 5]"),
    ("backbone_width", 0.0, "(0, 1]"),
    ("backbone_width", NAN, "(0, 1]"),
    ("fpn_channels", 0, "an integer >= 1"),
    ("head_convs", -1, "an integer >= 0"),
    ("prior_prob", 0.0, "a probability in (0, 1)"),
    ("prior_prob", NAN, "a probability in (0, 1)"),
    ("anchor_sizes", (32, 64, 128, 256), "one positive size per pyramid level P3-P7 (5)"),
    ("anchor_sizes", (32, 64, 128, 256, 512, 1024), "(5)"),
    ("anchor_sizes", (32, 64, -128, 256, 512), "positive size"),
    ("anchor_sizes", (32, 64, NAN, 256, 512), "positive size"),
    ("anchor_scales", (), "at least one positive scale"),
    ("anchor_ratios", (0.0, 1.0), "positive height / width ratio"),
    ("anchor_ratios", "1:1", "positive height / width ratio"),
    ("fg_iou", NAN, "an IoU in [0, 1]"),
    ("bg_iou", -0.1, "an IoU in [0, 1]"),
    ("allow_low_quality_matches", "yes", "True or False"),
    ("box_weights", (1.0, 1.0, 1.0), "four positive weights"),
    ("box_weights", (10.0, 10.0, 0.0, 5.0), "four positive weights"),
    ("box_delta_clamp", 0.0, "a positive log-scale limit"),
    ("box_delta_clamp", NAN, "a positive log-scale limit"),
    ("focal_alpha", NAN, "alpha in [0, 1], or -1"),
    ("focal_alpha", -0.5, "alpha in [0, 1], or -1"),
    ("focal_gamma", NAN, "a finite gamma >= 0"),
    ("focal_gamma", math.inf, "a finite gamma >= 0"),
    ("smooth_l1_beta", -0.11, "a finite beta >= 0"),
    ("min_size", 0, "an integer >= 1"),
    ("max_size", 800.5, "an integer >= 1"),
    ("size_divisible", 0, "an integer >= 1"),
    ("image_mean", (0.5, 0.5), "three finite channel means"),
    ("image_mean", (0.5, NAN, 0.5), "three finite channel means"),
    ("image_std", (0.2, 0.0, 0.2), "three positive channel standard deviations"),
    ("score_thresh", 1.0, "a score in [0, 1)"),
    ("score_thresh", NAN, "a score in [0, 1)"),
    ("topk_candidates", 0, "an integer >= 1"),
    ("nms_thresh", 1.5, "an IoU in [0, 1]"),
    ("detections_per_img", 0, "an integer >= 1"),
]


@pytest.mark.parametrize("field, value, words", CASES, ids=[f"{f}={v!r}" for f, v, _ in CASES])
def test_a_bad_field_is_named_with_what_was_expected(field, value, words):
    with pytest.raises(ValueError) as error:
        RetinaNetConfig(**{field: value})
    message = str(error.value)
    assert message.startswith(f"{field}="), message
    assert words in message, message


def test_group_norm_heads_need_a_multiple_of_32_channels():
    with pytest.raises(ValueError, match=r"fpn_channels=48: expected a multiple of 32 with head_norm='group'"):
        CLASSROOM.replace(fpn_channels=48)
    assert CLASSROOM.replace(fpn_channels=64, head_norm=None).fpn_channels == 64
    assert RetinaNetConfig(fpn_channels=48).head_norm is None  # plain heads take any width


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_passes_its_own_checks(name):
    assert PRESETS[name].replace() == PRESETS[name]


def test_legitimate_edges_pass():
    RetinaNetConfig(fg_iou=0.5, bg_iou=0.5, focal_alpha=-1, focal_gamma=0.0, smooth_l1_beta=0.0, head_convs=0,
                    score_thresh=0.0, nms_thresh=1.0, anchor_ratios=(1.0,), anchor_scales=(1.0,))


TRAIN_CASES = [
    ("steps", 0, "an integer >= 1"),
    ("steps", 10.5, "an integer >= 1"),
    ("batch_size", 0, "an integer >= 1"),
    ("lr", NAN, "a positive, finite learning rate"),
    ("lr", math.inf, "a positive, finite learning rate"),
    ("momentum", 1.0, "a momentum in [0, 1)"),
    ("weight_decay", -1e-4, "a finite weight decay >= 0"),
    ("warmup_steps", -1, "an integer >= 0"),
    ("warmup_factor", NAN, "a factor in (0, 1]"),
    ("milestones", (100.5,), "a tuple of positive step numbers"),
    ("milestones", 600, "a tuple of positive step numbers"),
    ("clip_grad_norm", NAN, "a positive, finite norm or None"),
    ("hflip_prob", NAN, "a probability in [0, 1]"),
    ("seed", -1, "an integer >= 0"),
    ("seed", 1.5, "an integer >= 0"),
]


@pytest.mark.parametrize("field, value, words", TRAIN_CASES, ids=[f"{f}={v!r}" for f, v, _ in TRAIN_CASES])
def test_a_bad_training_field_is_named(field, value, words):
    from retina_lessons.training import TrainConfig

    with pytest.raises(ValueError) as error:
        TrainConfig(**{"steps": 10, field: value})
    message = str(error.value)
    assert message.startswith(f"{field}=") and words in message, message
