"""Request bodies: OpenAI's fields with OpenAI's defaults, plus t2t's decoding options as extra fields.

Strict models: an unknown field or a value of the wrong type (a string for max_tokens, true for n) is
refused with 400 rather than coerced, as OpenAI does. Fields that OpenAI has but t2t cannot honour
(logit_bias, presence / frequency penalties, suffix, per-token logprobs) are accepted only at their
neutral value, and `t2t.serve.options` says so when they are not. Responses are plain dicts built where
they are sent (`t2t.serve.responses`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Prompt = str | list[str] | list[int] | list[list[int]]  # text, texts, token ids, lists of token ids


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StreamOptions(_Strict):
    include_usage: bool = False


class DecodingFields(_Strict):
    """What every generating endpoint takes. Extra fields (t2t's, as transformers names them; OpenAI's
    client sends them with `extra_body=`): num_beams, length_penalty (+ its style: "hf" or "gnmt"),
    early_stopping, repetition_penalty, no_repeat_ngram_size, min_tokens, top_k, ignore_eos."""

    model: str | None = None
    temperature: float | None = None  # None: 1.0 (sampling, OpenAI's default); with num_beams > 1: 0.0
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # t2t's decoding options
    num_beams: int = 1
    length_penalty: float = 1.0
    length_penalty_style: Literal["hf", "gnmt"] = "hf"
    early_stopping: bool | Literal["never"] = False
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_tokens: int = 0
    top_k: int = 0  # 0: off (OpenAI has no top-k)
    ignore_eos: bool = False  # generate exactly max_tokens tokens (benchmarks)


class CompletionRequest(DecodingFields):
    prompt: Prompt
    max_tokens: int | None = None  # None: 16, OpenAI's default
    echo: bool | None = None
    logprobs: int | None = None
    best_of: int | None = None
    suffix: str | None = None


class ContentPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(DecodingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = None  # None: what the context leaves
    max_completion_tokens: int | None = None  # OpenAI's newer name for max_tokens
    logprobs: bool | None = None
    top_logprobs: int | None = None


class ScoreRequest(_Strict):
    """Rank candidate answers by their log-likelihood given the prompt (T5 classifies this way)."""

    model: str | None = None
    prompt: str | list[str]
    candidates: list[str] | list[list[str]]  # one list for every prompt, or one list per prompt
    reduction: Literal["sum", "mean"] = "sum"
    user: str | None = None


__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "DecodingFields",
    "Prompt",
    "ScoreRequest",
    "StreamOptions",
]
