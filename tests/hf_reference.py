"""Tiny random-initialised Hugging Face models, built from configs (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import transformers as tf

_T5 = dict(
    vocab_size=128,
    d_model=32,
    d_kv=8,
    d_ff=64,
    num_layers=2,
    num_decoder_layers=3,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=20,
    dropout_rate=0.0,
    decoder_start_token_id=0,
)
_BERT = dict(
    vocab_size=128,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
_GPT2 = dict(
    vocab_size=128,
    n_embd=32,
    n_layer=2,
    n_head=4,
    n_positions=64,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    bos_token_id=127,
    eos_token_id=127,
)
_LLAMA = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

# name -> (factory, kind): kind says which inputs the model takes.
REFERENCES: dict[str, tuple[Callable[[], torch.nn.Module], str]] = {
    "t5": (lambda: tf.T5ForConditionalGeneration(tf.T5Config(**_T5)), "seq2seq"),
    "t5-v1_1": (
        lambda: tf.T5ForConditionalGeneration(
            tf.T5Config(**_T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        ),
        "seq2seq",
    ),
    "t5-gated-silu": (
        lambda: tf.T5ForConditionalGeneration(
            tf.T5Config(**_T5, feed_forward_proj="gated-silu", tie_word_embeddings=False)
        ),
        "seq2seq",
    ),
    "mt5": (
        lambda: tf.MT5ForConditionalGeneration(
            tf.MT5Config(**_T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        ),
        "seq2seq",
    ),
    "bert-pretraining": (lambda: tf.BertForPreTraining(tf.BertConfig(**_BERT)), "bert"),
    "bert-mlm": (lambda: tf.BertForMaskedLM(tf.BertConfig(**_BERT)), "bert"),
    "bert-model": (lambda: tf.BertModel(tf.BertConfig(**_BERT)), "bert"),
    "gpt2": (lambda: tf.GPT2LMHeadModel(tf.GPT2Config(**_GPT2)), "causal"),
    "llama-gqa": (lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**_LLAMA, num_key_value_heads=2)), "causal"),
    "llama-mqa-tied": (
        lambda: tf.LlamaForCausalLM(
            tf.LlamaConfig(**_LLAMA, num_key_value_heads=1, tie_word_embeddings=True, rope_theta=500000.0)
        ),
        "causal",
    ),
}


def reference(name: str, seed: int = 0) -> tuple[torch.nn.Module, str]:
    factory, kind = REFERENCES[name]
    torch.manual_seed(seed)
    model = factory().eval()
    if name.startswith("t5") or name == "mt5":
        # HF initialises T5 layer norms to 1; randomise them so the test sees every weight's role.
        with torch.no_grad():
            for module_name, param in model.named_parameters():
                if "layer_norm" in module_name:
                    param.uniform_(0.5, 1.5)
    return model, kind
