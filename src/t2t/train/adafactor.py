"""Adafactor (Shazeer & Stern 2018), as T5 fine-tunes with it.

Second moments of a matrix are kept factored (one row and one column vector instead of a full matrix),
so the optimizer state of T5-small is ~0.1% of AdamW's. Defaults are T5's fine-tuning settings: no
relative step (the learning rate comes from the param group, so LR schedules apply), no first moment,
no parameter scaling, update clipping at RMS 1.0, decay rate -0.8 (beta2_t = 1 - t^-0.8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.norm(2) / (x.numel() ** 0.5)


class Adafactor(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        *,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = False,
        relative_step: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            eps=eps,
            clip_threshold=clip_threshold,
            decay_rate=decay_rate,
            beta1=beta1,
            weight_decay=weight_decay,
            scale_parameter=scale_parameter,
            relative_step=relative_step,
        )
        super().__init__(params, defaults)

    @staticmethod
    def _step_size(group: dict[str, Any], state: dict[str, Any], param: torch.Tensor) -> float:
        step = state["step"]
        lr = min(1e-2, step**-0.5) if group["relative_step"] else group["lr"]
        if group["scale_parameter"]:
            lr *= max(group["eps"][1], float(_rms(param)))
        return lr

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        grad = p.grad.float()
        if grad.is_sparse:
            raise RuntimeError("Adafactor does not support sparse gradients")
        state = self.state[p]
        factored = grad.dim() >= 2
        if not state:
            state["step"] = 0
            if factored:
                state["exp_avg_sq_row"] = grad.new_zeros(grad.shape[:-1])
                state["exp_avg_sq_col"] = grad.new_zeros(grad.shape[:-2] + grad.shape[-1:])
            else:
                state["exp_avg_sq"] = torch.zeros_like(grad)
            if group["beta1"] is not None:
                state["exp_avg"] = torch.zeros_like(grad)
        state["step"] += 1
        work = p.float() if p.dtype != torch.float32 else p
        lr = self._step_size(group, state, work)
        beta2t = 1.0 - state["step"] ** group["decay_rate"]
        update = grad.square().add_(group["eps"][0])
        if factored:
            row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
            row.mul_(beta2t).add_(update.mean(dim=-1), alpha=1.0 - beta2t)
            col.mul_(beta2t).add_(update.mean(dim=-2), alpha=1.0 - beta2t)
            # V ~ outer(row, col) / mean(row): the rank-1 approximation of the second moment.
            r_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
            c_factor = col.unsqueeze(-2).rsqrt()
            update = torch.mul(r_factor, c_factor).mul_(grad)
        else:
            v = state["exp_avg_sq"]
            v.mul_(beta2t).add_(update, alpha=1.0 - beta2t)
            update = v.rsqrt().mul_(grad)
        update.div_((_rms(update) / group["clip_threshold"]).clamp_(min=1.0))
        update.mul_(lr)
        if group["beta1"] is not None:
            avg = state["exp_avg"]
            avg.mul_(group["beta1"]).add_(update, alpha=1.0 - group["beta1"])
            update = avg
        if group["weight_decay"]:
            work.add_(work, alpha=-group["weight_decay"] * lr)
        work.add_(-update)
        if work is not p:
            p.copy_(work)
