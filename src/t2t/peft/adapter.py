"""AdapterLinear: a sublayer's output projection followed by a residual bottleneck (Houlsby et al. 2019).

    h = x W^T + b;   y = h + up(gelu(down(h)))        down: [bottleneck, out], up: [out, bottleneck]

Placed on attention's `out` and the feed-forward's `down`, this is Houlsby's adapter after attention and
after the feed-forward, before the block's dropout and residual add. `up` starts at zero, so a new adapter
computes what the base did. Like LoRALinear it takes over the linear's own Parameters, keeping their
names; the new tensors are `adapter_down.*` and `adapter_up.*`. (An adapter is not linear in h, so it
cannot be merged into the weight; Hugging Face PEFT has no Houlsby adapter of this form to exchange with.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AdapterLinear(nn.Linear):
    def __init__(self, base: nn.Linear, bottleneck: int, *, init: bool = True) -> None:
        """init=False allocates the adapter without initialising it (weights to be loaded)."""
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias  # the base's own Parameters, shared
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        if init:
            self.adapter_down = nn.Linear(self.out_features, bottleneck, **kw)  # nn.Linear's own init
            self.adapter_up = nn.Linear(bottleneck, self.out_features, **kw)
            with torch.no_grad():
                self.adapter_down.bias.zero_()
                self.adapter_up.weight.zero_()
                self.adapter_up.bias.zero_()
        else:
            self.adapter_down = nn.utils.skip_init(nn.Linear, self.out_features, bottleneck, **kw)
            self.adapter_up = nn.utils.skip_init(nn.Linear, bottleneck, self.out_features, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, self.weight, self.bias)  # [..., out]
        return h + self.adapter_up(F.gelu(self.adapter_down(h)))
