"""LoRALinear: a linear layer plus low-rank updates on chosen slices of its output (Hu et al. 2021).

t2t projects queries, keys and values with one fused matrix (`qkv`) and a gated feed-forward's gate and
value with one `[gate; up]` matrix, so "LoRA on q and v" is LoRA on two row ranges of one matrix. Each
chosen slice s (rows start:stop of the output) gets its own pair A_s [r, in], B_s [stop - start, r]:

    y = x W^T + b;   y[..., start:stop] += scale_s * (dropout(x) A_s^T) B_s^T      (scale_s = alpha / r)

which is exactly PEFT's separate q_proj / v_proj (or T5's q / v) LoRA layers. The layer takes over the
linear's own `weight` and `bias` Parameters (nothing is copied and their state-dict names stay), so the
model's weight names, its interop rules and its checkpoints are unchanged; the new tensors are
`lora_A.<slice>` and `lora_B.<slice>`. B starts at zero, so a new LoRA layer computes what the base did.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2t.errors import T2TError
from t2t.model.dropout import Dropout

Slice = tuple[int, int]  # output rows start:stop


class LoRALinear(nn.Linear):
    def __init__(
        self,
        base: nn.Linear,
        parts: dict[str, Slice],
        ranks: dict[str, int],
        scales: dict[str, float],
        dropout: float = 0.0,
        *,
        init: bool = True,
    ) -> None:
        """parts: every slice of the output by name (q, k, v / gate, up / the whole output); ranks and
        scales: the slices that get an update. init=False leaves A uninitialised (weights to be loaded)."""
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias  # the base's own Parameters, shared
        self.parts = dict(parts)
        self.scales = dict(scales)
        w = base.weight
        self.lora_A = nn.ParameterDict(
            {s: nn.Parameter(w.new_empty(r, self.in_features)) for s, r in ranks.items()}
        )
        self.lora_B = nn.ParameterDict(
            {s: nn.Parameter(w.new_zeros(self.rows(s), r)) for s, r in ranks.items()}
        )
        if init:
            for a in self.lora_A.values():
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as PEFT and nn.Linear initialise
        self.lora_dropout = Dropout(dropout)
        self.merged = False

    def rows(self, name: str) -> int:
        start, stop = self.parts[name]
        return stop - start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)  # [..., out]
        if self.merged or not self.lora_A:
            return y
        h = self.lora_dropout(x)
        # Added in place (the base's backward does not need y): no full-width delta buffer; the scale is
        # applied to the narrow [..., r] tensor.
        for name, a in self.lora_A.items():
            start, stop = self.parts[name]
            y[..., start:stop] += F.linear(F.linear(h, a) * self.scales[name], self.lora_B[name])
        return y

    def delta_weight(self, name: str) -> torch.Tensor:
        """scale * B A in fp32: what merging adds to rows start:stop of the weight."""
        a, b = self.lora_A[name].float(), self.lora_B[name].float()
        return (b @ a) * self.scales[name]

    @torch.no_grad()
    def merge(self) -> None:
        """Fold every update into the weight (checked first: a non-finite update leaves it untouched,
        as PEFT's safe_merge)."""
        if self.merged:
            return
        deltas = {name: self.delta_weight(name) for name in self.lora_A}
        for name, delta in deltas.items():
            if not torch.isfinite(delta).all():
                raise T2TError(f"LoRA update of slice {name!r} is not finite; the weights were not merged")
        for name, delta in deltas.items():
            start, stop = self.parts[name]
            self.weight[start:stop] += delta.to(self.weight.dtype)
        self.merged = True

    def extra_repr(self) -> str:
        ranks = ", ".join(f"{s}: r={a.shape[0]}" for s, a in self.lora_A.items())
        return f"in_features={self.in_features}, out_features={self.out_features}, lora=({ranks})"


def plain_linear(layer: nn.Linear) -> nn.Linear:
    """An nn.Linear holding `layer`'s weight and bias Parameters (the same objects, nothing copied)."""
    linear = nn.Linear.__new__(nn.Linear)
    nn.Module.__init__(linear)
    linear.in_features, linear.out_features = layer.in_features, layer.out_features
    linear.weight, linear.bias = layer.weight, layer.bias
    return linear
