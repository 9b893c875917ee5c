"""Llama (LlamaForCausalLM, LlamaModel): RMSNorm, rotary positions, SwiGLU, grouped-query attention."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.errors import CheckpointError
from t2t.interop.family import Family, require, special_ids, unsupported
from t2t.interop.rules import Rule


def _rope_theta(hf: dict[str, Any]) -> float:
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    rope_type = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    if rope_type not in ("default", None):
        raise CheckpointError(f"Llama checkpoint uses rope_type={rope_type!r}; t2t supports plain RoPE only")
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    unsupported(hf, "Llama", {"hidden_act": "silu", "pretraining_tp": 1})
    attn_bias, mlp_bias = hf.get("attention_bias", False), hf.get("mlp_bias", False)
    if attn_bias != mlp_bias:
        raise CheckpointError("Llama checkpoint with attention_bias != mlp_bias: t2t has one bias switch")
    n_heads = require(hf, "num_attention_heads", "Llama")
    return ModelConfig(
        arch="decoder",
        vocab_size=require(hf, "vocab_size", "Llama"),
        d_model=require(hf, "hidden_size", "Llama"),
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        head_dim=hf.get("head_dim"),
        d_ff=require(hf, "intermediate_size", "Llama"),
        n_encoder_layers=0,
        n_decoder_layers=require(hf, "num_hidden_layers", "Llama"),
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        norm_position="pre",
        position="rope",
        rope_theta=_rope_theta(hf),
        max_positions=hf.get("max_position_embeddings", 2048),
        ffn="swiglu",
        bias=bool(attn_bias),
        dropout=0.0,
        attention_dropout=hf.get("attention_dropout", 0.0),
        tie_embeddings=hf.get("tie_word_embeddings", False),
        **special_ids(hf, {"pad_id": None, "bos_id": 1, "eos_id": 2}),
        decoder_start_id=None,
        init_std=hf.get("initializer_range", 0.02),
    )


def config_to_hf(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_ff,
        "num_hidden_layers": cfg.n_decoder_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.dim_head,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_positions,
        "rms_norm_eps": cfg.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": cfg.bias,
        "mlp_bias": cfg.bias,
        "attention_dropout": cfg.attn_dropout,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": cfg.tie_embeddings,
        "pad_token_id": cfg.pad_id,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
    }


def _linear(t2t: str, hf: tuple[str, ...], bias: bool) -> list[Rule]:
    out = [Rule(f"{t2t}.weight", tuple(f"{k}.weight" for k in hf), "decoder")]
    if bias:
        out.append(Rule(f"{t2t}.bias", tuple(f"{k}.bias" for k in hf), "decoder"))
    return out


def rules(cfg: ModelConfig) -> list[Rule]:
    layer, hf = "decoder.layers.{i}", "model.layers.{i}"
    attn, mlp, b = f"{hf}.self_attn", f"{hf}.mlp", cfg.bias
    out = [
        Rule("embed.weight", ("model.embed_tokens.weight",)),
        *_linear(f"{layer}.self_attn.qkv", (f"{attn}.q_proj", f"{attn}.k_proj", f"{attn}.v_proj"), b),
        *_linear(f"{layer}.self_attn.out", (f"{attn}.o_proj",), b),
        *_linear(f"{layer}.ffn.up", (f"{mlp}.gate_proj", f"{mlp}.up_proj"), b),
        *_linear(f"{layer}.ffn.down", (f"{mlp}.down_proj",), b),
        Rule(f"{layer}.self_norm.weight", (f"{hf}.input_layernorm.weight",), "decoder"),
        Rule(f"{layer}.ffn_norm.weight", (f"{hf}.post_attention_layernorm.weight",), "decoder"),
        Rule("decoder.final_norm.weight", ("model.norm.weight",)),
    ]
    if not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return out


FAMILY = Family(
    name="llama",
    model_types=("llama",),
    architecture="LlamaForCausalLM",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    rules=rules,
    prefix="model.",
    base_markers=("embed_tokens.", "layers.", "norm."),
    ignored=(r"rotary_emb\.inv_freq$", r"^lm_head\.weight$"),
)
