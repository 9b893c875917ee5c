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
from t2t.generation.inputs import check_ids, check_length, check_mask, check_memory, check_model
from t2t.generation.kernels import fast_linears
from t2t.generation.processors import LogitsProcessor, build_processors
from t2t.generation.steps import Steps, make_steps
from t2t.model.models import EncoderDecoderLM, T2TModel
from t2t.utils import delegates


@dataclass
class GenerationOutput:
    """What `generate(..., return_scores=True)` or `generate(..., return_dict_in_generate=True)` returns;
    read by attribute (`out.sequences`) or key (`out["sequences"]`), as transformers' outputs are."""

    sequences: torch.Tensor  # [N, prompt_length + new]
    # [N]. return_scores: beam search's length-penalised score, else the summed log-probabilities.
    # return_dict_in_generate alone: the beam score with output_scores (as transformers), else None.
    sequences_scores: torch.Tensor | None
    prompt_length: int  # 1 (the decoder start token) for encoder-decoder models
    # output_scores: one [N or B * num_beams, vocab] tensor per step, the processed scores the search chose
    # from (transformers' `scores`); output_logits: the raw logits of each step (transformers' `logits`).
    scores: tuple[torch.Tensor, ...] | None = None
    logits: tuple[torch.Tensor, ...] | None = None

    @property
    def new_tokens(self) -> torch.Tensor:
        return self.sequences[:, self.prompt_length :]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


# generate()'s options that say what to return rather than how to decode (transformers' names).
OUTPUT_OPTIONS = ("return_dict_in_generate", "output_scores", "output_logits")


def resolve_config(
    model: T2TModel,
    config: GenerationConfig | None = None,
    *,
    generation_config: Any | None = None,
    **overrides: Any,
) -> GenerationConfig:
    """The config with keyword overrides applied and the model's eos / pad ids filled in.

    The base is `config` when given (complete: t2t's defaults where it is silent), else the model's
    defaults (`model.generation_config`, from generation_config.json) with `generation_config` on top:
    a t2t GenerationConfig replaces them, a transformers GenerationConfig or a dict of its keys
    overrides only the values it sets, as in transformers.
    """
    names = GenerationConfig.field_names()
    for name in overrides:
        if name not in names:
            raise ConfigError(f"generate() got an unknown argument {name!r}{closest(name, names)}")
    if config is not None and generation_config is not None:
        raise ConfigError("pass either config or generation_config, not both")
    if config is not None and not isinstance(config, GenerationConfig):
        generation_config, config = config, None  # a transformers config or a dict passed positionally
    if config is None:
        config = model_defaults(model)
        if generation_config is not None:
            config = GenerationConfig.from_dict(
                {**config.to_dict(), **GenerationConfig.hf_values(generation_config)}
            )
    values = {**config.to_dict(), **overrides}
    if values["eos_token_id"] is None:
        values["eos_token_id"] = model.config.eos_id if model.config.eos_id is not None else []
    if values["pad_token_id"] is None:
        values["pad_token_id"] = model.config.pad_id
    config = GenerationConfig.from_dict(values)
    _check_token_ids(model, config)
    return config


def model_defaults(model: T2TModel) -> GenerationConfig:
    """The model's generation defaults: `model.generation_config` (a transformers GenerationConfig or a
    dict assigned there is read as such)."""
    defaults = getattr(model, "generation_config", None)
    if defaults is None:
        return GenerationConfig()
    if isinstance(defaults, GenerationConfig):
        return defaults
    return GenerationConfig.from_hf(defaults, where="model.generation_config")


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
    check_memory(model, ids, new_tokens, expand, beam=cfg.num_beams > 1)
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


class _ScoreRecorder:
    """A last logits processor that keeps the scores the search chooses from, one tensor per step."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.steps.append(scores)
        return scores


class _LogitRecorder:
    """The model adapter, keeping the raw next-token logits of each step."""

    def __init__(self, steps: Steps) -> None:
        self.inner = steps
        self.steps: list[torch.Tensor] = []

    def __call__(self, sequence: torch.Tensor) -> torch.Tensor:
        logits = self.inner(sequence)
        self.steps.append(logits)
        return logits

    def reorder(self, index: torch.Tensor) -> None:
        self.inner.reorder(index)


def _output_options(generation_config: Any | None, kwargs: dict[str, Any]) -> dict[str, bool]:
    """return_dict_in_generate / output_scores / output_logits: from the call, else from a transformers
    generation_config (an object or a dict) that sets them, as transformers reads them."""
    options = {}
    for name in OUTPUT_OPTIONS:
        value = kwargs.pop(name, None)
        if (
            value is None
            and generation_config is not None
            and not isinstance(generation_config, GenerationConfig)
        ):
            value = (
                generation_config.get(name)
                if isinstance(generation_config, dict)
                else getattr(generation_config, name, None)
            )
        options[name] = bool(value)
    return options


def generate(
    model: T2TModel,
    input_ids: Any | None = None,
    attention_mask: Any | None = None,
    config: GenerationConfig | None = None,
    *,
    return_scores: bool = False,
    inputs: Any | None = None,
    generation_config: Any | None = None,
    **kwargs: Any,
) -> torch.Tensor | GenerationOutput:
    """Continue input_ids [B, S] (a tensor or lists; decoder-only prompts left-padded, with their mask).

    Keyword arguments are GenerationConfig fields (transformers' names); `inputs` is transformers'
    other name for input_ids, and `generation_config` a transformers GenerationConfig (or a dict of its
    keys, or t2t's) over the model's defaults (see `resolve_config`). Returns sequences
    [B * num_return_sequences, prompt + new], or a GenerationOutput with scores when return_scores or
    return_dict_in_generate (with output_scores / output_logits: each step's scores / logits).
    """
    if inputs is not None:
        if input_ids is not None:
            raise T2TError("pass input_ids or inputs (its other name), not both")
        input_ids = inputs
    if input_ids is None:
        raise T2TError("generate() needs input_ids (or inputs): the prompts' token ids [batch, length]")
    if config is not None and not isinstance(config, GenerationConfig) and generation_config is None:
        generation_config, config = config, None  # a transformers config passed positionally
    output = _output_options(generation_config, kwargs)
    cfg = resolve_config(model, config, generation_config=generation_config, **kwargs)
    record_scores = output["return_dict_in_generate"] and output["output_scores"]
    record_logits = output["return_dict_in_generate"] and output["output_logits"]
    score_recorder = _ScoreRecorder() if record_scores else None
    with decoding_mode(model):
        plan = _plan(model, input_ids, attention_mask, cfg)
        logit_recorder = _LogitRecorder(plan.steps) if record_logits else None
        if logit_recorder is not None:
            plan.steps = logit_recorder  # type: ignore[assignment]
        if score_recorder is not None:
            plan.processors = [*plan.processors, score_recorder]
        if cfg.num_beams > 1:
            sequences, scores = _beam(plan)
        else:
            sequences, maybe_scores = _token_by_token(plan, return_scores).run()
            scores = maybe_scores if maybe_scores is not None else torch.zeros(0)
    sequences = sequences.clone()  # a normal tensor, usable outside inference mode
    if not (return_scores or output["return_dict_in_generate"]):
        return sequences
    if return_scores:
        sequences_scores: torch.Tensor | None = scores.clone()
    else:  # transformers gives a beam search's scores with output_scores, and none for the others
        sequences_scores = scores.clone() if cfg.num_beams > 1 and output["output_scores"] else None
    return GenerationOutput(
        sequences,
        sequences_scores,
        plan.start.shape[1],
        scores=tuple(t.clone() for t in score_recorder.steps) if score_recorder is not None else None,
        logits=tuple(t.clone() for t in logit_recorder.steps) if logit_recorder is not None else None,
    )


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


delegates.provide("generate", generate)  # model.generate(...)


__all__ = [
    "OUTPUT_OPTIONS",
    "GenerationOutput",
    "decoding_mode",
    "generate",
    "resolve_config",
    "stream_tokens",
]
