"""Optimizers and learning-rate schedules built from a TrainConfig's `optim` and `schedule` sections."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from t2t.train.adafactor import Adafactor
from t2t.train.config import OptimSection, ScheduleSection


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: biases, norms' scales are not decayed (as BERT / GPT-2 train)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.name == "adafactor":
        return Adafactor(
            groups,
            lr=cfg.lr,
            eps=(cfg.eps1, cfg.eps2),
            clip_threshold=cfg.clip_threshold,
            decay_rate=cfg.decay_rate,
            beta1=cfg.beta1,
            weight_decay=cfg.weight_decay,
            scale_parameter=cfg.scale_parameter,
            relative_step=cfg.relative_step,
        )
    return torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=tuple(cfg.betas),  # type: ignore[arg-type]
        eps=cfg.eps,
        fused=_can_fuse(model) or None,
    )


def _can_fuse(model: nn.Module) -> bool:
    """The fused AdamW kernel (what transformers' Trainer picks by default) updates every tensor in one
    pass; on CPU it is 5-50x faster than the per-tensor loop, and it computes the same update."""
    params = [p for p in model.parameters() if p.requires_grad]
    return bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float16, torch.bfloat16)
        for p in params
    )


def lr_multiplier(cfg: ScheduleSection, max_steps: int) -> Callable[[int], float]:
    """The factor on optim.lr for the update with index `done` (0 for the first update).

    inverse_sqrt is T5's `1/sqrt(max(step, warmup))`, normalised to 1 at the end of warmup, so
    `optim.lr: 0.01, warmup_steps: 10000, linear_warmup: false` is T5's pre-training schedule."""
    warmup, floor = cfg.warmup_steps, cfg.min_lr_ratio

    def ramp(step: int) -> float:
        if warmup and cfg.linear_warmup and step < warmup:
            return step / warmup
        return 1.0

    def factor(done: int) -> float:
        step = done + 1
        if cfg.name == "constant":
            return ramp(step)
        if cfg.name == "inverse_sqrt":
            return ramp(step) * math.sqrt(max(warmup, 1) / max(step, warmup, 1))
        progress = min(1.0, max(0, step - warmup) / max(1, max_steps - warmup))
        if cfg.name == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:  # linear
            decay = 1.0 - progress
        return ramp(step) * (floor + (1.0 - floor) * decay)

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleSection, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(cfg, max_steps))


def restore_optimizer(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    saved_optimizer: dict,
    saved_scheduler: dict,
    load: Callable[[dict], None] | None = None,
) -> None:
    """Load a checkpoint's optimizer moments and schedule position, keeping the hyperparameters (lr,
    betas, weight decay, ...) that this run's config built, so that a resumed run trains at the rate
    its config.yaml records. With an unchanged config the result is the saved state exactly: the rate
    of each group is base_lr * factor(last step), as the scheduler set it then.

    `load` loads an optimizer state dict (FSDP gathers its own way); default optimizer.load_state_dict."""
    fresh = optimizer.state_dict()["param_groups"]
    saved_groups = saved_optimizer["param_groups"]
    if len(saved_groups) != len(fresh):
        from t2t.errors import CheckpointError

        raise CheckpointError(
            f"the checkpoint's optimizer has {len(saved_groups)} parameter groups and this run's has "
            f"{len(fresh)}; the trainable parameters differ (freeze settings?)"
        )
    groups = [{**new, "params": old["params"]} for new, old in zip(fresh, saved_groups)]
    (load or optimizer.load_state_dict)({**saved_optimizer, "param_groups": groups})
    base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    scheduler.load_state_dict(saved_scheduler)
    scheduler.base_lrs = base_lrs
    rates = [base * factor(scheduler.last_epoch) for base, factor in zip(base_lrs, scheduler.lr_lambdas)]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = rates  # what get_last_lr() reports
