"""BERT: BertForPreTraining / BertForMaskedLM / BertModel, and the fine-tuning classes
BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering, BertForMultipleChoice."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.interop.family import Family, head_from_hf, head_to_hf, require, special_ids, unsupported
from t2t.interop.rules import Rule

_HEAD_CLASSES = {
    "pretraining": "BertForPreTraining",
    "classification": "BertForSequenceClassification",
    "regression": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "span-qa": "BertForQuestionAnswering",
    "multiple-choice": "BertForMultipleChoice",
}

_ACTS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_new", "silu": "silu"}


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    unsupported(
        hf, "BERT", {"position_embedding_type": "absolute", "hidden_act": tuple(_ACTS), "is_decoder": False}
    )
    return ModelConfig(
        arch="encoder",
        vocab_size=require(hf, "vocab_size", "BERT"),
        d_model=require(hf, "hidden_size", "BERT"),
        n_heads=require(hf, "num_attention_heads", "BERT"),
        d_ff=require(hf, "intermediate_size", "BERT"),
        n_encoder_layers=require(hf, "num_hidden_layers", "BERT"),
        n_decoder_layers=0,
        norm="layernorm",
        norm_eps=hf.get("layer_norm_eps", 1e-12),
        norm_position="post",
        position="learned",
        max_positions=hf.get("max_position_embeddings", 512),
        ffn=_ACTS[hf.get("hidden_act", "gelu")],
        bias=True,
        dropout=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
        tie_embeddings=True,
        type_vocab_size=hf.get("type_vocab_size", 2),
        **special_ids(hf, {"pad_id": 0}),
        eos_id=None,
        bos_id=None,
        decoder_start_id=None,
        init_std=hf.get("initializer_range", 0.02),
        classifier_dropout=hf.get("classifier_dropout"),
        **head_from_hf(hf, _HEAD_CLASSES, default="pretraining"),
    )


def config_to_hf(cfg: ModelConfig) -> dict[str, Any]:
    return {
        **head_to_hf(cfg, _HEAD_CLASSES),
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_encoder_layers,
        "num_attention_heads": cfg.n_heads,
        "intermediate_size": cfg.d_ff,
        "hidden_act": cfg.ffn,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attn_dropout,
        "max_position_embeddings": cfg.max_positions,
        "type_vocab_size": cfg.type_vocab_size,
        "initializer_range": cfg.init_std,
        "layer_norm_eps": cfg.norm_eps,
        "pad_token_id": cfg.pad_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "classifier_dropout": cfg.classifier_dropout,
    }


def _linear(t2t: str, hf: tuple[str, ...], stack: str | None = None, optional: bool = False) -> list[Rule]:
    return [
        Rule(f"{t2t}.weight", tuple(f"{k}.weight" for k in hf), stack, optional=optional),
        Rule(f"{t2t}.bias", tuple(f"{k}.bias" for k in hf), stack, optional=optional),
    ]


def rules(cfg: ModelConfig) -> list[Rule]:
    layer, hf = "encoder.layers.{i}", "bert.encoder.layer.{i}"
    attn = f"{hf}.attention.self"
    return [
        Rule("embed.weight", ("bert.embeddings.word_embeddings.weight",)),
        Rule("encoder.positions.table.weight", ("bert.embeddings.position_embeddings.weight",)),
        Rule("encoder.token_types.weight", ("bert.embeddings.token_type_embeddings.weight",)),
        *_linear("encoder.embed_norm", ("bert.embeddings.LayerNorm",)),
        *_linear(f"{layer}.self_attn.qkv", (f"{attn}.query", f"{attn}.key", f"{attn}.value"), "encoder"),
        *_linear(f"{layer}.self_attn.out", (f"{hf}.attention.output.dense",), "encoder"),
        *_linear(f"{layer}.self_norm", (f"{hf}.attention.output.LayerNorm",), "encoder"),
        *_linear(f"{layer}.ffn.up", (f"{hf}.intermediate.dense",), "encoder"),
        *_linear(f"{layer}.ffn.down", (f"{hf}.output.dense",), "encoder"),
        *_linear(f"{layer}.ffn_norm", (f"{hf}.output.LayerNorm",), "encoder"),
        *_head_rules(cfg.task_head),
    ]


def _head_rules(head: str) -> list[Rule]:
    if head == "pretraining":  # headless BertModel / BertForMaskedLM checkpoints lack some of these
        return [
            *_linear("pooler.dense", ("bert.pooler.dense",), optional=True),
            *_linear("mlm.dense", ("cls.predictions.transform.dense",), optional=True),
            *_linear("mlm.norm", ("cls.predictions.transform.LayerNorm",), optional=True),
            Rule("mlm.bias", ("cls.predictions.bias",), optional=True),
            *_linear("nsp", ("cls.seq_relationship",), optional=True),
        ]
    pooler = (
        _linear("pooler.dense", ("bert.pooler.dense",))
        if head in ("classification", "regression", "multiple-choice")
        else []
    )
    return [*pooler, *_linear("classifier", ("qa_outputs" if head == "span-qa" else "classifier",))]


FAMILY = Family(
    name="bert",
    model_types=("bert",),
    architecture="BertForPreTraining (or a BERT fine-tuning class)",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    rules=rules,
    prefix="bert.",
    base_markers=("embeddings.", "encoder.", "pooler."),
    ignored=(r"position_ids$", r"^cls\.predictions\.decoder\.(weight|bias)$"),
    tied_copies=(
        ("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
        ("cls.predictions.decoder.bias", "cls.predictions.bias"),
    ),
)
