"""Tests for retina_lessons.ablation: the paper's tables, the settings, the shortened schedule, the warm
start, fair runs (same start, same batches), the table and the chart."""

import math

import matplotlib
import pytest
import torch

from retina_lessons.ablation import (
    BEST_ALPHA,
    CLASSIFIER_PREFIX,
    PAPER_TABLE_1A,
    PAPER_TABLE_1B,
    Setting,
    anchor_logits,
    draw_table_1,
    markdown_table,
    new_model,
    run_ablation,
    shortened,
    table_1a_settings,
    table_1b_settings,
    table_rows,
    train_setting,
    unique_settings,
)
from retina_lessons.backbone import FrozenBatchNorm2d
from retina_lessons.config import get_config
from retina_lessons.model import RetinaNet
from retina_lessons.synthetic import ShapesDataset
from retina_lessons.training import CLASSROOM_TRAINING, TrainConfig, lr_factor

matplotlib.use("Agg")

# A detector small enough that a step takes milliseconds (as in test_training.py).
TINY = get_config("classroom", backbone_width=0.125, fpn_channels=32, head_convs=1, min_size=64, max_size=64)
TINY_TRAINING = TrainConfig(steps=3, batch_size=4, optimizer="adamw", lr=1e-3, warmup_steps=1, milestones=(2,), seed=3)


# Steps this small gain nothing from a second thread (and lose a lot on a busy machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    dataset = ShapesDataset(8, image_size=64, seed=5)
    return [dataset[i] for i in range(len(dataset))]


@pytest.fixture(scope="module")
def heldout():
    dataset = ShapesDataset(4, image_size=64, seed=5, split="val")
    return [dataset[i] for i in range(len(dataset))]


def trained_source(seed: int = 7) -> dict:
    """A detector's state dict that differs from any fresh one (and has BatchNorm statistics)."""
    torch.manual_seed(seed)
    model = RetinaNet(TINY)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
    return {name: value.clone() for name, value in model.state_dict().items()}


# ----------------------------------------------------------------------------- the paper's numbers


def test_paper_tables_agree_where_they_share_a_row():
    # Table 1b's first row (gamma = 0, best alpha .75) is Table 1a's best row.
    assert PAPER_TABLE_1B[0.0]["alpha"] == 0.75
    assert {k: PAPER_TABLE_1B[0.0][k] for k in ("AP", "AP50", "AP75")} == PAPER_TABLE_1A[0.75]
    assert max(PAPER_TABLE_1A, key=lambda a: PAPER_TABLE_1A[a]["AP"]) == 0.75
    assert max(PAPER_TABLE_1B, key=lambda g: PAPER_TABLE_1B[g]["AP"]) == 2.0  # the paper's choice
    assert PAPER_TABLE_1B[2.0]["AP"] == 34.0 and PAPER_TABLE_1A[0.25]["AP"] == 10.8
    for row in [*PAPER_TABLE_1A.values(), *PAPER_TABLE_1B.values()]:
        assert row["AP50"] >= row["AP75"] >= row["AP"] or row["AP"] == 0.0


def test_best_alpha_falls_as_gamma_grows():
    gammas = sorted(BEST_ALPHA)
    alphas = [BEST_ALPHA[g] for g in gammas]
    assert alphas == sorted(alphas, reverse=True)
    assert BEST_ALPHA == {0.0: 0.75, 0.1: 0.75, 0.2: 0.75, 0.5: 0.5, 1.0: 0.25, 2.0: 0.25, 5.0: 0.25}


# ----------------------------------------------------------------------------- settings


def test_settings_of_both_tables_and_their_union():
    table_a, table_b = table_1a_settings(), table_1b_settings()
    assert table_a == [Setting(0.0, 0.25), Setting(0.0, 0.5), Setting(0.0, 0.75)]
    assert table_b == [Setting(0.0, 0.75), Setting(1.0, 0.25), Setting(2.0, 0.25), Setting(5.0, 0.25)]
    union = unique_settings(table_a, table_b)
    assert len(union) == 6 and union[:3] == table_a and union[3:] == table_b[1:]
    assert str(Setting(2.0, 0.25)) == "γ=2, α=0.25"


def test_table_1b_rejects_a_gamma_the_paper_did_not_run():
    with pytest.raises(ValueError, match="gamma=3"):
        table_1b_settings([3.0])


# ----------------------------------------------------------------------------- the shortened schedule


def test_shortened_keeps_the_shape_of_the_schedule():
    full = CLASSROOM_TRAINING
    short = shortened(full, full.steps // 4)
    assert short.steps == full.steps // 4
    for field in ("lr", "optimizer", "batch_size", "weight_decay", "warmup_factor", "clip_grad_norm", "seed"):
        assert getattr(short, field) == getattr(full, field)
    scale = short.steps / full.steps
    assert abs(short.warmup_steps - full.warmup_steps * scale) <= 0.5
    assert len(short.milestones) == len(full.milestones)
    for mine, theirs in zip(short.milestones, full.milestones):
        assert abs(mine - theirs * scale) <= 0.5
    # the learning rate at the same fraction of the run is the same (away from rounding at the edges)
    for fraction in (0.5, 0.99):
        full_lr = lr_factor(int(fraction * full.steps), full.warmup_steps, full.warmup_factor, full.milestones)
        short_lr = lr_factor(int(fraction * short.steps), short.warmup_steps, short.warmup_factor, short.milestones)
        assert math.isclose(full_lr, short_lr)
    assert shortened(full, full.steps) == full


@pytest.mark.parametrize("steps", [0, -5, 2.5])
def test_shortened_rejects_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        shortened(CLASSROOM_TRAINING, steps)


# ----------------------------------------------------------------------------- models


def test_fresh_models_start_alike_whatever_the_loss():
    a = new_model(Setting(0.0, 0.75), seed=1, config=TINY)
    b = new_model(Setting(5.0, 0.25), seed=1, config=TINY)
    assert a.config.focal_gamma == 0.0 and a.config.focal_alpha == 0.75
    assert b.config.focal_gamma == 5.0 and b.config.focal_alpha == 0.25
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    c = new_model(Setting(0.0, 0.75), seed=2, config=TINY)
    assert not torch.equal(a.cls_head.predictor.weight, c.cls_head.predictor.weight)


def test_default_model_is_the_classroom_preset():
    model = new_model(Setting(1.0, 0.25))
    assert model.config == get_config("classroom", focal_gamma=1.0, focal_alpha=0.25)


def test_warm_start_copies_and_freezes_all_but_the_classification_subnet():
    source = trained_source()
    fresh = new_model(Setting(2.0, 0.25), seed=0, config=TINY)
    warm = new_model(Setting(2.0, 0.25), seed=0, config=TINY, start_from=source)
    assert warm.config.backbone_norm == "frozen_bn"
    assert any(isinstance(m, FrozenBatchNorm2d) for m in warm.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in warm.modules())
    warm_state, fresh_state = warm.state_dict(), fresh.state_dict()
    for name, value in warm_state.items():
        expected = fresh_state[name] if name.startswith(CLASSIFIER_PREFIX) else source[name]
        assert torch.equal(value, expected), name
    trainable = {name for name, p in warm.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(CLASSIFIER_PREFIX) for name in trainable)
    assert trainable == {name for name, _ in warm.cls_head.named_parameters(prefix="cls_head")}
    # the prior: every classification output starts at pi
    prior = torch.sigmoid(warm.cls_head.predictor.bias)
    torch.testing.assert_close(prior, torch.full_like(prior, TINY.prior_prob))


def test_warm_start_rejects_another_architecture():
    other = get_config("classroom", backbone_width=0.25, fpn_channels=32, head_convs=1, min_size=64, max_size=64)
    source = RetinaNet(other).state_dict()
    with pytest.raises((ValueError, RuntimeError)):
        new_model(Setting(2.0, 0.25), config=TINY, start_from=source)
    with pytest.raises(ValueError, match="start_from"):
        new_model(Setting(2.0, 0.25), config=TINY, start_from={**trained_source(), "extra.weight": torch.zeros(1)})


# ----------------------------------------------------------------------------- runs


def test_runs_differ_only_by_their_loss(images, heldout):
    source = trained_source()
    runs = run_ablation([Setting(0.0, 0.75), Setting(2.0, 0.25)], images, heldout, TINY_TRAINING,
                        seed=0, config=TINY, start_from=source)
    a, b = runs[Setting(0.0, 0.75)], runs[Setting(2.0, 0.25)]
    assert len(a.history) == len(b.history) == TINY_TRAINING.steps
    assert a.history.lr == b.history.lr
    # the same batches and the same frozen features: the box loss (not trained) is identical step by step
    assert a.history.bbox_regression == b.history.bbox_regression
    assert a.history.classification != b.history.classification
    for name, value in a.model.state_dict().items():
        if not name.startswith(CLASSIFIER_PREFIX):  # frozen: still the source's weights in both runs
            assert torch.equal(value, source[name]) and torch.equal(b.model.state_dict()[name], source[name]), name
    assert not torch.equal(a.model.cls_head.predictor.weight, b.model.cls_head.predictor.weight)
    for run in (a, b):
        assert set(run.metrics) >= {"AP", "AP50", "AP75"}
        assert run.cpu_seconds > 0 and run.wall_seconds > 0 and run.steps_per_second > 0
        assert not run.model.training  # left in eval mode


def test_a_run_repeats_exactly(images, heldout):
    first = train_setting(Setting(1.0, 0.25), images, heldout, TINY_TRAINING, seed=4, config=TINY)
    second = train_setting(Setting(1.0, 0.25), images, heldout, TINY_TRAINING, seed=4, config=TINY)
    assert first.history.loss == second.history.loss
    assert first.metrics == second.metrics


def test_duplicate_settings_train_once(images, heldout):
    reported = []
    settings = unique_settings(table_1a_settings([0.75]), table_1b_settings([0.0]))
    assert settings == [Setting(0.0, 0.75)]
    runs = run_ablation([Setting(0.0, 0.75), Setting(0.0, 0.75)], images, heldout,
                        TrainConfig(steps=1, batch_size=2, seed=0), config=TINY, report=reported.append)
    assert list(runs) == [Setting(0.0, 0.75)] and len(reported) == 1


# ----------------------------------------------------------------------------- table and chart


class _FakeRun:
    def __init__(self, ap, ap50):
        self.metrics = {"AP": ap, "AP50": ap50, "AP75": ap}


def fake_runs():
    settings = unique_settings(table_1a_settings(), table_1b_settings())
    return {s: _FakeRun(0.1 * (i + 1), 0.1 * (i + 2)) for i, s in enumerate(settings)}


def test_table_rows_pair_ours_with_the_paper():
    runs = fake_runs()
    rows = table_rows(runs)
    assert [row["table"] for row in rows] == ["1a"] * 3 + ["1b"] * 4
    shared = [row for row in rows if row["gamma"] == 0.0 and row["alpha"] == 0.75]
    assert len(shared) == 2 and shared[0]["AP"] == shared[1]["AP"]  # one run serves both tables
    first = rows[0]
    assert math.isclose(first["AP"], 100 * runs[Setting(0.0, 0.25)].metrics["AP"])
    assert first["paper AP"] == PAPER_TABLE_1A[0.25]["AP"] and first["paper AP50"] == PAPER_TABLE_1A[0.25]["AP50"]
    gamma_5 = rows[-1]
    assert gamma_5["gamma"] == 5.0 and gamma_5["paper AP"] == PAPER_TABLE_1B[5.0]["AP"]
    # rows that were not run are left out
    assert len(table_rows({Setting(2.0, 0.25): runs[Setting(2.0, 0.25)]})) == 1


def test_markdown_table():
    rows = table_rows(fake_runs())
    text = markdown_table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[0].startswith("| Table | γ | α |")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "| 1b | 2 | 0.25 |" in text and "34.0" in text


def test_draw_table_1():
    import matplotlib.pyplot as plt

    rows = table_rows(fake_runs())
    left, right = draw_table_1(rows)
    assert len(left.patches) == 4 * 3 and len(right.patches) == 4 * 4  # four bars per row
    heights = sorted(round(p.get_height(), 6) for p in left.patches)
    expected = sorted(round(row[key], 6) for row in rows if row["table"] == "1a"
                      for key in ("AP", "AP50", "paper AP", "paper AP50"))
    assert heights == expected
    assert [t.get_text() for t in left.get_xticklabels()] == ["α = 0.25", "α = 0.5", "α = 0.75"]
    assert right.get_xticklabels()[2].get_text() == "γ = 2\nα = 0.25"
    assert left.get_ylabel() == "COCO AP (%)" and left.get_legend() is not None
    plt.close("all")


# ----------------------------------------------------------------------------- the loss's terms


def test_anchor_logits_are_the_terms_of_the_classification_loss(images):
    from retina_lessons.focal_loss import sigmoid_focal_loss
    from retina_lessons.matching import IGNORE, match_anchors, pad_ground_truth

    model = new_model(Setting(2.0, 0.25), seed=0, config=TINY).eval()
    image, target = next((image, target) for image, target in images if len(target["boxes"]) > 0)
    item = [(image, target)]
    outputs = anchor_logits(model, item)
    assert outputs["num_images"] == 1 and outputs["positives"].dim() == outputs["negatives"].dim() == 1
    # counts: one positive per foreground anchor, K - 1 negatives there, K per background anchor
    batch, _, targets = model.preprocess([image], [target])
    anchors_xyxy = model.anchors(batch.shape[-2:])
    gt_boxes, _, gt_valid = pad_ground_truth([targets[0]["boxes"]], [targets[0]["labels"]])
    matched = match_anchors(anchors_xyxy, gt_boxes, gt_valid, TINY.fg_iou, TINY.bg_iou)
    num_fg, num_bg = int((matched >= 0).sum()), int((matched == -1).sum())
    K = TINY.num_classes
    assert num_fg > 0 and int((matched == IGNORE).sum()) + num_fg + num_bg == len(anchors_xyxy)
    assert outputs["positives"].numel() == num_fg
    assert outputs["negatives"].numel() == num_fg * (K - 1) + num_bg * K
    # summed focal loss over these terms, per foreground anchor = the model's classification loss
    logits = torch.cat([outputs["positives"], outputs["negatives"]])
    targets01 = torch.cat([torch.ones_like(outputs["positives"]), torch.zeros_like(outputs["negatives"])])
    by_terms = sigmoid_focal_loss(logits, targets01, alpha=0.25, gamma=2.0).sum() / num_fg
    with torch.no_grad():
        torch.testing.assert_close(by_terms, model.loss([image], [target])["classification"])


def test_anchor_logits_batches_do_not_matter(images):
    model = new_model(Setting(0.0, 0.75), seed=0, config=TINY)
    whole = anchor_logits(model, images, batch_size=len(images))
    in_pieces = anchor_logits(model, images, batch_size=3)
    assert whole["num_images"] == in_pieces["num_images"] == len(images)
    for key in ("positives", "negatives"):
        torch.testing.assert_close(whole[key], in_pieces[key], atol=1e-5, rtol=1e-5)
