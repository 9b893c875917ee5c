"""One answer's text as its tokens arrive: incremental decoding, stop sequences, the reason it ended.

The server decodes nothing itself; this is bookkeeping on the tokens that t2t's generation chose. Text
comes from the tokenizer's incremental decoder (`decode_stream`), so a piece holding half of a UTF-8
character waits for the rest, as `Pipeline.stream` does. With stop sequences, text that could be the
start of one is held back until it is not, so a client never sees the beginning of a stop sequence that
the answer then ends with (OpenAI's behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TextStream(Protocol):
    def step(self, token_id: int) -> str: ...


class Tokenizer(Protocol):
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...
    def decode_stream(self, skip_special_tokens: bool = True) -> TextStream: ...


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of `text` could begin a stop sequence."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class Answer:
    """push(token) for each token generated; it returns the text that became final. `reason` is set once
    the answer is over: "stop" (end-of-sequence token or a stop sequence) or "length" (max_tokens)."""

    def __init__(
        self, tokenizer: Tokenizer, eos_ids: Sequence[int], max_tokens: int, stops: Sequence[str]
    ) -> None:
        self.tokenizer = tokenizer
        self.stream = tokenizer.decode_stream()
        self.eos_ids = set(eos_ids)
        self.max_tokens = max_tokens
        self.stops = [s for s in stops if s]
        self.ids: list[int] = []
        self.text = ""  # what the incremental decoder gave so far (cut at a stop sequence)
        self.sent = 0  # characters of self.text already handed out
        self.reason: str | None = None

    @property
    def done(self) -> bool:
        return self.reason is not None

    def push(self, token: int) -> str:
        if self.done:
            return ""
        if token in self.eos_ids:
            self.reason = "stop"
            return self._flush()
        self.ids.append(token)
        self.text += self.stream.step(token)
        if self._cut_at_stop():
            return self._flush()
        if len(self.ids) >= self.max_tokens:
            self.reason = "length"
            return self._flush()
        end = len(self.text) - _held_back(self.text[self.sent :], self.stops)
        piece, self.sent = self.text[self.sent : end], max(self.sent, end)
        return piece

    def finish(self, reason: str = "length") -> str:
        """End the answer (the generation ran out of steps); returns the text still held back."""
        if self.done:
            return ""
        self.reason = reason
        return self._flush()

    def final_text(self) -> str:
        """The whole answer as `tokenizer.decode` makes it (what a non-streaming response returns: the
        same string `Pipeline` gives), cut at the first stop sequence."""
        text = self.tokenizer.decode(self.ids)
        cut = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(cut)] if cut else text

    def _cut_at_stop(self) -> bool:
        if not self.stops:
            return False
        start = max(0, self.sent - max(len(s) for s in self.stops))
        found = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        if not found:
            return False
        self.text = self.text[: min(found)]
        self.reason = "stop"
        return True

    def _flush(self) -> str:
        """The rest of the text. The incremental decoder may lag behind a full decode at the very end (a
        character cut off by the length limit); the difference comes last, as in Pipeline.stream."""
        final = self.final_text()
        if final.startswith(self.text):
            self.text = final
        piece = self.text[self.sent :]
        self.sent = len(self.text)
        return piece


__all__ = ["Answer"]
