"""Data parallelism: one model per process, each step's global batch split over the processes.

Paper, Section 4.1: the minibatch of 16 images is spread over 8 GPUs ("synchronous SGD"). Each process
holds a full copy of the model, computes the loss of its share of the batch, and
`DistributedDataParallel` averages the gradients over the processes during the backward pass, so every
copy takes the same optimiser step. The result equals one process over the whole batch when three
things are global rather than per process:

- **the images**: process r takes share r of the step's batch from the seeded `BatchSampler`
  (``training.StepBatches``), so the global batch is the one a single process would draw;
- **the loss normalisation**: averaging gradients divides by the number of processes W. With
  per-image normalisation (torchvision) each process averages its own B/W images, and the mean of the
  W means is the mean over all B images. With per-batch normalisation (the paper) the divisor is the
  foreground count of the whole batch: inside :func:`global_normalisation` the losses divide their sums by
  the count summed over the processes and multiply by W, which the gradient averaging divides back out;
- **BatchNorm statistics** of layers that compute them in training: each process sees only B/W images,
  so :func:`synchronise_batchnorm` makes the mean and variance those of the global batch
  (``torch.nn.SyncBatchNorm`` on GPUs; :class:`CpuSyncBatchNorm` on the CPU, which SyncBatchNorm refuses).

Taught in ``notebooks/11_scaling_up.ipynb``.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .boxes import upcast


def rank_and_world_size() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup(device: torch.device) -> tuple[torch.device, int, int]:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, ... in the environment), if any.

    Returns (device, rank, world_size); on CUDA each process takes the GPU of its LOCAL_RANK. Without
    torchrun (or with one process) nothing is set up and the run is an ordinary one.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 or (dist.is_initialized()):
        return (device, *rank_and_world_size())
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size}, but this torch build has no torch.distributed")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (device, *rank_and_world_size())


_batchnorm_group = None


def batchnorm_group():
    """The process group of CpuSyncBatchNorm's collectives: a group of its own, because DistributedDataParallel
    all-reduces gradient buckets asynchronously during the backward pass, and two streams of collectives
    in one gloo group may pair up differently on different processes (and silently add the wrong tensors)."""
    global _batchnorm_group
    if _batchnorm_group is None:
        _batchnorm_group = dist.new_group(backend="gloo")
    return _batchnorm_group


def teardown() -> None:
    global _batchnorm_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _batchnorm_group = None


# ----------------------------------------------------------------------------- loss normalisation

_global_normalisation = False


@contextmanager
def global_normalisation():
    """Inside: per-batch loss normalisation divides by the foreground count of all processes together."""
    global _global_normalisation
    previous, _global_normalisation = _global_normalisation, rank_and_world_size()[1] > 1
    try:
        yield
    finally:
        _global_normalisation = previous


def foreground_total(num_foreground: Tensor) -> tuple[Tensor, int]:
    """(foreground count to divide by, factor to multiply by): (count, 1), or inside `global_normalisation`
    (count summed over the W processes, W), the W undone by DistributedDataParallel's gradient averaging."""
    if not _global_normalisation:
        return num_foreground, 1
    total = num_foreground.detach().clone()
    dist.all_reduce(total)
    return total, dist.get_world_size()


def average_over_processes(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each value averaged over the processes (the global batch's loss, for logging and the NaN check)."""
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return values
    stacked = torch.stack([v.detach().float() for v in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, stacked / world_size))


# ----------------------------------------------------------------------------- BatchNorm


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, over all processes (gloo).

    Per channel the processes add up their sums (then their squared deviations from the global mean,
    two passes as BatchNorm computes them) with the autograd-aware `torch.distributed.nn` all-reduce, so
    the gradient also flows through the statistics to every process's images, as in one process. In
    evaluation mode it is a plain BatchNorm2d with the running statistics.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or rank_and_world_size()[1] == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce as autograd_all_reduce

        def all_reduce(tensor, group):
            with warnings.catch_warnings():  # deprecated for a private module, but public and autograd-aware
                warnings.simplefilter("ignore", FutureWarning)
                return autograd_all_reduce(tensor, group=group)

        B, C, H, W = x.shape
        x32 = upcast(x)  # statistics in float32 (or float64), also under autocast
        count = x32.new_full((1,), B * H * W)
        group = batchnorm_group()
        totals = all_reduce(torch.cat([x32.sum(dim=(0, 2, 3)), count]), group=group)  # (C + 1,): global sums, count
        num = totals[C]
        mean = totals[:C] / num  # (C,)
        centred = x32 - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3)), group=group) / num  # (C,): biased, as BatchNorm normalises
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked.item()
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_(var.detach() * num / (num - 1).clamp(min=1), momentum)  # unbiased
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every nn.BatchNorm2d of `model` (not the frozen ones) replaced by a synchronised one, in place.

    Parameters and buffers are carried over as they are (same tensors, same state-dict names), so
    checkpoints stay interchangeable between one process and many.
    """
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = (nn.SyncBatchNorm if device.type == "cuda" else CpuSyncBatchNorm)(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            synced.weight, synced.bias = child.weight, child.bias
            synced.running_mean, synced.running_var = child.running_mean, child.running_var
            synced.num_batches_tracked = child.num_batches_tracked
            synced.train(child.training)
            setattr(model, name, synced)
        else:
            synchronise_batchnorm(child, device)
    return model


class LossOf(nn.Module):
    """`model.loss` as a module's forward: what DistributedDataParallel wraps (it hooks `forward` calls)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: list[Tensor], targets: list[dict]) -> dict[str, Tensor]:
        return self.model.loss(images, targets)


def data_parallel_loss(model: nn.Module, device: torch.device):
    """A callable (images, targets) -> losses: `model.loss`, wrapped in DistributedDataParallel when there
    are several processes (gradients averaged in backward, per-batch normalisation global)."""
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return model.loss
    from torch.nn.parallel import DistributedDataParallel

    with warnings.catch_warnings():  # its successor, forward_sync_buffers=False, still syncs at init
        warnings.simplefilter("ignore", FutureWarning)
        wrapped = DistributedDataParallel(LossOf(model), device_ids=[device] if device.type == "cuda" else None,
                                          broadcast_buffers=False)  # synchronised BatchNorm keeps buffers equal

    def loss(images, targets):
        with global_normalisation():
            return wrapped(images, targets)

    return loss
