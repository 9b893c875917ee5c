"""Named model shapes: the published T5 / BERT / GPT-2 / Llama sizes and a `tiny` of each family for tests."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.configbase import closest
from t2t.errors import ConfigError

_T5: dict[str, Any] = dict(
    arch="encoder-decoder",
    vocab_size=32128,
    norm="rmsnorm",
    norm_eps=1e-6,
    norm_position="pre",
    position="t5-relative",
    relative_buckets=32,
    relative_max_distance=128,
    ffn="relu",
    bias=False,
    scale_attention=False,
    dropout=0.1,
    tie_embeddings=True,
    scale_tied_logits=True,
    pad_id=0,
    eos_id=1,
    decoder_start_id=0,
    init="t5",
    head_dim=64,
)
# T5 v1.1 / Flan-T5 / mT5: gated-GELU feed-forward, LM head not tied to the embeddings.
_T5_V1_1: dict[str, Any] = {**_T5, "ffn": "gated-gelu", "tie_embeddings": False, "scale_tied_logits": False}

_BERT: dict[str, Any] = dict(
    arch="encoder",
    vocab_size=30522,
    n_decoder_layers=0,
    norm="layernorm",
    norm_eps=1e-12,
    norm_position="post",
    position="learned",
    max_positions=512,
    ffn="gelu",
    bias=True,
    dropout=0.1,
    tie_embeddings=True,
    type_vocab_size=2,
    pad_id=0,
    eos_id=None,
    bos_id=None,
    decoder_start_id=None,
)

_GPT2: dict[str, Any] = dict(
    arch="decoder",
    vocab_size=50257,
    n_encoder_layers=0,
    norm="layernorm",
    norm_eps=1e-5,
    norm_position="pre",
    position="learned",
    max_positions=1024,
    ffn="gelu_new",
    bias=True,
    dropout=0.1,
    tie_embeddings=True,
    pad_id=50256,
    eos_id=50256,
    bos_id=50256,
    decoder_start_id=None,
)

_LLAMA: dict[str, Any] = dict(
    arch="decoder",
    n_encoder_layers=0,
    norm="rmsnorm",
    norm_eps=1e-5,
    norm_position="pre",
    position="rope",
    rope_theta=10000.0,
    ffn="swiglu",
    bias=False,
    dropout=0.0,
    pad_id=0,
    bos_id=1,
    eos_id=2,
    decoder_start_id=None,
)

PRESETS: dict[str, dict[str, Any]] = {
    "t5-small": {
        **_T5,
        "d_model": 512,
        "d_ff": 2048,
        "n_heads": 8,
        "n_encoder_layers": 6,
        "n_decoder_layers": 6,
    },
    "t5-base": {
        **_T5,
        "d_model": 768,
        "d_ff": 3072,
        "n_heads": 12,
        "n_encoder_layers": 12,
        "n_decoder_layers": 12,
    },
    "t5-large": {
        **_T5,
        "d_model": 1024,
        "d_ff": 4096,
        "n_heads": 16,
        "n_encoder_layers": 24,
        "n_decoder_layers": 24,
    },
    "t5-v1_1-small": {
        **_T5_V1_1,
        "d_model": 512,
        "d_ff": 1024,
        "n_heads": 6,
        "n_encoder_layers": 8,
        "n_decoder_layers": 8,
    },
    "t5-v1_1-base": {
        **_T5_V1_1,
        "d_model": 768,
        "d_ff": 2048,
        "n_heads": 12,
        "n_encoder_layers": 12,
        "n_decoder_layers": 12,
    },
    # Flan-T5 is T5 v1.1's architecture, instruction-tuned.
    "flan-t5-small": {
        **_T5_V1_1,
        "d_model": 512,
        "d_ff": 1024,
        "n_heads": 6,
        "n_encoder_layers": 8,
        "n_decoder_layers": 8,
    },
    "flan-t5-base": {
        **_T5_V1_1,
        "d_model": 768,
        "d_ff": 2048,
        "n_heads": 12,
        "n_encoder_layers": 12,
        "n_decoder_layers": 12,
    },
    "mt5-small": {
        **_T5_V1_1,
        "vocab_size": 250112,
        "d_model": 512,
        "d_ff": 1024,
        "n_heads": 6,
        "n_encoder_layers": 8,
        "n_decoder_layers": 8,
    },
    "bert-base": {**_BERT, "d_model": 768, "d_ff": 3072, "n_heads": 12, "n_encoder_layers": 12},
    "bert-large": {**_BERT, "d_model": 1024, "d_ff": 4096, "n_heads": 16, "n_encoder_layers": 24},
    "gpt2": {**_GPT2, "d_model": 768, "d_ff": 3072, "n_heads": 12, "n_decoder_layers": 12},
    "gpt2-medium": {**_GPT2, "d_model": 1024, "d_ff": 4096, "n_heads": 16, "n_decoder_layers": 24},
    # SmolLM-135M's shapes: a small Llama with grouped-query attention (9 query heads share 3 key/value heads).
    "llama-small": {
        **_LLAMA,
        "vocab_size": 49152,
        "d_model": 576,
        "d_ff": 1536,
        "n_heads": 9,
        "n_kv_heads": 3,
        "n_decoder_layers": 30,
        "max_positions": 2048,
        "tie_embeddings": True,
    },
    # Tiny models for tests: every family, a few thousand parameters, still exercising every code path.
    "t5-tiny": {
        **_T5,
        "vocab_size": 128,
        "d_model": 32,
        "d_ff": 64,
        "n_heads": 4,
        "head_dim": 8,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "relative_buckets": 8,
        "relative_max_distance": 20,
    },
    "t5-v1_1-tiny": {
        **_T5_V1_1,
        "vocab_size": 128,
        "d_model": 32,
        "d_ff": 48,
        "n_heads": 4,
        "head_dim": 8,
        "n_encoder_layers": 2,
        "n_decoder_layers": 2,
        "relative_buckets": 8,
        "relative_max_distance": 20,
    },
    "bert-tiny": {
        **_BERT,
        "vocab_size": 128,
        "d_model": 32,
        "d_ff": 64,
        "n_heads": 4,
        "n_encoder_layers": 2,
        "max_positions": 64,
    },
    "gpt2-tiny": {
        **_GPT2,
        "vocab_size": 128,
        "d_model": 32,
        "d_ff": 64,
        "n_heads": 4,
        "n_decoder_layers": 2,
        "max_positions": 64,
        "pad_id": 127,
        "eos_id": 127,
        "bos_id": 127,
    },
    "llama-tiny": {
        **_LLAMA,
        "vocab_size": 128,
        "d_model": 32,
        "d_ff": 64,
        "n_heads": 4,
        "n_kv_heads": 2,
        "n_decoder_layers": 2,
        "max_positions": 64,
        "tie_embeddings": False,
    },
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The ModelConfig of a named preset, with optional field overrides."""
    if name not in PRESETS:
        raise ConfigError(
            f"unknown preset {name!r}{closest(name, PRESETS)}; known: {', '.join(preset_names())}"
        )
    return ModelConfig.from_dict({**PRESETS[name], **overrides})
