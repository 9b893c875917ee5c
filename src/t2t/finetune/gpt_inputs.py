"""GPT's input transformations (Radford et al. 2018, figure 1): every task becomes token sequences that a
left-to-right model reads, with a start token, a delimiter between the parts and an extract token at the
end whose hidden state feeds the linear head.

    classification   <s> text <e>
    entailment       <s> premise <$> hypothesis <e>
    similarity       <s> a <$> b <e>   and   <s> b <$> a <e>   (two sequences, representations added)
    multiple choice  <s> context <$> answer_k <e>              (one sequence per answer)

The three tokens are new: `add_gpt_tokens` adds them to the tokenizer as special tokens and the model gets
fresh rows for them (resize.init_token_rows). Texts too long for `max_length` are cut, the longest part
first, so the structure tokens always survive.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import AddedToken

from t2t.errors import ConfigError
from t2t.tokenizer import Tokenizer

START, DELIMITER, EXTRACT = "<|start|>", "<|delimiter|>", "<|extract|>"
GPT_TOKENS = (START, DELIMITER, EXTRACT)


@dataclass(frozen=True)
class GptTokens:
    start: int
    delimiter: int
    extract: int


def add_gpt_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """A tokenizer with the start, delimiter and extract tokens (the same one if it has them already)."""
    missing = [t for t in GPT_TOKENS if tokenizer.token_to_id(t) is None]
    if not missing:
        return tokenizer
    backend = copy.deepcopy(tokenizer.backend)
    backend.add_special_tokens([AddedToken(t, special=True) for t in missing])
    return Tokenizer(
        backend,
        tokenizer.kind,
        tokenizer.specials,
        hf_class=tokenizer.hf_class,
        options=tokenizer.options,
        spm_model=tokenizer.spm_model,
        extra_config=tokenizer.extra_config,
    )


def gpt_tokens(tokenizer: Tokenizer) -> GptTokens:
    ids = [tokenizer.token_to_id(t) for t in GPT_TOKENS]
    if any(i is None for i in ids):
        raise ConfigError(
            "the tokenizer lacks GPT's start/delimiter/extract tokens; call add_gpt_tokens first"
        )
    return GptTokens(*ids)  # type: ignore[arg-type]


def fit_parts(parts: Sequence[list[int]], budget: int) -> list[list[int]]:
    """Cut the longest part one token at a time until all fit in `budget` tokens (longest first)."""
    parts = [list(p) for p in parts]
    if budget < len(parts):
        raise ConfigError(f"max_length leaves {budget} tokens for {len(parts)} texts; raise max_length")
    while sum(map(len, parts)) > budget:
        max(parts, key=len).pop()
    return parts


class GptInputs:
    """Builds the token sequences of each task from text, for one tokenizer and length limit."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.tokens = gpt_tokens(tokenizer)
        self.max_length = max_length

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _join(self, *texts: str) -> list[int]:
        structure = 1 + len(texts)  # start, a delimiter between each two parts, extract
        parts = fit_parts([self._encode(t) for t in texts], self.max_length - structure)
        ids = [self.tokens.start]
        for k, part in enumerate(parts):
            ids += ([self.tokens.delimiter] if k else []) + part
        return [*ids, self.tokens.extract]

    def classification(self, text: str) -> list[int]:
        return self._join(text)

    def entailment(self, premise: str, hypothesis: str) -> list[int]:
        return self._join(premise, hypothesis)

    def similarity(self, a: str, b: str) -> list[list[int]]:
        """Both orderings: the pair has no natural order, so the head sees the sum of the two."""
        return [self._join(a, b), self._join(b, a)]

    def multiple_choice(self, context: str, answers: Sequence[str]) -> list[list[int]]:
        return [self._join(context, answer) for answer in answers]
