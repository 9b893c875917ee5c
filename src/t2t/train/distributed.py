"""torchrun glue: process group from the environment, DDP / FSDP wrapping, small all-reduces.

Launched by `torchrun --nproc_per_node N` (or across nodes with --nnodes/--node_rank/--rdzv_endpoint),
each process reads RANK / WORLD_SIZE / LOCAL_RANK, joins the group (gloo on CPU, nccl on CUDA), builds
the same data stream and trains on its own rows of every global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from t2t.train.config import DistributedSection
from t2t.utils.devices import resolve_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(cfg: DistributedSection, device_type: str) -> DistInfo:
    """Join the process group torchrun describes; a plain `python` run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device_type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
    return info


def device_for(name: str, info: DistInfo) -> torch.device:
    """The recipe's `device` checked against this machine (a ConfigError naming device= otherwise); a
    bare cuda is this process's GPU under torchrun."""
    device = resolve_device(name, option="device=")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank)
    return device


def wrap(model: nn.Module, cfg: DistributedSection, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP: a wrapper that all-reduces gradients. FSDP (FSDP2's fully_shard, which also runs on CPU with
    gloo): each transformer block and then the whole model sharded in place across the processes."""
    if not info.enabled:
        return model
    if cfg.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        from t2t.model.transformer import Block

        for module in model.modules():
            if isinstance(module, Block):
                fully_shard(module)
        return fully_shard(model)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def full_state_dicts(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict]:
    """Unsharded model and optimizer states of an FSDP model (a collective: every rank calls it)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (
        get_model_state_dict(model, options=options),
        get_optimizer_state_dict(model, optimizer, options=options),
    )


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
