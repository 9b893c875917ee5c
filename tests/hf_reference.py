"""Tiny random-initialised Hugging Face models, built from configs (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import transformers as tf

from helpers import padded_batch

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
BERT_FIELDS = dict(
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

# Flan-T5's shape in miniature: gated-GELU, untied LM head, heads narrower than d_model / num_heads
# (flan-t5-small: 6 heads of 64 in d_model 512), T5's usual 32 buckets up to distance 128.
_FLAN_T5 = {
    **_T5,
    "num_heads": 6,
    "d_kv": 8,
    "d_ff": 48,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
}


def _t5(fields: dict, **extra) -> torch.nn.Module:
    return tf.T5ForConditionalGeneration(tf.T5Config(**fields, **extra))


# name -> (factory, kind): kind says which inputs the model takes.
REFERENCES: dict[str, tuple[Callable[[], torch.nn.Module], str]] = {
    "t5": (lambda: _t5(_T5), "seq2seq"),
    "t5-v1_1": (lambda: _t5(_T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False), "seq2seq"),
    "t5-gated-silu": (lambda: _t5(_T5, feed_forward_proj="gated-silu", tie_word_embeddings=False), "seq2seq"),
    "flan-t5": (lambda: _t5(_FLAN_T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False), "seq2seq"),
    "mt5": (
        lambda: tf.MT5ForConditionalGeneration(
            tf.MT5Config(**_T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        ),
        "seq2seq",
    ),
    "bert-pretraining": (lambda: tf.BertForPreTraining(tf.BertConfig(**BERT_FIELDS)), "bert"),
    "bert-mlm": (lambda: tf.BertForMaskedLM(tf.BertConfig(**BERT_FIELDS)), "bert"),
    "bert-model": (lambda: tf.BertModel(tf.BertConfig(**BERT_FIELDS)), "bert"),
    "gpt2": (lambda: tf.GPT2LMHeadModel(tf.GPT2Config(**_GPT2)), "causal"),
    "llama-gqa": (lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**_LLAMA, num_key_value_heads=2)), "causal"),
    "llama-mqa-tied": (
        lambda: tf.LlamaForCausalLM(
            tf.LlamaConfig(**_LLAMA, num_key_value_heads=1, tie_word_embeddings=True, rope_theta=500000.0)
        ),
        "causal",
    ),
}

# References whose published checkpoints have an LM head of their own. transformers 5.x forces
# tie_word_embeddings=True on every T5Config / MT5Config (it keeps the flag only as
# scale_decoder_outputs), so these models come out of their constructor tied; `reference` unties them.
UNTIED_T5 = frozenset({"t5-v1_1", "t5-gated-silu", "flan-t5", "mt5"})


def _untie_lm_head(model: torch.nn.Module) -> None:
    """Give the model an lm_head with its own random values, as a real v1.1 / Flan-T5 / mT5 checkpoint
    has. transformers keeps both tensors when it saves, and on loading leaves two tensors that differ
    untied, so its own forward, generate and save / load all use this head."""
    shared = model.get_input_embeddings().weight
    head = torch.randn_like(shared) * shared.shape[1] ** -0.5
    model.lm_head.weight = torch.nn.Parameter(head)
    assert model.lm_head.weight.data_ptr() != shared.data_ptr()


def reference(name: str, seed: int = 0) -> tuple[torch.nn.Module, str]:
    factory, kind = REFERENCES[name]
    torch.manual_seed(seed)
    model = factory().eval()
    if name in UNTIED_T5:
        _untie_lm_head(model)
    if kind == "seq2seq":
        # HF initialises T5 layer norms to 1; randomise them so the test sees every weight's role.
        with torch.no_grad():
            for module_name, param in model.named_parameters():
                if "layer_norm" in module_name:
                    param.uniform_(0.5, 1.5)
    return model, kind


# The references whose forward computes a loss from `reference_inputs`: BertModel has no head.
WITH_LOSS = frozenset(REFERENCES) - {"bert-model"}


def mlm_labels(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked-LM labels as a pre-training batch has them: some real positions per row, -100 elsewhere
    (padding included)."""
    chosen = (torch.rand(ids.shape) < 0.4) & mask.bool()
    chosen[:, 0] = True  # every row predicts at least one token
    return ids.masked_fill(~chosen, -100)


def reference_inputs(
    name: str, seed: int, batch: int = 3, length: int = 11, target_length: int = 6
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Padded forward arguments for one reference (the same names for transformers and t2t), with labels
    wherever the model computes a loss, and the mask of the output positions to compare (outputs at
    padded inputs are unspecified in both)."""
    kind = REFERENCES[name][1]
    torch.manual_seed(100 + seed)
    ids, mask = padded_batch(128, batch=batch, length=length)
    if kind == "seq2seq":
        targets, target_mask = padded_batch(128, batch=batch, length=target_length)
        labels = targets.masked_fill(target_mask == 0, -100)
        args = dict(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=target_mask)
        return args, mask.new_ones(batch, target_length)
    if kind == "bert":
        types = (torch.arange(length) >= length // 2).long().expand(batch, length)
        args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
        if name in WITH_LOSS:
            args["labels"] = mlm_labels(ids, mask)
        if name == "bert-pretraining":
            args["next_sentence_label"] = torch.arange(batch) % 2
        return args, mask
    return dict(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)), mask


def compared_outputs(expected, got) -> tuple[torch.Tensor, torch.Tensor]:
    """(transformers', t2t's) main output: LM / MLM logits, or the last hidden state of BertModel.
    `got` may also be a transformers output (a reloaded model), which names its logits as `expected`."""
    for name in ("logits", "prediction_logits"):
        if getattr(expected, name, None) is not None:
            ours = getattr(got, name, None)
            return getattr(expected, name), ours if ours is not None else got.logits
    return expected.last_hidden_state, got.last_hidden_state


def max_gap(a: torch.Tensor, b: torch.Tensor, real: torch.Tensor) -> float:
    """Largest absolute difference over the real (unpadded) positions."""
    assert a.shape == b.shape
    return float(((a - b).abs() * real.bool()[..., None]).max())
