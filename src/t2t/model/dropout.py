"""Dropout that is cheap on CPU.

PyTorch's CPU dropout draws one Bernoulli sample per element, which made dropout ~12% of a T5-small
training step. Here one 64-bit random draw gives three 16-bit uniforms (the 63-bit draw's low 48
bits), compared against a threshold: the drop probability is p rounded to a multiple of 1/65536 and
the kept values are scaled by 1/(1 - that p), so the expectation is exact. Only a bool mask is kept
for backward, as with native dropout. On other devices the fused native kernel is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LANES = 3  # uniform 16-bit lanes per 63-bit draw


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A bool mask with P(False) = round(p * 65536) / 65536, and the scale for the kept values."""
    n = shape.numel()
    draws = -(-n // _LANES)
    bits = torch.empty(draws, dtype=torch.int64, device=device).random_()
    lanes = bits.view(torch.int16).view(draws, 4)[:, :_LANES]
    dropped = round(p * 65536)
    keep = (lanes >= dropped - 32768).reshape(-1)[:n].view(shape)
    return keep, 65536 / (65536 - dropped)


class _ApplyMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    keep, scale = keep_mask(x.shape, p, x.device)
    return _ApplyMask.apply(x, keep, scale)


class Dropout(nn.Module):
    """Drop-in for nn.Dropout with the fast CPU path."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
