"""Weight initialisation: T5's fan-in scaled scheme, or N(0, init_std) as BERT, GPT-2 and Llama use.

T5 has no 1/sqrt(d) in attention; its init makes up for it by giving queries a std of
(d_model * head_dim)^-1/2. The fused qkv matrix is initialised slice by slice for that reason.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t2t.config import ModelConfig
from t2t.model.attention import Attention
from t2t.model.feedforward import FeedForward
from t2t.model.norms import RMSNorm
from t2t.model.positions import RelativePositionBias


@torch.no_grad()
def init_weights(model: nn.Module, config: ModelConfig) -> None:
    std = config.init_std
    t5 = config.init == "t5"
    residual_std = _residual_std(config)
    for module in model.modules():
        if isinstance(module, Attention):
            _init_attention(module, config, t5)
        elif isinstance(module, FeedForward):
            nn.init.normal_(module.up.weight, std=config.d_model**-0.5 if t5 else std)
            nn.init.normal_(module.down.weight, std=config.d_ff**-0.5 if t5 else residual_std)
            for bias in (module.up.bias, module.down.bias):
                if bias is not None:
                    nn.init.zeros_(bias)
        elif isinstance(module, RelativePositionBias):
            nn.init.normal_(module.table.weight, std=config.d_model**-0.5 if t5 else std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=1.0 if t5 else std)
        elif isinstance(module, (nn.LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    # Remaining plain linears (LM head, pooler, task heads) that no branch above owns.
    owned = {
        id(p) for m in model.modules() if isinstance(m, (Attention, FeedForward)) for p in m.parameters()
    }
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in owned:
            nn.init.normal_(module.weight, std=1.0 if t5 else std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _residual_std(config: ModelConfig) -> float:
    """GPT-2's residual scaling: projections that write into the residual stream start smaller in deep
    pre-LN stacks, so the stream's variance does not grow with depth."""
    if config.norm_position != "pre":
        return config.init_std
    return config.init_std / math.sqrt(2 * max(config.n_encoder_layers, config.n_decoder_layers))


def _init_attention(module: Attention, config: ModelConfig, t5: bool) -> None:
    d, hd, heads = config.d_model, config.dim_head, config.n_heads
    q_std = (d * hd) ** -0.5 if t5 else config.init_std
    kv_std = d**-0.5 if t5 else config.init_std
    out_std = (heads * hd) ** -0.5 if t5 else _residual_std(config)
    q_dim = heads * hd
    if module.cross:
        nn.init.normal_(module.q.weight, std=q_std)
        nn.init.normal_(module.kv.weight, std=kv_std)
    else:
        nn.init.normal_(module.qkv.weight[:q_dim], std=q_std)
        nn.init.normal_(module.qkv.weight[q_dim:], std=kv_std)
    nn.init.normal_(module.out.weight, std=out_std)
    for linear in (
        getattr(module, "qkv", None),
        getattr(module, "q", None),
        getattr(module, "kv", None),
        module.out,
    ):
        if linear is not None and linear.bias is not None:
            nn.init.zeros_(linear.bias)
