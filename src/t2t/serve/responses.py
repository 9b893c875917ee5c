"""Response bodies in OpenAI's shapes: completions, chat completions, their streamed chunks, usage.

Streaming follows OpenAI's server-sent events exactly: one `data: {json}` line and a blank line per
chunk, chunks carrying text (or a chat `delta`), one chunk per choice with its finish_reason, an
optional usage chunk (stream_options.include_usage) with no choices, then `data: [DONE]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DONE_LINE = "data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass
class Envelope:
    """What every body and chunk of one response repeats."""

    id: str
    created: int
    model: str
    chat: bool

    def _head(self, chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def body(
        self, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        return {**self._head(False), "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}

    def choice(self, index: int, text: str, reason: str | None) -> dict[str, Any]:
        if self.chat:
            message = {"role": "assistant", "content": text}
            return {"index": index, "message": message, "logprobs": None, "finish_reason": reason}
        return {"index": index, "text": text, "logprobs": None, "finish_reason": reason}

    def chunk(self, index: int, text: str | None, reason: str | None = None, role: bool = False) -> str:
        """One streamed chunk for choice `index`: new text, or (text None) its finish_reason."""
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {
                "index": index,
                "delta": delta,
                "logprobs": None,
                "finish_reason": reason,
            }
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": reason}
        return sse({**self._head(True), "choices": [choice]})

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> str:
        return sse({**self._head(True), "choices": [], "usage": usage(prompt_tokens, completion_tokens)})


__all__ = ["DONE_LINE", "Envelope", "sse", "usage"]
