"""T5, T5 v1.1, Flan-T5 and mT5 (T5ForConditionalGeneration / MT5ForConditionalGeneration)."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.errors import CheckpointError
from t2t.interop.family import Family, require, special_ids
from t2t.interop.rules import Rule

_FFN_FROM_HF = {"relu": "relu", "gelu": "gelu", "gated-gelu": "gated-gelu", "gated-silu": "swiglu"}
_FFN_TO_HF = {v: k for k, v in _FFN_FROM_HF.items()}


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    ffn = hf.get("feed_forward_proj", "relu")
    if ffn not in _FFN_FROM_HF:
        raise CheckpointError(
            f"T5 checkpoint uses feed_forward_proj={ffn!r}; t2t supports {', '.join(_FFN_FROM_HF)}"
        )
    # transformers v5 stores T5's logit scaling as scale_decoder_outputs; older configs derive it from
    # tie_word_embeddings (T5 ties and scales, v1.1 / Flan-T5 do neither); mT5 never scales.
    tied = hf.get("tie_word_embeddings", True) is not False
    scale = hf.get("scale_decoder_outputs", tied) and hf.get("model_type") != "mt5"  # mT5 never scales
    num_layers = require(hf, "num_layers", "T5")
    return ModelConfig(
        arch="encoder-decoder",
        vocab_size=require(hf, "vocab_size", "T5"),
        d_model=require(hf, "d_model", "T5"),
        n_heads=require(hf, "num_heads", "T5"),
        head_dim=hf.get("d_kv", 64),
        d_ff=require(hf, "d_ff", "T5"),
        n_encoder_layers=num_layers,
        n_decoder_layers=hf.get("num_decoder_layers") or num_layers,
        norm="rmsnorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-6),
        norm_position="pre",
        position="t5-relative",
        relative_buckets=hf.get("relative_attention_num_buckets", 32),
        relative_max_distance=hf.get("relative_attention_max_distance", 128),
        ffn=_FFN_FROM_HF[ffn],
        bias=False,
        scale_attention=False,
        dropout=hf.get("dropout_rate", 0.1),
        tie_embeddings=tied,
        scale_tied_logits=tied and scale,
        **special_ids(hf, {"pad_id": 0, "eos_id": 1, "decoder_start_id": 0}),
        init="t5",
    )


def config_to_hf(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": cfg.vocab_size,
        "d_model": cfg.d_model,
        "d_kv": cfg.dim_head,
        "d_ff": cfg.d_ff,
        "num_layers": cfg.n_encoder_layers,
        "num_decoder_layers": cfg.n_decoder_layers,
        "num_heads": cfg.n_heads,
        "relative_attention_num_buckets": cfg.relative_buckets,
        "relative_attention_max_distance": cfg.relative_max_distance,
        "dropout_rate": cfg.dropout,
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_factor": 1.0,
        "feed_forward_proj": _FFN_TO_HF[cfg.ffn],
        "is_encoder_decoder": True,
        "use_cache": True,
        "pad_token_id": cfg.pad_id,
        "eos_token_id": cfg.eos_id,
        "decoder_start_token_id": cfg.decoder_start_id,
        "tie_word_embeddings": cfg.tie_embeddings,
        "scale_decoder_outputs": cfg.scale_tied_logits,
    }


def _attention(t2t: str, hf: str, stack: str, cross: bool) -> list[Rule]:
    if cross:
        return [
            Rule(f"{t2t}.q.weight", (f"{hf}.q.weight",), stack),
            Rule(f"{t2t}.kv.weight", (f"{hf}.k.weight", f"{hf}.v.weight"), stack),
            Rule(f"{t2t}.out.weight", (f"{hf}.o.weight",), stack),
        ]
    return [
        Rule(f"{t2t}.qkv.weight", (f"{hf}.q.weight", f"{hf}.k.weight", f"{hf}.v.weight"), stack),
        Rule(f"{t2t}.out.weight", (f"{hf}.o.weight",), stack),
    ]


def _ffn(t2t: str, hf: str, stack: str, gated: bool) -> list[Rule]:
    up = (f"{hf}.wi_0.weight", f"{hf}.wi_1.weight") if gated else (f"{hf}.wi.weight",)
    return [Rule(f"{t2t}.up.weight", up, stack), Rule(f"{t2t}.down.weight", (f"{hf}.wo.weight",), stack)]


def rules(cfg: ModelConfig) -> list[Rule]:
    gated = cfg.gated_ffn
    enc, dec = "encoder.layers.{i}", "decoder.block.{i}"
    out = [
        Rule("embed.weight", ("shared.weight",)),
        Rule(
            "encoder.relative_bias.table.weight",
            ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",),
        ),
        Rule(
            "decoder.relative_bias.table.weight",
            ("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",),
        ),
        Rule("encoder.final_norm.weight", ("encoder.final_layer_norm.weight",)),
        Rule("decoder.final_norm.weight", ("decoder.final_layer_norm.weight",)),
        *_attention(f"{enc}.self_attn", "encoder.block.{i}.layer.0.SelfAttention", "encoder", cross=False),
        Rule(f"{enc}.self_norm.weight", ("encoder.block.{i}.layer.0.layer_norm.weight",), "encoder"),
        *_ffn(f"{enc}.ffn", "encoder.block.{i}.layer.1.DenseReluDense", "encoder", gated),
        Rule(f"{enc}.ffn_norm.weight", ("encoder.block.{i}.layer.1.layer_norm.weight",), "encoder"),
        *_attention("decoder.layers.{i}.self_attn", f"{dec}.layer.0.SelfAttention", "decoder", cross=False),
        Rule("decoder.layers.{i}.self_norm.weight", (f"{dec}.layer.0.layer_norm.weight",), "decoder"),
        *_attention("decoder.layers.{i}.cross_attn", f"{dec}.layer.1.EncDecAttention", "decoder", cross=True),
        Rule("decoder.layers.{i}.cross_norm.weight", (f"{dec}.layer.1.layer_norm.weight",), "decoder"),
        *_ffn("decoder.layers.{i}.ffn", f"{dec}.layer.2.DenseReluDense", "decoder", gated),
        Rule("decoder.layers.{i}.ffn_norm.weight", (f"{dec}.layer.2.layer_norm.weight",), "decoder"),
    ]
    if not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return out


FAMILY = Family(
    name="t5",
    model_types=("t5", "mt5"),
    architecture="T5ForConditionalGeneration",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    rules=rules,
    ignored=(r"^(encoder|decoder)\.embed_tokens\.weight$", r"^lm_head\.weight$"),
    tied_copies=(
        ("encoder.embed_tokens.weight", "shared.weight"),
        ("decoder.embed_tokens.weight", "shared.weight"),
    ),
)
