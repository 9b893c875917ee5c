"""Helpers for the generation tests: HF reference models whose greedy choices are clear, and tiny t2t
models with a real tokenizer for the text-level tests."""

from __future__ import annotations

from pathlib import Path

import torch

import t2t
from t2t.tokenizer import Tokenizer
from tokenizer_helpers import write_corpus

from hf_reference import reference

# Weight re-randomisation gain. transformers' init makes tiny random models nearly input-independent:
# with tied embeddings the residual stream predicts the input token again, so greedy output is one
# token repeated, and the top two logits are often within 1e-6 of each other (a comparison of
# argmaxes would then test rounding, not decoding). Weights N(0, gain^2 / fan_in) with gain 4 make
# every layer matter: outputs vary token to token and the top-two gaps along the paths are 1e-3 or more
# (the tests check the gap rather than trust it).
GAIN = 4.0
_TABLES = ("embed", "shared", "wte", "wpe", "relative_attention_bias", "table")


def spread_weights(model: torch.nn.Module, seed: int, gain: float = GAIN) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() != 2:
                continue
            std = 1.0 if any(t in name for t in _TABLES) else gain * param.shape[1] ** -0.5
            param.copy_(torch.randn(param.shape, generator=g) * std)


def hf_and_t2t(name: str, seed: int, directory: Path) -> tuple[torch.nn.Module, str, t2t.T2TModel]:
    """A transformers reference model (re-randomised as above) and the same weights loaded into t2t."""
    hf_model, kind = reference(name, seed)
    spread_weights(hf_model, seed)
    hf_model.save_pretrained(directory)
    return hf_model, kind, t2t.from_pretrained(directory)


def hf_generate(hf_model: torch.nn.Module, kind: str, *args, pad_id: int | None = None, **kwargs):
    """transformers' generate with what the tiny references need: an explicit cache for T5 (its
    generate sizes the cache by the encoder's layer count, which the asymmetric reference T5 breaks),
    and a pad id for the causal models."""
    if kind == "seq2seq":
        from transformers import DynamicCache, EncoderDecoderCache

        if kwargs.get("use_cache", True):
            kwargs["past_key_values"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
    else:
        kwargs["pad_token_id"] = pad_id
    with torch.no_grad():
        return hf_model.generate(*args, **kwargs)


def pad_after_eos(sequences: torch.Tensor, start: int, eos_ids: list[int], pad_id: int) -> torch.Tensor:
    """Every position after a row's first eos (from `start` on) set to pad_id. transformers' beam search
    fills that space with the eos id when pad_token_id is 0 (`pad or eos` on a tensor); t2t pads."""
    out = sequences.clone()
    for row in out:
        for i in range(start, len(row)):
            if int(row[i]) in eos_ids:
                row[i + 1 :] = pad_id
                break
    return out


def greedy_margin(scores: tuple[torch.Tensor, ...], finished: torch.Tensor | None = None) -> float:
    """The smallest gap between the best and second-best processed score over the steps of a greedy run
    (rows that had finished are skipped): below ~1e-4 the argmax would hinge on rounding."""
    gaps = []
    for step in scores:
        top = step.topk(2, dim=-1).values
        gaps.append(top[:, 0] - top[:, 1])
    gap = torch.stack(gaps)  # [steps, rows]
    gap = gap[torch.isfinite(gap)]
    return float(gap.min())


def left_padded(
    vocab: int, batch: int, length: int, pad_id: int, low: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random prompts left-padded to different lengths (row 0 full), as decoder-only models take them."""
    ids = torch.randint(low, vocab - 1, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, : min(length - 1, 2 * row)] = 0
    return ids.masked_fill(mask == 0, pad_id), mask


def right_padded(
    vocab: int, batch: int, length: int, pad_id: int, low: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = left_padded(vocab, batch, length, pad_id, low)
    return ids.flip(1), mask.flip(1)


def train_tokenizer(directory: Path, kind: str, vocab_size: int) -> Tokenizer:
    corpus = write_corpus(directory / "corpus.txt", lines=1500)
    return Tokenizer.train([corpus], kind=kind, vocab_size=vocab_size)


def tiny_model_for(tokenizer: Tokenizer, arch: str, seed: int = 0) -> t2t.T2TModel:
    """A small random model whose vocabulary fits the tokenizer (T5-like or GPT-2-like)."""
    torch.manual_seed(seed)
    if arch == "encoder-decoder":
        cfg = t2t.preset("t5-tiny", vocab_size=tokenizer.model_vocab_size, dropout=0.0)
    else:
        eos = tokenizer.eos_id
        cfg = t2t.preset(
            "gpt2-tiny",
            vocab_size=tokenizer.model_vocab_size,
            dropout=0.0,
            eos_id=eos,
            bos_id=eos,
            pad_id=eos,
        )
    return t2t.build_model(cfg).eval()


def save_tiny_pipeline(directory: Path) -> Path:
    """A tiny T5 with spread weights and its sentencepiece tokenizer saved side by side in
    directory/model, what `load_pipeline`, `t2t generate` and `t2t eval` take."""
    tokenizer = train_tokenizer(directory, "sentencepiece", 300)
    model = tiny_model_for(tokenizer, "encoder-decoder", seed=1)
    spread_weights(model, 1)
    model.save_pretrained(directory / "model")
    tokenizer.save_pretrained(directory / "model")
    return directory / "model"
