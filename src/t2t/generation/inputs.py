"""What a model accepts as generation input, checked before any work so mistakes are one clear line."""

from __future__ import annotations

from typing import Any

import torch

from t2t.errors import T2TError
from t2t.model.memory import check_fits
from t2t.model.models import DecoderLM, EncoderDecoderLM, T2TModel

ABSOLUTE_POSITIONS = ("learned", "sinusoidal")


def as_batch(name: str, ids: Any) -> torch.Tensor:
    """A [batch, length] tensor from a tensor or nested lists; one row may be given unbatched."""
    tensor = torch.as_tensor(ids)
    if tensor.dim() == 1:
        tensor = tensor[None]
    if tensor.dim() != 2:
        raise T2TError(f"{name} should be [batch, length], got shape {tuple(tensor.shape)}")
    return tensor


def check_model(model: T2TModel) -> EncoderDecoderLM | DecoderLM:
    if not isinstance(model, (EncoderDecoderLM, DecoderLM)):
        raise T2TError(
            f"{type(model).__name__} has no decoder to generate with; use an encoder-decoder (T5) or a "
            "decoder-only (GPT-2, Llama) model"
        )
    return model


def check_ids(model: T2TModel, name: str, ids: Any) -> torch.Tensor:
    """Integer ids inside the model's vocabulary, on the model's device."""
    tensor = as_batch(name, ids).to(model.device)
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise T2TError(f"{name} should hold integer token ids, got {tensor.dtype}")
    tensor = tensor.long()
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise T2TError(f"{name} is empty (shape {tuple(tensor.shape)}); give at least one token per row")
    vocab = model.config.vocab_size
    bad = (tensor < 0) | (tensor >= vocab)
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise T2TError(
            f"{name}[{row}, {col}] = {int(tensor[row, col])} is outside the vocabulary [0, {vocab}); "
            "encode with this model's tokenizer"
        )
    return tensor


def check_mask(model: T2TModel, mask: Any | None, ids: torch.Tensor) -> torch.Tensor | None:
    """The padding mask, refused when it would silently give wrong answers."""
    if mask is None:
        return None
    tensor = as_batch("attention_mask", mask).to(model.device).long()
    if tensor.shape != ids.shape:
        raise T2TError(f"attention_mask has shape {tuple(tensor.shape)} but input_ids has {tuple(ids.shape)}")
    empty = (tensor.sum(-1) == 0).nonzero()
    if len(empty):
        raise T2TError(f"row {int(empty[0])} of attention_mask has no real token; drop the empty prompt")
    if isinstance(model, DecoderLM):
        right = (tensor[:, 1:] < tensor[:, :-1]).any(-1).nonzero()
        if len(right):
            raise T2TError(
                f"row {int(right[0])} of the prompts is right-padded; decoder-only models continue the last "
                "token, so pad prompts on the left"
            )
    return tensor


def check_length(model: T2TModel, prompt_length: int, new_tokens: int) -> None:
    """Absolute position tables end at max_positions; refuse a generation that would run past it."""
    cfg = model.config
    if cfg.position not in ABSOLUTE_POSITIONS:
        return
    if isinstance(model, DecoderLM) and prompt_length + new_tokens > cfg.max_positions:
        raise T2TError(
            f"a {prompt_length}-token prompt plus max_new_tokens={new_tokens} exceeds the model's "
            f"max_positions={cfg.max_positions}; shorten the prompt or lower max_new_tokens"
            + (f" to {cfg.max_positions - prompt_length}" if prompt_length < cfg.max_positions else "")
        )
    if isinstance(model, EncoderDecoderLM) and 1 + new_tokens > cfg.max_positions:
        raise T2TError(
            f"max_new_tokens={new_tokens} exceeds the model's max_positions={cfg.max_positions}; use "
            f"max_new_tokens={cfg.max_positions - 1} or less"
        )


def generation_bytes(
    model: EncoderDecoderLM | DecoderLM, ids: torch.Tensor, new_tokens: int, expand: int, beam: bool
) -> int:
    """The memory a generation needs if every row runs to new_tokens (the KV cache, token buffers, a
    step's logits; for T5 the encoder output and cross-attention keys/values of every row): a lower
    bound, as activations and buffers doubling are left out."""
    cfg = model.config
    batch, input_length = ids.shape
    rows = batch * expand
    itemsize = next(model.parameters()).element_size()
    encoder_decoder = isinstance(model, EncoderDecoderLM)
    tokens = (1 if encoder_decoder else input_length) + new_tokens  # decoder-side, per row
    per_token = 2 * cfg.n_decoder_layers * cfg.kv_heads * cfg.dim_head * itemsize  # keys and values
    needed = rows * tokens * (per_token + 8 * (4 if beam else 1))  # int64 ids: running, finished, ...
    needed += 2 * rows * cfg.vocab_size * 4  # fp32 logits and their processed copy
    if encoder_decoder:
        needed += rows * input_length * (per_token + cfg.d_model * itemsize)  # cross k/v, encoder output
    return needed


def check_memory(
    model: EncoderDecoderLM | DecoderLM, ids: torch.Tensor, new_tokens: int, expand: int, beam: bool
) -> None:
    """Refuse, before any allocation, a generation that the device's free memory cannot hold."""
    batch, length = ids.shape
    what = "num_beams" if beam else "num_return_sequences"
    rows = f" x {what}={expand}" if expand > 1 else ""
    check_fits(
        f"generating up to max_new_tokens={new_tokens} for {batch} prompt(s) of {length} tokens{rows}",
        generation_bytes(model, ids, new_tokens, expand, beam),
        model.device,
        "lower max_new_tokens"
        + (f", {what}" if expand > 1 else "")
        + (" or the batch size" if batch > 1 else ""),
    )


def prompt_limit(model: T2TModel, max_new_tokens: int) -> int:
    """The longest prompt, in tokens, the model takes: T5's encoder input length (max_positions, 512 for
    the published T5s, which were trained on 512 tokens), or what leaves room for the new tokens in a
    decoder-only model's context."""
    cfg = model.config
    if isinstance(model, EncoderDecoderLM):
        return cfg.max_positions
    room = cfg.max_positions - max_new_tokens
    if room < 1:
        raise T2TError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's context of "
            f"{cfg.max_positions} tokens; use max_new_tokens={cfg.max_positions - 1} or less"
        )
    return room


__all__ = [
    "as_batch",
    "check_ids",
    "check_length",
    "check_mask",
    "check_memory",
    "check_model",
    "generation_bytes",
    "prompt_limit",
]
