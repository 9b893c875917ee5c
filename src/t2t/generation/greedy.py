"""Greedy decoding and multinomial sampling: one token per row per step, with transformers' semantics.

Each step: logits -> processors -> argmax (or a draw from the softmax) -> rows that already produced
an end-of-sequence token get the pad token instead -> stop when every row has finished or the length
limit is reached. The output is as long as the longest row; shorter rows are padded.

The state lives in an object that advances one column at a time, so a caller can stream tokens between
steps without threads (`t2t.generation.search.stream_tokens`). The token buffer grows by doubling up to
prompt + max_new_tokens, so a large limit reserves nothing up front.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from t2t.generation.processors import LogitsProcessor, apply_processors
from t2t.generation.steps import Steps, widen


class TokenByToken:
    """start [N, P] (decoder start token, or the prompt) grows by one column per `advance()`.

    scores (want_scores): each row's total log-probability under the model (log-softmax of the raw
    logits) of the tokens it generated, its end-of-sequence token included.
    """

    def __init__(
        self,
        steps: Steps,
        start: torch.Tensor,
        *,
        max_new_tokens: int,
        processors: Sequence[LogitsProcessor],
        eos_ids: Sequence[int],
        pad_id: int,
        do_sample: bool,
        generator: torch.Generator | None = None,
        want_scores: bool = False,
    ) -> None:
        rows, self.prompt_length = start.shape
        self.steps = steps
        self.processors = list(processors)
        self.pad_id = pad_id
        self.do_sample = do_sample
        self.generator = generator
        self.limit = self.prompt_length + max_new_tokens
        self.sequences = widen(start, self.prompt_length + 1, self.limit, pad_id)
        self.length = self.prompt_length
        self.eos = torch.tensor(list(eos_ids), dtype=torch.long, device=start.device) if eos_ids else None
        self.unfinished = torch.ones(rows, dtype=torch.bool, device=start.device)
        self.scores = torch.zeros(rows, device=start.device) if want_scores else None
        self.done = max_new_tokens == 0

    def advance(self) -> torch.Tensor:
        """Generate the next column; returns its tokens [N] (pad for rows that had finished)."""
        self.sequences = widen(self.sequences, self.length + 1, self.limit, self.pad_id)
        history = self.sequences[:, : self.length]
        logits = self.steps(history)
        scores = apply_processors(self.processors, history, logits) if self.processors else logits
        if self.do_sample:
            probs = torch.softmax(scores, dim=-1)
            tokens = torch.multinomial(probs, num_samples=1, generator=self.generator).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        if self.eos is not None:
            tokens = torch.where(self.unfinished, tokens, self.pad_id)
        if self.scores is not None:
            chosen = torch.log_softmax(logits, dim=-1).gather(1, tokens[:, None]).squeeze(1)
            self.scores += torch.where(self.unfinished, chosen, 0.0)
        self.sequences[:, self.length] = tokens
        self.length += 1
        if self.eos is not None:
            self.unfinished &= ~torch.isin(tokens, self.eos)
        self.done = self.length == self.limit or not bool(self.unfinished.any())
        return tokens

    def result(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(sequences [N, P + generated], scores [N] or None)."""
        return self.sequences[:, : self.length], self.scores

    def run(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        while not self.done:
            self.advance()
        return self.result()


__all__ = ["TokenByToken"]
