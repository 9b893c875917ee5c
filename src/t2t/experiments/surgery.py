"""Changes to a built model that no ModelConfig field makes, for ablations: residual connections off or
scaled. The model layer keeps one Block; an experiment swaps the class of each block for a subclass whose
forward is the same wiring with the residual path multiplied by `residual` and the sublayer output by
`branch`:

    pre-LN:   x = residual * x + branch * f(norm(x))
    post-LN:  x = norm(residual * x + branch * f(x))

residual=1, branch=1 is the model as built (tests/test_experiments.py checks the outputs are identical);
residual=0 removes the skip connections; branch=1/sqrt(2N) scales each sublayer's contribution down
with depth (N blocks, two sublayers each: GPT-2's / DeepNet's reasoning, applied at run time).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from t2t.errors import ConfigError
from t2t.experiments.models import RESIDUAL_MODES
from t2t.model.transformer import Block, StackContext


class ResidualAblationBlock(Block):
    """Block with a weight on the skip path (`residual`) and one on the sublayer's output (`branch`)."""

    residual: float = 1.0
    branch: float = 1.0

    def forward(self, x: torch.Tensor, ctx: StackContext, cache: Any = None) -> torch.Tensor:
        pre, r, b = self.pre_norm, self.residual, self.branch
        h = self.self_norm(x) if pre else x
        h = self.self_attn(h, ctx.self_mask, causal=ctx.causal, rotary=ctx.rotary, cache=cache)
        x = r * x + b * self.dropout(h) if pre else self.self_norm(r * x + b * self.dropout(h))
        if self.cross_attn is not None and self.cross_norm is not None:
            h = self.cross_norm(x) if pre else x
            h = self.cross_attn(h, ctx.memory_mask, memory=ctx.memory, cache=cache)
            x = r * x + b * self.dropout(h) if pre else self.cross_norm(r * x + b * self.dropout(h))
        h = self.ffn(self.ffn_norm(x) if pre else x)
        return r * x + b * self.dropout(h) if pre else self.ffn_norm(r * x + b * self.dropout(h))


def set_residual(model: Any, mode: str = "standard", scale: float | None = None) -> dict[str, float]:
    """Rewire every block of `model` in place: mode standard (residual 1, branch 1), none (residual 0),
    scaled (branch `scale`, default 1/sqrt(2 x blocks of the deepest stack)). Returns the weights used."""
    if mode not in RESIDUAL_MODES:
        raise ConfigError(f"residual={mode!r} is not one of {', '.join(RESIDUAL_MODES)}")
    stacks = [getattr(model, name, None) for name in ("encoder", "decoder")]
    depth = max((len(s.layers) for s in stacks if s is not None), default=1)
    residual, branch = 1.0, 1.0
    if mode == "none":
        residual = 0.0
    elif mode == "scaled":
        branch = scale if scale is not None else 1.0 / math.sqrt(2 * depth)
    for stack in stacks:
        for block in getattr(stack, "layers", None) or []:
            block.__class__ = ResidualAblationBlock
            block.residual, block.branch = residual, branch
    return {"residual": residual, "branch": branch}
