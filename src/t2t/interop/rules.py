"""Declarative weight-name mapping between Hugging Face checkpoints and t2t state dicts.

Each family lists Rules: a t2t tensor is one HF tensor (maybe transposed, GPT-2's Conv1D) or several
HF tensors concatenated along the output dimension (q/k/v into one `qkv`, gate/up into one `up`).
One engine applies the rules in both directions, so loading and saving cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t2t.config import ModelConfig


@dataclass(frozen=True)
class Rule:
    t2t: str
    hf: tuple[str, ...]
    stack: str | None = None  # "encoder" / "decoder": `{i}` runs over that stack's layers
    transpose: bool = False  # GPT-2's Conv1D stores weights as [in, out]
    optional: bool = False  # absent from some HF classes (e.g. no pooler in BertForMaskedLM)


def _expand(rules: list[Rule], config: ModelConfig) -> list[Rule]:
    out: list[Rule] = []
    for rule in rules:
        if rule.stack is None:
            out.append(rule)
            continue
        n = config.n_encoder_layers if rule.stack == "encoder" else config.n_decoder_layers
        for i in range(n):
            out.append(
                Rule(
                    rule.t2t.format(i=i),
                    tuple(k.format(i=i) for k in rule.hf),
                    None,
                    rule.transpose,
                    rule.optional,
                )
            )
    return out


def _split_sizes(key: str, tensor: torch.Tensor, n: int, config: ModelConfig) -> list[int]:
    if ".qkv." in key:
        q, kv = config.n_heads * config.dim_head, config.kv_heads * config.dim_head
        return [q, kv, kv]
    return [tensor.shape[0] // n] * n


def hf_to_t2t(
    hf_state: dict[str, torch.Tensor], rules: list[Rule], config: ModelConfig
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Convert an HF state dict; return the t2t state and the t2t keys an optional rule could not fill."""
    state: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for rule in _expand(rules, config):
        if not all(k in hf_state for k in rule.hf):
            if rule.optional:
                missing.append(rule.t2t)
                continue
            absent = [k for k in rule.hf if k not in hf_state]
            raise KeyError(absent[0])
        parts = [hf_state[k].t() if rule.transpose else hf_state[k] for k in rule.hf]
        state[rule.t2t] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
    return state, missing


def t2t_to_hf(
    state: dict[str, torch.Tensor], rules: list[Rule], config: ModelConfig
) -> dict[str, torch.Tensor]:
    hf_state: dict[str, torch.Tensor] = {}
    for rule in _expand(rules, config):
        if rule.t2t not in state:
            if rule.optional:
                continue
            raise KeyError(rule.t2t)
        tensor = state[rule.t2t]
        parts = (
            [tensor]
            if len(rule.hf) == 1
            else list(tensor.split(_split_sizes(rule.t2t, tensor, len(rule.hf), config), dim=0))
        )
        for key, part in zip(rule.hf, parts, strict=True):
            hf_state[key] = (part.t() if rule.transpose else part).contiguous()
    return hf_state


def used_hf_keys(rules: list[Rule], config: ModelConfig) -> set[str]:
    return {k for rule in _expand(rules, config) for k in rule.hf}
