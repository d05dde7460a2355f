"""Test-only support for running ultralytics' own multi-GPU (DDP) launch path on CPU with gloo.

Used by ``tests/test_ddp_cpu.py``. ultralytics' DDP workers are fresh ``python`` processes started by
``torch.distributed.run`` from the file ``ultralytics.utils.dist.generate_ddp_file`` writes; they rebuild the trainer
from a cloudpickle of its class and callbacks. Everything here is module-level in an importable module, so cloudpickle
pickles it *by reference* and each worker imports this module: the patches below reach the workers without touching
the product code or the environment.

Only what insists on CUDA is patched (the world size in every process, the rest only inside the workers):

* ``BaseTrainer.__init__`` derives the world size from a CUDA device string (``device=0,1``) and sets 0 for CPU;
  :class:`CPUDDPMixin` sets it to 2 afterwards, so the launching process takes the stock DDP branch of ``train()``.
* ``BaseTrainer._setup_ddp`` forces ``torch.device("cuda", LOCAL_RANK)`` and ``cuda.set_device``: replaced by a
  plain gloo ``init_process_group`` on CPU.
* ``BaseTrainer._setup_train`` builds ``DistributedDataParallel(model, device_ids=[self.device.index])``; a CPU device
  has no index and DDP rejects ``device_ids=[None]`` for CPU modules: the constructor gets ``device_ids=None``.
* ``DistributedDataParallel`` refuses a CPU module with SyncBatchNorm layers (``_passing_sync_batchnorm_handle``):
  that check is skipped, for every DDP built in the worker (ultralytics' and the freeze customization's re-wrap).
* ``BaseValidator.__call__`` (the final evaluation of best.pt) puts a DDP rank's model on
  ``torch.device("cuda", cuda.current_device())``: during ``final_eval`` it gets the trainer's CPU device instead.
* ``nn.SyncBatchNorm.forward`` raises for CPU tensors (its kernels are CUDA-only): replaced, for CPU tensors in
  training with an initialised process group, by the same computation done with a differentiable all-reduce of the
  per-channel sums (batch statistics over all ranks; the backward all-reduces the gradient of those sums, as the
  CUDA kernel's backward does).

The recording callbacks write one JSON line per event and rank to ``<save_dir>/ddp_cpu/rank<R>.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
from torch import nn
from ultralytics.utils import LOCAL_RANK, RANK
from ultralytics.utils.torch_utils import unwrap_model

WORLD_SIZE = 2
COLLECTIVE_TIMEOUT = timedelta(seconds=120)  # a rank stuck in a collective fails the run instead of hanging CI

_REAL_DDP = nn.parallel.DistributedDataParallel
_REAL_SYNC_BN_FORWARD = nn.SyncBatchNorm.forward


# ---- what insists on CUDA ------------------------------------------------------------------------------------------
class _CPUDistributedDataParallel(_REAL_DDP):
    """DDP that accepts the ``device_ids=[None]`` ultralytics passes for a CPU device (a CPU device has no index)."""

    def __init__(self, module, device_ids=None, *args, **kwargs):
        if device_ids is not None and all(i is None for i in device_ids):
            device_ids = None
        super().__init__(module, device_ids, *args, **kwargs)


@contextmanager
def cpu_ddp_constructor():
    """While active, ``nn.parallel.DistributedDataParallel(...)`` (as ultralytics spells it) builds a CPU-able DDP.

    The instances are real ``DistributedDataParallel`` objects (a subclass), so every ``isinstance`` check holds and
    code that builds DDP later (the freeze customization's re-wrap) uses the real class.
    """
    with mock.patch.object(nn.parallel, "DistributedDataParallel", _CPUDistributedDataParallel):
        yield


def _allow_cpu_sync_batchnorm(self, module) -> None:
    """Stands in for ``DistributedDataParallel._passing_sync_batchnorm_handle``, which rejects CPU modules."""


class _NoAcceleratorIndex:
    @staticmethod
    def current_device() -> None:
        return None  # torch.device("cuda", None) is only a description: nothing touches CUDA


@contextmanager
def cpu_validator_device(device: torch.device):
    """While active, the validator's ``AutoBackend`` for a DDP rank is built on ``device``, not on the current GPU."""
    from ultralytics.engine import validator

    real = validator.AutoBackend

    def autobackend_on_device(*args, **kwargs):
        return real(*args, **{**kwargs, "device": device})

    with (
        mock.patch.object(validator, "get_torch_device_backend", lambda _type: _NoAcceleratorIndex),
        mock.patch.object(validator, "AutoBackend", autobackend_on_device),
    ):
        yield


class _SumAllRanks(torch.autograd.Function):
    """all_reduce(SUM) whose backward all-reduces the incoming gradient (each rank's loss depends on the sum)."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def _cpu_sync_bn_forward(self: nn.SyncBatchNorm, input: torch.Tensor) -> torch.Tensor:
    """``SyncBatchNorm.forward`` for CPU tensors: normalise with the batch statistics of all ranks together."""
    group = self.process_group or dist.group.WORLD
    if not (
        input.device.type == "cpu"
        and self.training
        and dist.is_available()
        and dist.is_initialized()
        and dist.get_world_size(group) > 1
    ):
        return _REAL_SYNC_BN_FORWARD(self, input)  # no sync needed: torch falls back to F.batch_norm itself
    self._check_input_dim(input)
    c = input.shape[1]
    dims = [0, *range(2, input.dim())]
    local = torch.cat([input.sum(dims), input.square().sum(dims), input.new_tensor([input.numel() // c])])
    total = _SumAllRanks.apply(local, group)
    n = total[-1]
    mean = total[:c] / n
    var = (total[c : 2 * c] / n - mean.square()).clamp_min(0)  # biased, for normalising (as torch)
    if self.track_running_stats:
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_((var * n / (n - 1)).detach(), momentum)  # unbiased, for the running estimate
    shape = (1, c) + (1,) * (input.dim() - 2)
    out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
    if self.affine:
        out = out * self.weight.view(shape) + self.bias.view(shape)
    return out


class CPUDDPMixin:
    """Outermost mixin over a composed trainer class: DDP with ``WORLD_SIZE`` CPU processes and gloo."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # stock: world_size = number of CUDA devices in args.device, 0 on CPU; ddp = world_size > 1 and LOCAL_RANK == -1
        self.world_size = WORLD_SIZE
        self.ddp = LOCAL_RANK == -1  # the launching process spawns the workers through generate_ddp_command

    def _setup_ddp(self):
        # stock: torch.device("cuda", LOCAL_RANK), accelerator.set_device, nccl when available; the device stays CPU
        dist.init_process_group("gloo", rank=RANK, world_size=self.world_size, timeout=COLLECTIVE_TIMEOUT)
        # this worker process only:
        _REAL_DDP._passing_sync_batchnorm_handle = _allow_cpu_sync_batchnorm
        nn.SyncBatchNorm.forward = _cpu_sync_bn_forward

    def _setup_train(self):
        with cpu_ddp_constructor():
            super()._setup_train()

    def final_eval(self):
        with cpu_validator_device(self.device):
            super().final_eval()


def cpu_ddp_class(composed: type) -> type:
    """The composed trainer class with :class:`CPUDDPMixin` on top (class attributes inherited, so they travel)."""
    return type(f"CPUDDP{composed.__name__}", (CPUDDPMixin, composed), {"__module__": __name__})


# ---- recording, per rank -------------------------------------------------------------------------------------------
def _record(trainer, kind: str, **fields) -> None:
    out = Path(trainer.save_dir) / "ddp_cpu"
    out.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"kind": kind, "rank": RANK, "pid": os.getpid(), **fields})
    with open(out / f"rank{RANK}.jsonl", "a") as f:
        f.write(line + "\n")


def tensor_digests(model: nn.Module) -> dict[str, str]:
    """A digest of every parameter and buffer's exact bytes, by state_dict name."""
    return {
        k: hashlib.sha1(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
        for k, v in unwrap_model(model).state_dict().items()
    }


def open_files() -> list[str]:
    """Paths this process holds open (Linux)."""
    fds = Path("/proc/self/fd")
    return sorted({os.path.realpath(fd) for fd in fds.iterdir()}) if fds.is_dir() else []


def on_train_start(trainer) -> None:
    """After DDP wrapped the model: the world, the BatchNorm layer types, the starting weights."""
    modules = list(trainer.model.modules())
    _record(
        trainer,
        "train_start",
        world_size=dist.get_world_size() if dist.is_initialized() else None,
        backend=dist.get_backend() if dist.is_initialized() else None,
        ddp=isinstance(trainer.model, nn.parallel.DistributedDataParallel),
        device=str(trainer.device),
        sync_bn=sum(isinstance(m, nn.SyncBatchNorm) for m in modules),
        plain_bn=sum(type(m) in {nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d} for m in modules),
        digests=tensor_digests(trainer.model),
        open_files=open_files(),
    )


def on_train_epoch_end(trainer) -> None:
    """After each training epoch (before validation): this rank's data shard and its exact weights."""
    loader = trainer.train_loader
    files = [Path(loader.dataset.im_files[i]).name for i in loader.sampler]  # set_epoch ran: this epoch's shard
    _record(
        trainer,
        "epoch_end",
        epoch=trainer.epoch + 1,
        batches=len(loader),
        files=files,
        ddp=isinstance(trainer.model, nn.parallel.DistributedDataParallel),
        digests=tensor_digests(trainer.model),
        open_files=open_files(),
    )


CALLBACKS = {"on_train_start": on_train_start, "on_train_epoch_end": on_train_epoch_end}
