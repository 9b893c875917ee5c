"""`generate` and `stream_tokens`: resolve the config against the model, then run greedy, sampling or
beam search.

Outputs are laid out as transformers' are: an encoder-decoder's sequences start with the decoder start
token, a decoder-only model's with its (left-padded) prompt; rows that end early are padded with
pad_token_id. (transformers' beam search pads with the eos id instead when pad_token_id is 0; the
tokens up to each row's end are the same.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from t2t.configbase import closest
from t2t.errors import ConfigError, T2TError
from t2t.generation.beam import BeamSettings, beam_search
from t2t.generation.config import GenerationConfig
from t2t.generation.greedy import TokenByToken
from t2t.generation.inputs import check_ids, check_length, check_mask, check_model
from t2t.generation.kernels import fast_linears
from t2t.generation.processors import LogitsProcessor, build_processors
from t2t.generation.steps import Steps, make_steps
from t2t.model.models import EncoderDecoderLM, T2TModel


@dataclass
class GenerationOutput:
    """What `generate(..., return_scores=True)` returns."""

    sequences: torch.Tensor  # [N, prompt_length + new]
    sequences_scores: torch.Tensor  # [N]: beam: the length-penalised beam score; else: summed log-probs
    prompt_length: int  # 1 (the decoder start token) for encoder-decoder models

    @property
    def new_tokens(self) -> torch.Tensor:
        return self.sequences[:, self.prompt_length :]


def resolve_config(
    model: T2TModel, config: GenerationConfig | None = None, **overrides: Any
) -> GenerationConfig:
    """The config with keyword overrides applied and the model's eos / pad ids filled in."""
    names = GenerationConfig.field_names()
    for name in overrides:
        if name not in names:
            raise ConfigError(f"generate() got an unknown argument {name!r}{closest(name, names)}")
    values = {**(config or GenerationConfig()).to_dict(), **overrides}
    if values["eos_token_id"] is None:
        values["eos_token_id"] = model.config.eos_id if model.config.eos_id is not None else []
    if values["pad_token_id"] is None:
        values["pad_token_id"] = model.config.pad_id
    config = GenerationConfig.from_dict(values)
    _check_token_ids(model, config)
    return config


def _check_token_ids(model: T2TModel, config: GenerationConfig) -> None:
    """eos / pad ids inside the vocabulary: an eos the model cannot produce would never stop a row, and a
    pad id outside it would fail deep in the embedding of padded prompts."""
    vocab = model.config.vocab_size
    named = [("eos_token_id", i) for i in config.eos_ids] + [("pad_token_id", config.pad_token_id)]
    for name, token in named:
        if not isinstance(token, int) or isinstance(token, bool) or not 0 <= token < vocab:
            raise ConfigError(f"{name}={token!r} is not a token id of this model (0 to {vocab - 1})")


@contextlib.contextmanager
def decoding_mode(model: T2TModel) -> Iterator[None]:
    """Evaluation mode (no dropout), no autograd, the few-row kernels; the training flag is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), fast_linears(model):
            yield
    finally:
        model.train(was_training)


@dataclass
class _Plan:
    config: GenerationConfig
    steps: Steps
    start: torch.Tensor  # [N, P]: decoder start tokens, or the prompts, one row per output row
    processors: list[LogitsProcessor]
    new_tokens: int
    generator: torch.Generator | None


def _plan(model: T2TModel, input_ids: Any, attention_mask: Any | None, cfg: GenerationConfig) -> _Plan:
    """Checks, the model adapter (runs the encoder), the start rows and the processors."""
    model = check_model(model)
    ids = check_ids(model, "input_ids", input_ids)
    mask = check_mask(model, attention_mask, ids)
    encoder_decoder = isinstance(model, EncoderDecoderLM)
    start_length = 1 if encoder_decoder else ids.shape[1]
    new_tokens = cfg.new_tokens(start_length)
    check_length(model, ids.shape[1], new_tokens)
    expand = cfg.num_beams if cfg.num_beams > 1 else cfg.num_return_sequences
    steps = make_steps(
        model, ids, mask, expand=expand, use_cache=cfg.use_cache, capacity=start_length + new_tokens - 1
    )
    ignore_prefix = None
    if encoder_decoder:
        start = ids.new_full((ids.shape[0] * expand, 1), model.config.decoder_start_id)
    else:
        start = ids.repeat_interleave(expand, dim=0)
        if mask is not None:  # the repetition penalty skips left padding, as transformers' does
            ignore_prefix = (mask != 0).int().argmax(dim=1).repeat_interleave(expand)
    processors = build_processors(cfg, prompt_length=start_length, ignore_prefix=ignore_prefix)
    generator = None
    if cfg.seed is not None:
        generator = torch.Generator(device=model.device).manual_seed(cfg.seed)
    return _Plan(cfg, steps, start, processors, new_tokens, generator)


def _token_by_token(plan: _Plan, want_scores: bool) -> TokenByToken:
    cfg = plan.config
    return TokenByToken(
        plan.steps,
        plan.start,
        max_new_tokens=plan.new_tokens,
        processors=plan.processors,
        eos_ids=cfg.eos_ids,
        pad_id=cfg.pad_token_id,  # type: ignore[arg-type]
        do_sample=cfg.do_sample,
        generator=plan.generator,
        want_scores=want_scores,
    )


def _beam(plan: _Plan) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = plan.config
    settings = BeamSettings(
        num_beams=cfg.num_beams,
        max_new_tokens=plan.new_tokens,
        eos_ids=cfg.eos_ids,
        pad_id=cfg.pad_token_id,  # type: ignore[arg-type]
        length_penalty=cfg.length_penalty,
        length_penalty_style=cfg.length_penalty_style,
        early_stopping=cfg.early_stopping,
        num_return_sequences=cfg.num_return_sequences,
        do_sample=cfg.do_sample,
    )
    return beam_search(plan.steps, plan.start, settings, plan.processors, plan.generator)


def generate(
    model: T2TModel,
    input_ids: Any,
    attention_mask: Any | None = None,
    config: GenerationConfig | None = None,
    *,
    return_scores: bool = False,
    **kwargs: Any,
) -> torch.Tensor | GenerationOutput:
    """Continue input_ids [B, S] (a tensor or lists; decoder-only prompts left-padded, with their mask).

    Keyword arguments are GenerationConfig fields (transformers' names). Returns sequences
    [B * num_return_sequences, prompt + new], or a GenerationOutput with scores when return_scores.
    """
    cfg = resolve_config(model, config, **kwargs)
    with decoding_mode(model):
        plan = _plan(model, input_ids, attention_mask, cfg)
        if cfg.num_beams > 1:
            sequences, scores = _beam(plan)
        else:
            sequences, maybe_scores = _token_by_token(plan, return_scores).run()
            scores = maybe_scores if maybe_scores is not None else torch.zeros(0)
    sequences = sequences.clone()  # a normal tensor, usable outside inference mode
    if return_scores:
        start_length = plan.start.shape[1]
        return GenerationOutput(sequences, scores.clone(), start_length)
    return sequences


def stream_tokens(
    model: T2TModel,
    input_ids: Any,
    attention_mask: Any | None = None,
    config: GenerationConfig | None = None,
    **kwargs: Any,
) -> Iterator[torch.Tensor]:
    """Yield each new column of tokens [N] as soon as it is chosen (greedy or sampling).

    The decoding mode (inference mode, the fast kernel) is entered for each step and left before each
    yield, so the caller's code between tokens runs in its own mode.
    """
    cfg = resolve_config(model, config, **kwargs)
    if cfg.num_beams > 1:
        raise T2TError("streaming needs num_beams=1: beam search settles its tokens only at the end")
    with decoding_mode(model):
        search = _token_by_token(_plan(model, input_ids, attention_mask, cfg), want_scores=False)
    while not search.done:
        with decoding_mode(model):
            tokens = search.advance().clone()
        yield tokens


__all__ = ["GenerationOutput", "decoding_mode", "generate", "resolve_config", "stream_tokens"]
