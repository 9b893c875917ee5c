"""PeftConfig: which parameter-efficient method, where, and how big (the `peft` section of a training
config, and what an adapter directory records).

Targets are the user's words for the parts of t2t's shared blocks, whatever the family:

    q k v     the query / key / value slices of self-attention's fused qkv matrix, and cross-attention's
              q matrix and the key / value slices of its fused kv matrix (as PEFT's `q`, `v` on T5)
    o         every attention's output projection
    ffn_in    the feed-forward input projection (both halves of a gated [gate; up] matrix)
    gate up   one half of a gated feed-forward's [gate; up] matrix (T5 v1.1's wi_0 / wi_1, Llama's
              gate_proj / up_proj)
    ffn_out   the feed-forward output projection
    attention (q, k, v, o), ffn (ffn_in, ffn_out), all (both)

LoRA (Hu et al. 2021) adds scale * B A x to each chosen slice (scale = alpha / r); the bottleneck adapter
(Houlsby et al. 2019) adds up(act(down(h))) to the output h of each chosen output projection, so its
targets are `o` (after attention) and `ffn_out` (after the feed-forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from t2t.configbase import StrictConfig, check_range, closest
from t2t.errors import ConfigError

PARTS = ("q", "k", "v", "o", "ffn_in", "gate", "up", "ffn_out")
GROUPS = {
    "attention": ("q", "k", "v", "o"),
    "ffn": ("ffn_in", "ffn_out"),
    "all": ("q", "k", "v", "o", "ffn_in", "ffn_out"),
}
DEFAULT_TARGETS = {"lora": ["q", "v"], "adapter": ["o", "ffn_out"]}
ADAPTER_PARTS = ("o", "ffn_out")  # a bottleneck adapter follows a sublayer's output projection
# Modules of a task head, trained in full beside the adapter (PEFT's modules_to_save): a new head starts
# from scratch, so it has to learn.
HEAD_MODULES = ("classifier", "pooler")


@dataclass
class PeftConfig(StrictConfig):
    """`peft.method=lora peft.r=8 peft.alpha=16 peft.dropout=0.05 peft.target=[q,v]`, or
    `peft.method=adapter peft.bottleneck=64`. The base weights are frozen; only the added parameters
    (and a task head's, and `modules_to_save`) train."""

    method: Literal["none", "lora", "adapter"] = "none"
    r: int = 8  # LoRA rank
    alpha: float = 16.0  # LoRA scale numerator: the update is (alpha / r) * B A
    dropout: float = 0.0  # LoRA: dropout on the input of A
    target: list[str] | None = None  # parts (above); None: q, v for LoRA, o, ffn_out for adapters
    bottleneck: int = 64  # adapter: hidden width
    # Top-level modules trained in full as well (e.g. [embed] when new tokens were added); None: the task
    # head of a model that has one (classifier, pooler).
    modules_to_save: list[str] | None = None

    def validate(self) -> None:
        check_range("r", self.r, 1)
        check_range("alpha", self.alpha, 0.0)
        check_range("dropout", self.dropout, 0.0, 1.0)
        check_range("bottleneck", self.bottleneck, 1)
        if self.dropout >= 1.0:
            raise ConfigError(f"dropout={self.dropout} drops everything; use a value below 1")
        for name in self.target or []:
            if name not in PARTS and name not in GROUPS:
                raise ConfigError(
                    f"target: {name!r} is not a part{closest(name, [*PARTS, *GROUPS])}; "
                    f"parts: {', '.join(PARTS)}; groups: {', '.join(GROUPS)}"
                )
        if self.target is not None and not self.target:
            raise ConfigError("target=[] chooses nothing to adapt; name parts, e.g. [q, v]")
        if self.method == "adapter":
            wrong = [p for p in self.parts if p not in ADAPTER_PARTS]
            if wrong:
                raise ConfigError(
                    f"target: method=adapter puts a bottleneck after a sublayer's output, so its targets are "
                    f"o and ffn_out, not {wrong[0]!r}"
                )

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    @property
    def parts(self) -> list[str]:
        """The targets with groups expanded, in PARTS order."""
        names = self.target if self.target is not None else DEFAULT_TARGETS.get(self.method, [])
        chosen = {p for name in names for p in GROUPS.get(name, (name,))}
        return [p for p in PARTS if p in chosen]


__all__ = ["ADAPTER_PARTS", "GROUPS", "HEAD_MODULES", "PARTS", "PeftConfig"]
