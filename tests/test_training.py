"""Tests for retina_lessons.training: schedule, batches, determinism, checkpoints, resume, NaN stop,
and the shipped classroom detector."""

import math

import pytest
import torch

from retina_lessons import training
from retina_lessons.config import get_config
from retina_lessons.datasets import hflip
from retina_lessons.model import RetinaNet
from retina_lessons.shipped import CLASSROOM_DETECTOR, heldout_shapes, load_classroom_detector
from retina_lessons.synthetic import ShapesDataset
from retina_lessons.training import (
    CLASSROOM_TRAINING,
    BatchSampler,
    History,
    NonFiniteLossError,
    TrainConfig,
    fit,
    load_batch,
    load_checkpoint,
    lr_factor,
)

# A detector small enough that a step takes milliseconds: 64-px images, a 1/8-wide ResNet-18.
TINY = get_config("classroom", backbone_width=0.125, fpn_channels=32, head_convs=1, min_size=64, max_size=64)
TINY_TRAINING = TrainConfig(steps=6, batch_size=4, optimizer="sgd", lr=0.01, warmup_steps=2, milestones=(3, 5),
                            clip_grad_norm=10.0, seed=3)


# Steps this small gain nothing from a second thread (and lose a lot on a busy machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    """Twelve 64-px synthetic images, drawn once, as a list (any sequence of (image, target) works)."""
    dataset = ShapesDataset(12, image_size=64, seed=5)
    return [dataset[i] for i in range(len(dataset))]


def tiny_model(seed: int = 0) -> RetinaNet:
    torch.manual_seed(seed)
    return RetinaNet(TINY)


def parameters(model):
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


# ----------------------------------------------------------------------------- schedule


def test_lr_factor_warms_up_linearly_then_drops_tenfold_at_each_milestone():
    factor = [lr_factor(s, warmup_steps=10, warmup_factor=0.1, milestones=(20, 30)) for s in range(40)]
    assert factor[0] == pytest.approx(0.1)
    assert factor[5] == pytest.approx(0.55)  # halfway from 0.1 to 1
    assert factor[10:20] == pytest.approx([1.0] * 10)
    assert factor[20:30] == pytest.approx([0.1] * 10)
    assert factor[30:] == pytest.approx([0.01] * 10)


def test_scheduler_follows_lr_factor_and_history_records_the_lr_of_each_step(images):
    history = fit(tiny_model(), images, TINY_TRAINING, progress=False)
    expected = [TINY_TRAINING.lr * lr_factor(s, 2, TINY_TRAINING.warmup_factor, (3, 5)) for s in range(6)]
    assert history.lr == pytest.approx(expected)
    assert history.step == list(range(6))


def test_paper_training_is_the_papers_recipe():
    paper = training.PAPER_TRAINING
    assert (paper.steps, paper.batch_size, paper.lr, paper.momentum, paper.weight_decay) == (90_000, 16, 0.01, 0.9, 1e-4)
    assert paper.optimizer == "sgd" and paper.milestones == (60_000, 80_000) and paper.hflip_prob == 0.5


@pytest.mark.parametrize("changes", [{"optimizer": "adam"}, {"steps": 0}, {"lr": -1.0}, {"milestones": (5, 3)},
                                     {"hflip_prob": 1.5}, {"clip_grad_norm": 0.0}, {"warmup_factor": 0.0}])
def test_train_config_rejects_bad_values(changes):
    with pytest.raises(ValueError, match=next(iter(changes))):
        TrainConfig(**{"steps": 10, **changes})


def test_fit_rejects_until_beyond_the_schedule(images):
    with pytest.raises(ValueError, match="until=7"):
        fit(tiny_model(), images, TINY_TRAINING, until=7, progress=False)


# ----------------------------------------------------------------------------- batches


def test_batch_sampler_is_a_pure_function_of_seed_and_step_and_visits_every_image_once_per_epoch():
    sampler = BatchSampler(num_images=10, batch_size=4, hflip_prob=0.5, seed=1)
    batches = [sampler(step) for step in range(5)]  # 20 positions: two epochs
    fresh = BatchSampler(10, 4, 0.5, seed=1)
    assert [fresh(step) for step in reversed(range(5))] == batches[::-1]  # any order, same batches
    positions = [i for indices, _ in batches for i in indices]
    assert sorted(positions[:10]) == list(range(10)) and sorted(positions[10:]) == list(range(10))
    assert positions[:10] != positions[10:]  # a new order every epoch
    assert BatchSampler(10, 4, 0.5, seed=2)(0) != batches[0]


def test_batch_sampler_flips_about_hflip_prob_of_the_images():
    flips = [f for step in range(200) for f in BatchSampler(50, 5, hflip_prob=0.5, seed=0)(step)[1]]
    assert 0.45 < sum(flips) / len(flips) < 0.55
    assert not any(f for step in range(20) for f in BatchSampler(50, 5, hflip_prob=0.0)(step)[1])


def test_load_batch_mirrors_the_flipped_images_and_their_boxes(images):
    batch_images, targets = load_batch(images, [0, 1], [True, False])
    flipped_image, flipped_target = hflip(*images[0])
    torch.testing.assert_close(batch_images[0], flipped_image)
    torch.testing.assert_close(targets[0]["boxes"], flipped_target["boxes"])
    torch.testing.assert_close(batch_images[1], images[1][0])
    torch.testing.assert_close(targets[1]["boxes"], images[1][1]["boxes"])


# ----------------------------------------------------------------------------- the loop


def test_fit_is_deterministic_and_learns(images):
    config = TrainConfig(steps=12, batch_size=4, optimizer="adamw", lr=3e-3, warmup_steps=2, milestones=(10,), seed=3)
    first_model, second_model = tiny_model(), tiny_model()
    first = fit(first_model, images, config, progress=False)
    second = fit(second_model, images, config, progress=False)
    assert first.loss == second.loss  # bit for bit
    assert_same_weights(parameters(first_model), parameters(second_model))
    assert sum(first.loss[-3:]) < sum(first.loss[:3])
    assert first.cpu_seconds > 0 and first.wall_seconds > 0
    assert not first_model.training  # fit leaves the model ready for evaluation


def test_gradient_clipping_bounds_the_update_and_history_keeps_the_norm_before_clipping(images):
    config = TrainConfig(steps=1, batch_size=4, lr=1.0, momentum=0.0, weight_decay=0.0, warmup_steps=0,
                         milestones=(), clip_grad_norm=1e-3)
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    history = fit(model, images, config, progress=False)
    after = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    update = torch.sqrt(sum(((after[n] - before[n]) ** 2).sum() for n in before))
    assert history.grad_norm[0] > 1e-3  # the norm before clipping ...
    assert update.item() == pytest.approx(1e-3, rel=1e-3)  # ... and the step SGD took after it


def test_checkpoint_is_written_atomically_and_loads_with_weights_only(images, tmp_path):
    path = tmp_path / "run" / "last.pt"
    model = tiny_model()
    history = fit(model, images, TINY_TRAINING, checkpoint=path, checkpoint_every=2, progress=False)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind
    state = torch.load(path, weights_only=True)
    assert {"model", "optimizer", "scheduler", "step", "rng", "history", "train_config"} <= set(state)
    assert state["step"] == TINY_TRAINING.steps
    assert state["history"]["loss"] == history.loss
    assert_same_weights(state["model"], parameters(model))


def test_resuming_gives_the_same_weights_as_an_uninterrupted_run(images, tmp_path):
    config = TrainConfig(steps=8, batch_size=4, optimizer="adamw", lr=3e-3, warmup_steps=3, milestones=(5, 7),
                         clip_grad_norm=5.0, seed=7)
    straight = tiny_model()
    straight_history = fit(straight, images, config, progress=False)

    path = tmp_path / "checkpoint.pt"
    fit(tiny_model(), images, config, until=4, checkpoint=path, progress=False)
    resumed = tiny_model(seed=123)  # a fresh model, optimiser and schedule, as in a new process
    resumed_history = fit(resumed, images, config, checkpoint=path, resume=True, progress=False)

    assert_same_weights(parameters(resumed), parameters(straight), atol=1e-6)
    assert resumed_history.step == list(range(8))
    assert resumed_history.loss == pytest.approx(straight_history.loss, abs=1e-6)
    assert resumed_history.lr == pytest.approx(straight_history.lr)


class NaNAtStep(RetinaNet):
    """A RetinaNet whose `loss` turns one of its two losses into NaN at one step."""

    def __init__(self, config, bad_step: int, bad_loss: str) -> None:
        super().__init__(config)
        self.bad_step, self.bad_loss, self.calls = bad_step, bad_loss, 0

    def loss(self, images, targets):
        losses = super().loss(images, targets)
        if self.calls == self.bad_step:
            losses[self.bad_loss] = losses[self.bad_loss] * math.nan
        self.calls += 1
        return losses


@pytest.mark.parametrize("bad_loss", ["classification", "bbox_regression"])
def test_non_finite_loss_stops_with_the_step_and_the_loss_and_keeps_the_last_good_checkpoint(images, tmp_path,
                                                                                             bad_loss):
    good = tiny_model()
    fit(good, images, TINY_TRAINING, until=3, progress=False)

    torch.manual_seed(0)
    model = NaNAtStep(TINY, bad_step=3, bad_loss=bad_loss)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(NonFiniteLossError, match=rf"step 3: the {bad_loss} .*loss is nan.*after 3 steps"):
        fit(model, images, TINY_TRAINING, checkpoint=path, checkpoint_every=2, progress=False)
    resumed = tiny_model(seed=9)
    step, history = load_checkpoint(path, resumed)
    assert step == 3 and len(history) == 3
    assert_same_weights(parameters(resumed), parameters(good))


# ----------------------------------------------------------------------------- plots


def test_smooth_is_a_running_mean_over_a_window():
    assert training.smooth([2.0, 4.0, 6.0, 8.0], window=2).tolist() == [2.0, 3.0, 5.0, 7.0]
    assert training.smooth([], window=3).size == 0


def test_plot_history_draws_labelled_loss_and_lr_axes():
    history = History()
    for step in range(30):
        history.append(step, {"classification": 1.0 / (step + 1), "bbox_regression": 0.5}, 0.01, 1.0)
    loss_ax, lr_ax = training.plot_history(history, window=5)
    assert loss_ax.get_xlabel() == "step" and loss_ax.get_ylabel() == "training loss"
    assert lr_ax.get_ylabel() == "learning rate"
    assert len(loss_ax.lines) == 6 and loss_ax.get_yscale() == "log"


def test_live_loss_plot_redraws_every_n_steps(monkeypatch):
    draws = []
    plot = training.LiveLossPlot(every=5)
    monkeypatch.setattr(plot, "draw", lambda history: draws.append(len(history)))
    history = History()
    for step in range(12):
        history.append(step, {"classification": 1.0, "bbox_regression": 1.0}, 0.01, 1.0)
        plot(step, history)
    assert draws == [5, 10]


# ----------------------------------------------------------------------------- the shipped detector


def test_classroom_training_uses_the_paper_optimiser_settings_it_keeps():
    assert CLASSROOM_TRAINING.weight_decay == 1e-4 and CLASSROOM_TRAINING.hflip_prob == 0.5
    assert CLASSROOM_TRAINING.milestones[-1] < CLASSROOM_TRAINING.steps



def test_missing_classroom_detector_says_how_to_train_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m retina_lessons.train --preset classroom --data shapes"):
        load_classroom_detector(tmp_path / "absent.pt")


def test_shipped_classroom_detector_loads_into_the_classroom_preset_and_detects():
    model = load_classroom_detector()
    assert not model.training and model.config == get_config("classroom")
    assert CLASSROOM_DETECTOR.stat().st_size < 5 * 2**20  # small enough to ship
    image, target = heldout_shapes()[1]
    (detections,) = model.detect([image])
    assert set(detections) == {"boxes", "scores", "labels"} and len(detections["boxes"]) > 0
