"""From a request body to a job: OpenAI's fields checked and translated into t2t's GenerationConfig.

Every check here answers 400 with the field at fault, before anything is queued: what t2t cannot do
(logit_bias, presence / frequency penalties, per-token logprobs, best_of != n), values out of range,
prompts that are empty or longer than the model takes, and answers longer than its context. What the
GenerationConfig itself refuses (an impossible combination) comes back as 400 with its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t2t.errors import T2TError
from t2t.generation.config import GenerationConfig
from t2t.generation.inputs import prompt_limit
from t2t.generation.search import resolve_config
from t2t.serve.errors import APIError, bad_request
from t2t.serve.jobs import Emit, GenerateJob
from t2t.serve.loader import ServedModel
from t2t.serve.schema import DecodingFields, Prompt
from t2t.serve.settings import ServeSettings

MAX_STOPS = 4  # OpenAI's limit
MAX_TEMPERATURE = 2.0  # OpenAI's range is [0, 2]
DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


def check_model_name(served: ServedModel, name: str | None) -> None:
    if name is not None and name != served.name:
        raise APIError(
            404,
            f"the model {name!r} does not exist here; this server has {served.name!r} (GET /v1/models)",
            param="model",
            code="model_not_found",
        )


def refuse_unsupported(fields: dict[str, Any]) -> None:
    """OpenAI fields t2t has no equivalent for pass only at their neutral value."""
    neutral = {
        "presence_penalty": (0, 0.0),
        "frequency_penalty": (0, 0.0),
        "logit_bias": ({},),
        "suffix": ("",),
        "logprobs": (0, False),
        "top_logprobs": (0,),
    }
    hints = {
        "presence_penalty": "; use repetition_penalty (t2t's extra field) instead",
        "frequency_penalty": "; use repetition_penalty (t2t's extra field) instead",
        "logprobs": "; POST /v1/score gives the log-likelihood of given answers",
    }
    for name, allowed in neutral.items():
        value = fields.get(name)
        if value is not None and value not in allowed:
            raise bad_request(f"{name}={value!r} is not supported by this server{hints.get(name, '')}", name)


def prompt_rows(prompt: Prompt) -> list[str | list[int]]:
    """A prompt field as a list of prompts: text, or token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise bad_request("prompt is an empty list; give a string or a list of strings", "prompt")
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]  # type: ignore[arg-type]
    return list(prompt)  # type: ignore[arg-type]


def encode(
    served: ServedModel, prompts: Sequence[str | list[int]], max_tokens: int, param: str
) -> list[list[int]]:
    """Token ids of each prompt; an empty prompt or one longer than the model takes is a 400."""
    limit = _prompt_limit(served, max_tokens)
    encoded: list[list[int]] = []
    for i, prompt in enumerate(prompts):
        where = f"{param}[{i}]" if len(prompts) > 1 else param
        if isinstance(prompt, str):
            if not prompt.strip():
                raise bad_request(f"{where} is empty; give some text", param)
            ids = served.tokenizer.encode(prompt)
        else:
            ids = _checked_ids(served, prompt, where, param)
        if len(ids) > limit:
            raise bad_request(
                f"{where}: the prompt has {len(ids)} tokens, more than the {limit} this model takes"
                + ("" if served.encoder_decoder else f" with max_tokens={max_tokens}"),
                param,
            )
        encoded.append(ids)
    return encoded


def _prompt_limit(served: ServedModel, max_tokens: int) -> int:
    try:
        return prompt_limit(served.model, max_tokens)
    except T2TError as err:
        raise bad_request(str(err), "max_tokens") from None


def _checked_ids(served: ServedModel, ids: list[int], where: str, param: str) -> list[int]:
    vocab = served.model.config.vocab_size
    if not ids:
        raise bad_request(f"{where} is empty; give at least one token", param)
    bad = next((i for i in ids if not 0 <= i < vocab), None)
    if bad is not None:
        raise bad_request(f"{where}: token id {bad} is outside the vocabulary [0, {vocab})", param)
    return list(ids)


def max_tokens_for(
    served: ServedModel, requested: int | None, default: int | None, param: str = "max_tokens"
) -> int:
    """The answer length limit: the request's, else `default` (None: all the context leaves)."""
    most = served.max_positions - 1
    value = requested if requested is not None else default if default is not None else None
    if value is None:
        return most
    if value < 1:
        raise bad_request(f"{param}={value} should be at least 1", param)
    if value > most:
        raise bad_request(
            f"{param}={value} is more than this model can generate ({most}: its context is "
            f"{served.max_positions} tokens)",
            param,
        )
    return value


def stop_list(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOPS:
        raise bad_request(f"stop has {len(stops)} sequences; at most {MAX_STOPS}", "stop")
    if any(not s for s in stops):
        raise bad_request("stop holds an empty string; every stop sequence needs a character", "stop")
    return stops


def generation_config(
    served: ServedModel, settings: ServeSettings, body: DecodingFields, max_tokens: int, prompts: int
) -> GenerationConfig:
    """The request's decoding options as a resolved GenerationConfig (model's eos / pad ids filled in)."""
    n = 1 if body.n is None else body.n
    beams = body.num_beams
    if not 1 <= beams <= settings.max_beams:
        raise bad_request(f"num_beams={beams} is out of range: 1 to {settings.max_beams}", "num_beams")
    if not 1 <= n <= settings.max_n:
        raise bad_request(f"n={n} is out of range: 1 to {settings.max_n}", "n")
    if n * prompts > settings.max_batch_size:
        raise bad_request(
            f"{prompts} prompt(s) x n={n} is {n * prompts} answers, more than this server decodes at once "
            f"(--max-batch-size {settings.max_batch_size})",
            "n",
        )
    temperature = body.temperature if body.temperature is not None else (1.0 if beams == 1 else 0.0)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise bad_request(f"temperature={temperature} is out of range: 0 to {MAX_TEMPERATURE}", "temperature")
    top_p = 1.0 if body.top_p is None else body.top_p
    if not 0 < top_p <= 1:
        raise bad_request(f"top_p={top_p} is out of range: above 0, at most 1", "top_p")
    sample = temperature > 0
    if n > 1 and not sample and n > beams:
        raise bad_request(
            f"n={n} needs sampling (temperature > 0) or num_beams >= {n}: greedy decoding has one answer", "n"
        )
    if body.min_tokens < 0 or body.min_tokens > max_tokens:
        raise bad_request(
            f"min_tokens={body.min_tokens} is out of range: 0 to max_tokens={max_tokens}", "min_tokens"
        )
    values: dict[str, Any] = {
        "max_new_tokens": max_tokens,
        "min_new_tokens": body.min_tokens,
        "num_beams": beams,
        "length_penalty": body.length_penalty,
        "length_penalty_style": body.length_penalty_style,
        "early_stopping": body.early_stopping,
        "do_sample": sample,
        "temperature": temperature if sample else 1.0,
        "top_k": body.top_k,
        "top_p": top_p,
        "repetition_penalty": body.repetition_penalty,
        "no_repeat_ngram_size": body.no_repeat_ngram_size,
        "num_return_sequences": n,
        "eos_token_id": [] if body.ignore_eos else list(served.eos_ids),
        "seed": body.seed,
    }
    try:
        return resolve_config(served.model, GenerationConfig.from_dict(values))
    except T2TError as err:
        raise bad_request(str(err)) from None


def generate_job(
    job_id: str,
    emit: Emit,
    served: ServedModel,
    settings: ServeSettings,
    body: DecodingFields,
    prompts: list[list[int]],
    max_tokens: int,
) -> GenerateJob:
    config = generation_config(served, settings, body, max_tokens, len(prompts))
    return GenerateJob(
        id=job_id,
        emit=emit,
        prompts=prompts,
        config=config,
        max_tokens=max_tokens,
        stops=stop_list(body.stop),
        stream=bool(body.stream),
    )


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "check_model_name",
    "encode",
    "generate_job",
    "generation_config",
    "max_tokens_for",
    "prompt_rows",
    "refuse_unsupported",
    "stop_list",
]
