"""Trap 6: parameters unfrozen after the DDP wrap are not all-reduced unless the model is re-wrapped (gloo, CPU)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, rewrap: bool, out: dict) -> None:
    from trainers.customizations.freeze import rewrap_ddp

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    for p in model[0].parameters():  # "backbone" frozen at wrap time
        p.requires_grad = False
    ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    for p in model[0].parameters():  # unfreeze after the wrap, as a schedule does
        p.requires_grad = True
    if rewrap:
        ddp = rewrap_ddp(ddp)
    torch.manual_seed(100 + rank)  # different data per rank
    ddp(torch.randn(16, 4)).pow(2).mean().backward()
    grads = [torch.zeros_like(model[0].weight.grad) for _ in range(world)]
    dist.all_gather(grads, model[0].weight.grad)
    out[rank] = bool(torch.allclose(grads[0], grads[1]))
    dist.destroy_process_group()


@pytest.mark.parametrize("rewrap", [False, True])
def test_unfrozen_params_are_all_reduced_only_after_rewrap(rewrap):
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), rewrap, out), nprocs=2, join=True)
        synced = dict(out)
    assert synced == {0: rewrap, 1: rewrap}  # without re-wrap the replicas' gradients differ
