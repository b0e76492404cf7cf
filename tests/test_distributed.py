"""Data parallelism on the CPU: `torchrun --nproc-per-node 2 -m retina_lessons.train` (gloo) gives the weights of
one process over the same global batches, and a 2-process run stopped early resumes in one process to them too.

Compared in float64 (the command's hidden --float64): in float32 AdamW turns the last-bit differences of
near-zero gradients into updates of the learning rate's size (measured after 16 classroom steps: 1e-2),
which would hide a real error. In float64 the measured difference after 16 steps is 1.3e-8 for the
parameters and 5e-11 for the BatchNorm statistics; a wrong normalisation or unsynchronised BatchNorm
gives differences of 1e-3 and more at the first step.
"""

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from retina_lessons.synthetic import ShapesDataset, write_coco_split

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed")
TOLERANCE = 1e-6  # float64; measured 1.3e-8 after 16 steps


def command(folder, out, processes, *extra):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    args = ["-m", "retina_lessons.train", "--preset", "classroom", "--data", "folder", "--images", str(folder),
            "--annotations", str(folder / "annotations.json"), "--steps", "4", "--batch-size", "4", "--seed", "3",
            "--out", str(out), "--no-progress", "--float64", "--threads", "1", *extra]
    result = subprocess.run((launcher if processes > 1 else [sys.executable]) + args, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def assert_close(a, b):
    a, b = (torch.load(path, weights_only=True) for path in (a, b))
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=TOLERANCE, msg=lambda m, k=key: f"{k}: {m}")
        else:  # BatchNorm's step counter
            assert torch.equal(a[key], b[key]), key


def test_two_processes_equal_one_and_resume_across_world_sizes(tmp_path):
    folder = write_coco_split(ShapesDataset(8, image_size=64, seed=11), tmp_path / "data").parent
    command(folder, tmp_path / "one", 1)
    command(folder, tmp_path / "two", 2)
    assert_close(tmp_path / "two" / "model.pt", tmp_path / "one" / "model.pt")
    command(folder, tmp_path / "stopped", 2, "--until", "2")
    command(folder, tmp_path / "stopped", 1, "--resume")
    assert_close(tmp_path / "stopped" / "model.pt", tmp_path / "one" / "model.pt")
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    assert len(log) == 4  # written by rank 0 alone
