"""GenerationConfig: every decoding choice, with Hugging Face's argument names and defaults.

The names and defaults follow transformers' `generate` so that code and habits carry over (top_k=50
when sampling, length_penalty=1.0, early_stopping=False, 20 new tokens). Two additions: `seed` (a
private random generator, so sampling is reproducible without touching the global RNG) and
`length_penalty_style`, which picks between the two published length-penalty conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2t.configbase import StrictConfig, check_choice, check_range
from t2t.errors import ConfigError

DEFAULT_MAX_NEW_TOKENS = 20
LENGTH_PENALTY_STYLES = ("hf", "gnmt")
EARLY_STOPPING = (True, False, "never")


@dataclass
class GenerationConfig(StrictConfig):
    """How to decode. `eos_token_id=None` / `pad_token_id=None` take the model's ids; `eos_token_id=[]`
    switches stopping at an end-of-sequence token off (every row then runs to the length limit)."""

    max_new_tokens: int | None = None  # None: max_length if given, else 20
    max_length: int | None = None  # HF style: prompt (decoder-only) or decoder start (T5) + new tokens
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    # "hf": score = logp / len**alpha (transformers); "gnmt": logp / ((5 + len) / 6)**alpha (Wu et al.
    # 2016, used by the T5 paper with beam 4 and alpha 0.6). len counts the generated tokens.
    length_penalty_style: str = "hf"
    early_stopping: bool | str = False
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    num_return_sequences: int = 1
    seed: int | None = None
    use_cache: bool = True

    def validate(self) -> None:
        if self.max_new_tokens is not None:
            check_range("max_new_tokens", self.max_new_tokens, 1)
        if self.max_length is not None:
            check_range("max_length", self.max_length, 1)
        check_range("min_new_tokens", self.min_new_tokens, 0)
        check_range("num_beams", self.num_beams, 1)
        check_range("num_return_sequences", self.num_return_sequences, 1)
        check_range("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        check_range("top_k", self.top_k, 0)
        check_choice("length_penalty_style", self.length_penalty_style, LENGTH_PENALTY_STYLES)
        check_choice("early_stopping", self.early_stopping, EARLY_STOPPING)
        # As in transformers, temperature matters only when sampling (greedy and beam search ignore it).
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature} must be > 0; use do_sample=False for greedy")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} is out of range (0, 1]")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition_penalty={self.repetition_penalty} must be > 0 (1.0: no penalty)")
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ConfigError(
                f"num_return_sequences={self.num_return_sequences} is more than num_beams={self.num_beams}"
            )
        if self.num_beams == 1 and self.num_return_sequences > 1 and not self.do_sample:
            raise ConfigError(
                f"num_return_sequences={self.num_return_sequences} needs num_beams >= "
                f"{self.num_return_sequences} or do_sample=True (greedy search has one answer)"
            )

    @property
    def eos_ids(self) -> list[int]:
        """The end-of-sequence ids as a list (after `resolve`)."""
        eos = self.eos_token_id
        return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)

    def new_tokens(self, prompt_length: int) -> int:
        """How many tokens to generate at most; prompt_length is what max_length counts besides them."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.max_length is not None:
            if self.max_length <= prompt_length:
                raise ConfigError(
                    f"max_length={self.max_length} leaves no room after a prompt of {prompt_length} tokens; "
                    "use max_new_tokens"
                )
            return self.max_length - prompt_length
        return DEFAULT_MAX_NEW_TOKENS


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "LENGTH_PENALTY_STYLES", "GenerationConfig"]
