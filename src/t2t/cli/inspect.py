"""`t2t inspect MODEL`: the architecture, parameter counts per part and FLOPs per token of a preset, a
config file or a checkpoint directory. The model is built on PyTorch's meta device, so nothing is
allocated or read but the config, and a large preset inspects as fast as a tiny one.

FLOPs follow Kaplan et al. (2020), "Scaling laws for neural language models", table 1: a forward pass
costs 2 FLOPs per parameter a token goes through (a multiply and an add) plus 2 x n_layers x n_ctx x
d_attn for the attention scores and the weighted values; training (forward + backward) costs 3 x that.
Unlike their total, the d_model x vocab output projection is counted (for small models it dominates).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2t.cli.common import example_epilog, positive_int
from t2t.errors import CheckpointError, ConfigError
from t2t.utils.io import user_path

EXAMPLE = (
    "t2t inspect t5-small",
    "t2t inspect gpt2 --context 1024 --json",
    "python -c \"import t2t; t2t.preset('llama-tiny').save('llama.yaml')\" && t2t inspect llama.yaml",
)
EMBEDDING_MODULES = ("embed", "positions", "token_types", "relative_bias", "embed_norm")
SEQUENCE_HEADS = ("pooler", "nsp")  # run once per sequence, not per token
PER_SEQUENCE_HEADS = ("classification", "regression", "multiple-choice")  # their classifier too
DEFAULT_CONTEXT = 512


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a model's architecture, parameter counts per part and FLOPs per token",
        description="Print the architecture of MODEL (a preset name, a config file in YAML/JSON, t2t's or "
        "Hugging Face's, or a checkpoint directory), its parameters per part (embeddings, encoder, "
        "decoder, heads; total and non-embedding) and its FLOPs per token for a forward pass and for "
        "training (Kaplan et al. 2020: forward = 2 x N + 2 x n_layers x n_ctx x d_attn, training = 3 x "
        "forward). No weights are read or allocated.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="preset name, config file or checkpoint directory")
    p.add_argument(
        "--context",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"n_ctx, the tokens attended to, for the FLOPs (max_positions; T5: {DEFAULT_CONTEXT})",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(handler=run)


# ---- where the config comes from ------------------------------------------------------------------------
def _from_hf_config(path: Path) -> Any:
    from t2t.interop.hf import config_from_hf, read_hf_config

    return config_from_hf(read_hf_config(path.parent), str(path))


def _load_file(path: Path) -> Any:
    """ModelConfig.load, its message kept to one line (a YAML parser error spans several)."""
    from t2t.config import ModelConfig

    try:
        return ModelConfig.load(path)
    except ConfigError as err:
        raise ConfigError(" ".join(str(err).split())) from None


def load_config(spec: str) -> tuple[Any, str]:
    """(ModelConfig, what it is) for a preset name, a config file or a checkpoint directory."""
    from t2t.hub import T2T_CONFIG
    from t2t.presets import preset

    path = user_path(spec)
    if path.is_dir():
        if (path / T2T_CONFIG).is_file():
            return _load_file(path / T2T_CONFIG), f"t2t checkpoint {path}"
        if (path / "config.json").is_file():
            return _from_hf_config(path / "config.json"), f"Hugging Face checkpoint {path}"
        raise CheckpointError(f"{path}: neither {T2T_CONFIG} nor config.json; not a model checkpoint")
    if path.is_file():
        if path.suffix == ".json" and "model_type" in _json_keys(path):
            return _from_hf_config(path), f"Hugging Face config {path}"
        return _load_file(path), f"config file {path}"
    if "/" in spec or "\\" in spec or path.suffix in (".json", ".yaml", ".yml"):
        raise ConfigError(
            f"{spec}: no such file or directory; give a preset name, a config file or a checkpoint"
        )
    return preset(spec), f"preset {spec}"  # an unknown name: ConfigError with the closest preset


def _json_keys(path: Path) -> set[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    return set(data) if isinstance(data, dict) else set()


# ---- counting --------------------------------------------------------------------------------------------
@dataclass
class Counts:
    parts: dict[str, int]  # embeddings / encoder / decoder / heads
    per_token_heads: int  # head parameters every token goes through (MLM transform, tagger, lm_head)
    total: int
    lm_head: bool  # an untied output projection (a parameter of its own)

    @property
    def non_embedding(self) -> int:
        return self.total - self.parts["embeddings"]


def _part(name: str) -> str:
    top, _, rest = name.partition(".")
    second = rest.split(".", 1)[0]
    if top in EMBEDDING_MODULES or (top in ("encoder", "decoder") and second in EMBEDDING_MODULES):
        return "embeddings"
    return top if top in ("encoder", "decoder") else "heads"


def count_parameters(model: Any) -> Counts:
    """Parameters per part; a tied weight is counted once (where it is first named: the embedding)."""
    parts = dict.fromkeys(("embeddings", "encoder", "decoder", "heads"), 0)
    per_token = 0
    per_sequence = model.config.task_head in PER_SEQUENCE_HEADS
    for name, param in model.named_parameters():
        part = _part(name)
        parts[part] += param.numel()
        top = name.split(".", 1)[0]
        if part == "heads" and top not in SEQUENCE_HEADS and not (per_sequence and top == "classifier"):
            per_token += param.numel()
    names = {name for name, _ in model.named_parameters()}
    return Counts(parts, per_token, sum(parts.values()), "lm_head.weight" in names)


def flops_per_token(cfg: Any, counts: Counts, context: int) -> dict[str, dict[str, int]]:
    """Forward and training FLOPs per token of each stack, by the rule in this module's docstring."""
    d_attn = cfg.n_heads * cfg.dim_head
    lm = cfg.task_head in ("lm", "pretraining")
    # the vocabulary projection: a parameter when untied (lm_head, already in per_token_heads), else tied
    projection = cfg.d_model * cfg.vocab_size if lm and not counts.lm_head else 0
    head = counts.per_token_heads + projection
    out: dict[str, dict[str, int]] = {}
    if cfg.has_encoder:
        forward = 2 * counts.parts["encoder"] + 2 * cfg.n_encoder_layers * context * d_attn
        if not cfg.has_decoder:
            forward += 2 * head
        out["encoder"] = {"forward": forward, "training": 3 * forward}
    if cfg.has_decoder:
        layers = cfg.n_decoder_layers
        attention = 2 * layers * context * d_attn * (2 if cfg.has_encoder else 1)  # + cross-attention
        forward = 2 * counts.parts["decoder"] + attention + 2 * head
        out["decoder"] = {"forward": forward, "training": 3 * forward}
    return out


def inspect_model(cfg: Any, context: int | None = None) -> dict[str, Any]:
    """Architecture, parameter counts and FLOPs of cfg as one JSON-ready dict."""
    import torch

    from t2t.model.build import model_class

    with torch.device("meta"):
        model = model_class(cfg)(cfg)
    counts = count_parameters(model)
    n_ctx = context or (cfg.max_positions if cfg.position != "t5-relative" else DEFAULT_CONTEXT)
    return {
        "architecture": _architecture(cfg),
        "parameters": {**counts.parts, "total": counts.total, "non_embedding": counts.non_embedding},
        "flops_per_token": flops_per_token(cfg, counts, n_ctx),
        "context": n_ctx,
        "rule": "forward = 2 x N + 2 x n_layers x n_ctx x d_attn (Kaplan et al. 2020; N: parameters a "
        "token goes through, d_model x vocab output projection included); training = 3 x forward",
    }


def _architecture(cfg: Any) -> dict[str, Any]:
    return {
        "arch": cfg.arch,
        "head": cfg.task_head,
        "vocab_size": cfg.vocab_size,
        "d_model": cfg.d_model,
        "encoder_layers": cfg.n_encoder_layers if cfg.has_encoder else 0,
        "decoder_layers": cfg.n_decoder_layers if cfg.has_decoder else 0,
        "heads": cfg.n_heads,
        "kv_heads": cfg.kv_heads,
        "head_dim": cfg.dim_head,
        "d_ff": cfg.d_ff,
        "ffn": cfg.ffn,
        "norm": f"{cfg.norm} ({cfg.norm_position}-LN)",
        "position": cfg.position,
        "max_positions": cfg.max_positions if cfg.position != "t5-relative" else None,
        "tie_embeddings": cfg.tie_embeddings,
    }


# ---- printing --------------------------------------------------------------------------------------------
def _si(value: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} "


def render(info: dict[str, Any], source: str) -> str:
    a, p = info["architecture"], info["parameters"]
    attention = (
        "multi-head"
        if a["kv_heads"] == a["heads"]
        else ("multi-query" if a["kv_heads"] == 1 else "grouped-query")
    )
    layers = {"encoder-decoder": f"{a['encoder_layers']} encoder + {a['decoder_layers']} decoder layers"}.get(
        a["arch"], f"{a['encoder_layers'] or a['decoder_layers']} layers"
    )
    lines = [
        f"{source}: {a['arch']} transformer, head {a['head']}",
        f"  {layers}, d_model {a['d_model']}, d_ff {a['d_ff']} ({a['ffn']}), vocabulary {a['vocab_size']:,}",
        f"  attention: {a['heads']} heads x {a['head_dim']} ({attention}, {a['kv_heads']} key/value heads)",
        f"  {a['norm']}, positions {a['position']}"
        + (f" (max {a['max_positions']:,})" if a["max_positions"] else "")
        + f", embeddings {'tied' if a['tie_embeddings'] else 'untied'}",
        "",
        "parameters",
    ]
    for part in ("embeddings", "encoder", "decoder", "heads"):
        if p[part]:
            lines.append(f"  {part:<14}{p[part]:>16,}")
    lines += [f"  {'total':<14}{p['total']:>16,}", f"  {'non-embedding':<14}{p['non_embedding']:>16,}", ""]
    lines += [f"FLOPs per token at n_ctx = {info['context']:,}", f"  rule: {info['rule']}"]
    names = {"encoder": "encoder (per input token)", "decoder": "decoder (per target token)"}
    if "encoder" not in info["flops_per_token"] or "decoder" not in info["flops_per_token"]:
        names = {"encoder": "per token", "decoder": "per token"}
    for stack, flops in info["flops_per_token"].items():
        lines.append(
            f"  {names[stack]:<28} forward {_si(flops['forward'])}FLOP   training {_si(flops['training'])}FLOP"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    cfg, source = load_config(args.model)
    info = inspect_model(cfg, args.context)
    print(json.dumps({"model": args.model, **info}, indent=2) if args.json else render(info, source))
    return 0
