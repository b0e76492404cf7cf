"""The training command, `python -m retina_lessons.train`, run in process on tiny runs: what it writes, that it
equals `fit` (so the shipped detector is still reproducible), resume, a COCO-format folder, and its errors."""

import json

import pytest
import torch

from retina_lessons.synthetic import ShapesDataset, write_coco_split
from retina_lessons.train import OUTPUTS, main, run
from retina_lessons.training import CLASSROOM_TRAINING, classroom_dataset, fit, new_classroom_model

# Steps this small gain nothing from a second thread (and lose a lot on a busy machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A COCO-format folder of 8 training and 4 held-out 64-px shapes images with 4 classes."""
    root = tmp_path_factory.mktemp("coco_folder")
    train = write_coco_split(ShapesDataset(8, image_size=64, seed=11, num_classes=4), root / "train")
    val = write_coco_split(ShapesDataset(4, image_size=64, seed=12, split="val", num_classes=4), root / "val")
    return {"--images": str(train.parent), "--annotations": str(train), "--val-images": str(val.parent),
            "--val-annotations": str(val)}


def folder_args(folder, out, *extra):
    args = ["--preset", "classroom", "--data", "folder", "--out", str(out), "--steps", "4", "--batch-size", "2",
            "--no-progress", *extra]
    for flag, value in folder.items():
        args += [flag, value]
    return args


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_classroom_on_shapes_equals_fit(tmp_path):
    """The command with the classroom recipe takes the same steps as fit(new_classroom_model(), ...)."""
    metrics = run(["--preset", "classroom", "--data", "shapes", "--until", "3", "--out", str(tmp_path),
                   "--no-progress"])
    model = new_classroom_model()
    history = fit(model, classroom_dataset(), CLASSROOM_TRAINING, until=3, progress=False)
    assert_same(weights(tmp_path / "model.pt"), model.state_dict())
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [entry["loss"] for entry in logged] == history.loss
    assert {"AP", "AP50", "AP75"} <= set(metrics)


def test_outputs_of_a_folder_run_with_classes_from_the_data(tmp_path, folder):
    run(folder_args(folder, tmp_path, "--eval-every", "2"))
    assert all((tmp_path / name).is_file() for name in OUTPUTS)
    state = weights(tmp_path / "model.pt")  # a plain state dict, loadable with weights_only=True
    A = 3  # the classroom preset's anchors per location
    assert state["cls_head.predictor.weight"].shape[0] == 4 * A  # four classes, read from the annotations
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["class_names"] == ["circle", "triangle", "square", "cross"]
    assert {"AP", "AP50", "AP75", "AR100"} <= set(metrics) and metrics["heldout_images"] == 4
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines if "loss" in e] == [0, 1, 2, 3]
    assert [e["step"] for e in lines if "heldout" in e] == [1, 3]


def test_resume_equals_an_uninterrupted_run(tmp_path, folder):
    run(folder_args(folder, tmp_path / "straight"))
    run(folder_args(folder, tmp_path / "stopped", "--until", "2"))
    assert len((tmp_path / "stopped" / "log.jsonl").read_text().splitlines()) == 2
    run(folder_args(folder, tmp_path / "stopped", "--resume"))
    assert_same(weights(tmp_path / "stopped" / "model.pt"), weights(tmp_path / "straight" / "model.pt"))
    straight, resumed = ((tmp_path / d / "log.jsonl").read_text().splitlines() for d in ("straight", "stopped"))
    assert [json.loads(a)["loss"] for a in straight] == [json.loads(b)["loss"] for b in resumed]


def test_workers_load_the_same_batches(tmp_path, folder):
    run(folder_args(folder, tmp_path / "w0", "--until", "2"))
    run(folder_args(folder, tmp_path / "w2", "--until", "2", "--workers", "2"))
    assert_same(weights(tmp_path / "w2" / "model.pt"), weights(tmp_path / "w0" / "model.pt"))


def test_bf16_trains_to_finite_weights_and_writes_metrics(tmp_path, folder):
    run(folder_args(folder, tmp_path, "--amp", "bf16"))
    assert all(torch.isfinite(v.float()).all() for v in weights(tmp_path / "model.pt").values())
    assert "AP" in json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.parametrize("args, error, words", [
    (["--data", "coco", "--data-root", "{tmp}/nowhere"], FileNotFoundError,
     ["--data coco", "instances_train2017.json", "cocodataset.org", "nowhere"]),
    (["--data", "voc", "--data-root", "{tmp}/nowhere"], FileNotFoundError, ["--data voc", "VOCtrainval"]),
    (["--data", "folder"], ValueError, ["--data folder needs --images"]),
    (["--data", "shapes", "--images", "{tmp}"], ValueError, ["--images", "only for --data folder"]),
    (["--amp", "fp16", "--device", "cpu"], ValueError, ["amp='fp16' needs a CUDA device", "bf16"]),
])
def test_errors_name_the_argument(tmp_path, args, error, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(error) as raised:
        run(["--out", str(tmp_path / "out"), "--no-progress", "--steps", "1", *args])
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize("args, words", [
    (["--steps", "0"], ["--steps", "positive"]),
    (["--until", "5", "--steps", "2"], ["--until", "beyond --steps"]),
    (["--preset", "huge"], ["--preset", "invalid choice"]),
    (["--amp", "fp8"], ["--amp"]),
    (["--workers", "-1"], ["--workers"]),
])
def test_argparse_errors(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit):
        run(["--out", str(tmp_path), *args])
    message = capsys.readouterr().err
    for word in words:
        assert word in message


def test_an_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="--resume: .*checkpoint.pt does not exist"):
        run(folder_args(folder, tmp_path, "--resume"))
    run(folder_args(folder, tmp_path, "--until", "1"))
    with pytest.raises(FileExistsError, match="add --resume"):
        run(folder_args(folder, tmp_path))
    with pytest.raises(SystemExit, match="error: .*add --resume"):  # main: one line, no traceback
        main(folder_args(folder, tmp_path))
