"""Boundary cases of the checkpoints (save_checkpoint, load_checkpoint, fit(..., resume=True)): one row per
file or argument that is not a checkpoint of this run, with the exception and the words its message must
hold (the path or the argument, and what was expected); then the cases that must keep working."""

import argparse
import dataclasses
import io
import os
import pickle

import pytest
import torch

from retina_lessons.config import get_config
from retina_lessons.model import RetinaNet
from retina_lessons.shipped import CLASSROOM_DETECTOR
from retina_lessons.synthetic import ShapesDataset
from retina_lessons.training import (
    History,
    TrainConfig,
    fit,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    save_checkpoint,
)

# As in tests/test_training.py: a detector small enough that a step takes milliseconds.
TINY = get_config("classroom", backbone_width=0.125, fpn_channels=32, head_convs=1, min_size=64, max_size=64)
TINY_TRAINING = TrainConfig(steps=4, batch_size=2, optimizer="sgd", lr=0.01, warmup_steps=1, milestones=(3,),
                            seed=3)
SAVED_STEP = 2
STATE_DICT_ADVICE = "load it with model.load_state_dict(torch.load(path, weights_only=True))"
NOT_A_CHECKPOINT = "expected a training checkpoint written by save_checkpoint"


# Steps this small gain nothing from a second thread (and lose a lot on a busy machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    dataset = ShapesDataset(4, image_size=64, seed=5)
    return [dataset[i] for i in range(len(dataset))]


def tiny_model(config=TINY, seed=0):
    torch.manual_seed(seed)
    return RetinaNet(config)


def write_checkpoint(path, model_config=TINY, train_config=TINY_TRAINING, step=SAVED_STEP):
    """A checkpoint as fit writes it after `step` steps (untrained weights: only the format matters here)."""
    model = tiny_model(model_config)
    optimizer = make_optimizer(model, train_config)
    history = History()
    for s in range(step):
        history.append(s, {"classification": 1.0, "bbox_regression": 1.0}, 0.01, 1.0)
    return save_checkpoint(path, model, optimizer, make_scheduler(optimizer, train_config), step, history,
                           train_config)


def torch_bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def edited_checkpoint(edit):
    """A checkpoint's bytes after `edit(state)`."""
    def make(path):
        write_checkpoint(path)
        state = torch.load(path, weights_only=True)
        edit(state)
        path.write_bytes(torch_bytes(state))
    return make


def contents(data):
    return lambda path: path.write_bytes(data() if callable(data) else data)


# (how the file at `path` is made, exception, words besides the path): load_checkpoint and fit(resume=True) alike
FILE_CASES = {
    "empty file": (contents(b""), ValueError, ["is empty (0 bytes)", NOT_A_CHECKPOINT]),
    "truncated": (lambda path: path.write_bytes(write_checkpoint(path).read_bytes()[:5000]), ValueError,
                  ["cannot be read by torch.load", "truncated", NOT_A_CHECKPOINT]),
    "text": (contents(b"step: 2\n"), ValueError, ["cannot be read by torch.load", "not a PyTorch file"]),
    "a folder": (lambda path: path.mkdir(), ValueError, ["is a folder", "save_checkpoint"]),
    "a pickled list": (contents(lambda: torch_bytes([1, 2, 3])), ValueError, ["holds a list", NOT_A_CHECKPOINT]),
    "a tensor": (contents(lambda: torch_bytes(torch.zeros(3))), ValueError, ["holds a Tensor", NOT_A_CHECKPOINT]),
    "a Python pickle": (contents(lambda: pickle.dumps({"step": 2})), ValueError,
                        ["refuses", "a pickle not written by torch.save", NOT_A_CHECKPOINT]),
    "a pickled object": (contents(lambda: torch_bytes(argparse.Namespace(step=2))), ValueError,
                         ["refuses", "argparse.Namespace", NOT_A_CHECKPOINT]),
    "a model state dict": (lambda path: torch.save(tiny_model().state_dict(), path), ValueError,
                           ["is a model state dict", "not a training checkpoint", STATE_DICT_ADVICE]),
    "an empty dict": (contents(lambda: torch_bytes({})), ValueError, ["a dict without ['model', 'optimizer'",
                                                                      NOT_A_CHECKPOINT]),
    "torchvision's reference format": (contents(lambda: torch_bytes({"model": {}, "optimizer": {}, "epoch": 3})),
                                       ValueError, ["without ['scheduler', 'step', 'rng', 'history'",
                                                    "its keys: ['epoch', 'model', 'optimizer']"]),
    "a negative step": (edited_checkpoint(lambda state: state.update(step=-1)), ValueError,
                        ["step=-1", "count of steps >= 0"]),
    "a step that is not a number": (edited_checkpoint(lambda state: state.update(step="2")), ValueError,
                                    ["step='2'", "count of steps"]),
    "another model configuration": (lambda path: write_checkpoint(path, dataclasses.replace(TINY, fpn_channels=64)),
                                    ValueError, ["another model configuration", "fpn_channels: checkpoint 64, given 32"]),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_load_checkpoint_refuses_what_is_not_a_checkpoint_of_this_model(tmp_path, case):
    make, exception, words = FILE_CASES[case]
    path = tmp_path / "run.pt"
    make(path)
    model = tiny_model(seed=1)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with pytest.raises(exception, match=f"checkpoint {path}") as error:
        load_checkpoint(path, model)
    assert all(word in str(error.value) for word in words), str(error.value)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())  # untouched


@pytest.mark.parametrize("case", ["empty file", "truncated", "a pickled list", "a model state dict",
                                  "another model configuration"])
def test_fit_resume_refuses_what_is_not_a_checkpoint_of_this_model(tmp_path, images, case):
    make, exception, words = FILE_CASES[case]
    path = tmp_path / "run.pt"
    make(path)
    with pytest.raises(exception, match=f"checkpoint {path}") as error:
        fit(tiny_model(), images, TINY_TRAINING, checkpoint=path, resume=True, progress=False)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_shipped_detector_is_named_a_state_dict_not_a_checkpoint(images):
    with pytest.raises(ValueError, match=f"checkpoint {CLASSROOM_DETECTOR} is a model state dict") as error:
        fit(RetinaNet(get_config("classroom")), images, TINY_TRAINING, checkpoint=CLASSROOM_DETECTOR, resume=True,
            progress=False)
    assert STATE_DICT_ADVICE in str(error.value)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*absent\.pt does not exist"):
        load_checkpoint(tmp_path / "absent.pt", tiny_model())


# (changes to TrainConfig, words): fit(resume=True) names every differing field with both values
CONFIG_CASES = {
    "learning rate": ({"lr": 0.02}, ["lr: checkpoint 0.01, given 0.02"]),
    "seed": ({"seed": 4}, ["seed: checkpoint 3, given 4"]),
    "optimizer": ({"optimizer": "adamw"}, ["optimizer: checkpoint 'sgd', given 'adamw'"]),
    "milestones": ({"milestones": (2,)}, ["milestones: checkpoint (3,), given (2,)"]),
    "batch size and flips": ({"batch_size": 1, "hflip_prob": 0.0},
                             ["batch_size: checkpoint 2, given 1", "hflip_prob: checkpoint 0.5, given 0.0"]),
    "clipping switched on": ({"clip_grad_norm": 5.0}, ["clip_grad_norm: checkpoint None, given 5.0"]),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_fit_resume_refuses_another_train_config(tmp_path, images, case):
    changes, words = CONFIG_CASES[case]
    path = write_checkpoint(tmp_path / "run.pt")
    before = path.read_bytes()
    config = dataclasses.replace(TINY_TRAINING, **changes)
    with pytest.raises(ValueError, match=f"checkpoint {path} was trained with another TrainConfig") as error:
        fit(tiny_model(), images, config, checkpoint=path, resume=True, progress=False)
    assert all(word in str(error.value) for word in words), str(error.value)
    assert "steps" not in str(error.value).split("differing fields:")[1].replace("warmup_steps", "")
    assert path.read_bytes() == before  # the checkpoint is left as it was


def test_load_checkpoint_with_a_config_compares_it(tmp_path):
    path = write_checkpoint(tmp_path / "run.pt")
    with pytest.raises(ValueError, match=r"another TrainConfig.*weight_decay: checkpoint 0\.0001, given 0\.0"):
        load_checkpoint(path, tiny_model(), config=dataclasses.replace(TINY_TRAINING, weight_decay=0.0))


# (fit's arguments besides model, data and config, words)
ARGUMENT_CASES = {
    "until below the saved step": ({"until": 1, "resume": True},
                                   ["until=1 is below the 2 steps already in checkpoint", "expected until >= 2"]),
    "until zero": ({"until": 0, "resume": True}, ["until=0 is below the 2 steps", "expected until >= 2"]),
    "resume without a checkpoint": ({"checkpoint": None, "resume": True},
                                    ["resume=True needs checkpoint=", "resume from"]),
    "checkpoint_every without a checkpoint": ({"checkpoint": None, "checkpoint_every": 2},
                                              ["checkpoint_every=2 needs checkpoint=", "write"]),
    "checkpoint_every negative": ({"checkpoint_every": -1}, ["checkpoint_every=-1", "expected a number of steps >= 0"]),
    "overwriting a model state dict": ({"checkpoint": "state_dict"},
                                       ["is a model state dict, not a training checkpoint", "would overwrite it",
                                        "choose another checkpoint file"]),
}


@pytest.mark.parametrize("case", ARGUMENT_CASES)
def test_fit_refuses_arguments_that_cannot_work(tmp_path, images, case):
    arguments, words = ARGUMENT_CASES[case]
    path = write_checkpoint(tmp_path / "run.pt")
    state_dict = tmp_path / "detector.pt"
    torch.save(tiny_model().state_dict(), state_dict)
    before = path.read_bytes(), state_dict.read_bytes()
    arguments = {"checkpoint": path, **arguments}
    if arguments["checkpoint"] == "state_dict":
        arguments["checkpoint"] = state_dict
    with pytest.raises(ValueError) as error:
        fit(tiny_model(), images, TINY_TRAINING, progress=False, **arguments)
    assert all(word in str(error.value) for word in words), str(error.value)
    assert (path.read_bytes(), state_dict.read_bytes()) == before  # nothing was rewritten


# ----------------------------------------------------------------------------- what keeps working


def test_resume_without_a_checkpoint_file_yet_warns_and_starts_from_step_0(tmp_path, images):
    path = tmp_path / "new.pt"
    with pytest.warns(UserWarning, match=r"resume=True but checkpoint .*new\.pt does not exist yet: training "
                                         r"starts from step 0"):
        history = fit(tiny_model(), images, TINY_TRAINING, until=1, checkpoint=path, resume=True, progress=False)
    assert history.step == [0] and torch.load(path, weights_only=True)["step"] == 1


def test_resume_may_extend_the_schedule(tmp_path, images):
    path = tmp_path / "run.pt"
    fit(tiny_model(), images, TINY_TRAINING, checkpoint=path, progress=False)
    longer = dataclasses.replace(TINY_TRAINING, steps=TINY_TRAINING.steps + 1)
    history = fit(tiny_model(seed=1), images, longer, checkpoint=path, resume=True, progress=False)
    assert history.step == list(range(TINY_TRAINING.steps + 1))
    assert torch.load(path, weights_only=True)["step"] == TINY_TRAINING.steps + 1


def test_resume_with_until_at_the_saved_step_changes_nothing(tmp_path, images):
    path = write_checkpoint(tmp_path / "run.pt")
    saved = torch.load(path, weights_only=True)
    model = tiny_model(seed=1)
    history = fit(model, images, TINY_TRAINING, until=SAVED_STEP, checkpoint=path, resume=True, progress=False)
    assert history.step == list(range(SAVED_STEP))
    again = torch.load(path, weights_only=True)
    assert again["step"] == SAVED_STEP and again["train_config"] == saved["train_config"]
    assert all(torch.equal(saved["model"][name], value) for name, value in model.state_dict().items())


def test_fit_may_overwrite_a_broken_checkpoint_when_not_resuming(tmp_path, images):
    path = tmp_path / "run.pt"
    path.write_bytes(b"")
    fit(tiny_model(), images, TINY_TRAINING, until=1, checkpoint=path, progress=False)
    assert torch.load(path, weights_only=True)["step"] == 1


def test_checkpoint_stores_the_model_config_and_loads_without_it(tmp_path):
    path = write_checkpoint(tmp_path / "run.pt")
    state = torch.load(path, weights_only=True)
    assert state["model_config"] == dataclasses.asdict(TINY)
    del state["model_config"]  # a checkpoint written before the model's configuration was stored
    torch.save(state, path)
    step, history = load_checkpoint(path, tiny_model(seed=1))
    assert step == SAVED_STEP and len(history) == SAVED_STEP


def test_checkpoint_is_fsynced_before_it_is_renamed(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", os.fstat(fd).st_size)) or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda src, dst: calls.append(("replace", dst)) or replace(src, dst))
    path = write_checkpoint(tmp_path / "run.pt")
    assert calls[0][0] == "fsync" and calls[0][1] == path.stat().st_size  # the whole file, before ...
    assert calls[1] == ("replace", path)  # ... the rename
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_failed_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "run.pt")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, step=3)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["run.pt"]
