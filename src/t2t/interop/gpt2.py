"""GPT-2 (GPT2LMHeadModel, GPT2Model, and GPT2DoubleHeadsModel for multiple choice).
Its Conv1D layers store weights as [in, out]: transposed here."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.errors import CheckpointError
from t2t.interop.family import Family, head_from_hf, head_to_hf, require, special_ids, unsupported
from t2t.interop.rules import Rule

_HEAD_CLASSES = {"lm": "GPT2LMHeadModel", "multiple-choice": "GPT2DoubleHeadsModel"}
_ACTS = {
    "gelu_new": "gelu_new",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
    "gelu_pytorch_tanh": "gelu_new",
}


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    unsupported(
        hf,
        "GPT-2",
        {
            "activation_function": tuple(_ACTS),
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "add_cross_attention": False,
        },
    )
    d_model = require(hf, "n_embd", "GPT-2")
    head = head_from_hf(hf, _HEAD_CLASSES, default="lm")
    if head["head"] == "multiple-choice":
        # GPT2DoubleHeadsModel's summary: the hidden state at the extract token, one linear unit, no activation.
        unsupported(
            hf, "GPT-2", {"summary_type": "cls_index", "summary_use_proj": True, "summary_activation": None}
        )
        head.update(num_labels=1, label_names=None)
    return ModelConfig(
        arch="decoder",
        vocab_size=require(hf, "vocab_size", "GPT-2"),
        d_model=d_model,
        n_heads=require(hf, "n_head", "GPT-2"),
        d_ff=hf.get("n_inner") or 4 * d_model,
        n_encoder_layers=0,
        n_decoder_layers=require(hf, "n_layer", "GPT-2"),
        norm="layernorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        norm_position="pre",
        position="learned",
        max_positions=hf.get("n_positions", 1024),
        ffn=_ACTS[hf.get("activation_function", "gelu_new")],
        bias=True,
        dropout=hf.get("resid_pdrop", 0.1),
        attention_dropout=hf.get("attn_pdrop", 0.1),
        tie_embeddings=hf.get("tie_word_embeddings", True),
        **special_ids(hf, {"pad_id": None, "eos_id": 50256, "bos_id": 50256}),
        decoder_start_id=None,
        init_std=hf.get("initializer_range", 0.02),
        classifier_dropout=hf.get("summary_first_dropout") if head["head"] else None,
        **head,
    )


def config_to_hf(cfg: ModelConfig) -> dict[str, Any]:
    if cfg.task_head not in _HEAD_CLASSES:
        raise CheckpointError(f"GPT-2 with head={cfg.task_head!r} has no transformers class")
    extra: dict[str, Any] = {}
    if cfg.task_head == "multiple-choice":
        extra = {
            "summary_type": "cls_index",
            "summary_use_proj": True,
            "summary_proj_to_labels": True,
            "summary_activation": None,
            "summary_first_dropout": cfg.head_dropout,
        }
    return {
        **head_to_hf(cfg, _HEAD_CLASSES),
        **extra,
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.max_positions,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_decoder_layers,
        "n_head": cfg.n_heads,
        "n_inner": cfg.d_ff,
        "activation_function": cfg.ffn,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.attn_dropout,
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_range": cfg.init_std,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "pad_token_id": cfg.pad_id,
        "tie_word_embeddings": cfg.tie_embeddings,
        "scale_attn_weights": True,
    }


def _conv(t2t: str, hf: str) -> list[Rule]:
    return [
        Rule(f"{t2t}.weight", (f"{hf}.weight",), "decoder", transpose=True),
        Rule(f"{t2t}.bias", (f"{hf}.bias",), "decoder"),
    ]


def _norm(t2t: str, hf: str, stack: str | None = "decoder") -> list[Rule]:
    return [Rule(f"{t2t}.weight", (f"{hf}.weight",), stack), Rule(f"{t2t}.bias", (f"{hf}.bias",), stack)]


def rules(cfg: ModelConfig) -> list[Rule]:
    layer, hf = "decoder.layers.{i}", "transformer.h.{i}"
    out = [
        Rule("embed.weight", ("transformer.wte.weight",)),
        Rule("decoder.positions.table.weight", ("transformer.wpe.weight",)),
        *_norm(f"{layer}.self_norm", f"{hf}.ln_1"),
        *_conv(f"{layer}.self_attn.qkv", f"{hf}.attn.c_attn"),
        *_conv(f"{layer}.self_attn.out", f"{hf}.attn.c_proj"),
        *_norm(f"{layer}.ffn_norm", f"{hf}.ln_2"),
        *_conv(f"{layer}.ffn.up", f"{hf}.mlp.c_fc"),
        *_conv(f"{layer}.ffn.down", f"{hf}.mlp.c_proj"),
        *_norm("decoder.final_norm", "transformer.ln_f", None),
    ]
    if not cfg.tie_embeddings:
        out.append(Rule("lm_head.weight", ("lm_head.weight",)))
    if cfg.task_head == "multiple-choice":
        out += [
            Rule("classifier.weight", ("multiple_choice_head.summary.weight",)),
            Rule("classifier.bias", ("multiple_choice_head.summary.bias",)),
        ]
    return out


FAMILY = Family(
    name="gpt2",
    model_types=("gpt2",),
    architecture="GPT2LMHeadModel",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    rules=rules,
    prefix="transformer.",
    base_markers=("wte.", "wpe.", "h.", "ln_f."),
    ignored=(r"\.attn\.(bias|masked_bias)$", r"^lm_head\.weight$"),
)
