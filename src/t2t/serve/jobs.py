"""Jobs: what a request hands to the scheduler thread, and the events that come back.

A request handler (on the event loop) builds a job and submits it; the scheduler thread, which alone
touches the model, decodes it among others and sends events through the job's `emit`: text pieces,
finished answers, then one `Done` (or one `Failed`). A handler whose client went away calls `cancel()`;
the scheduler drops the job's answers at its next step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from t2t.generation.config import GenerationConfig
from t2t.serve.errors import APIError


@dataclass
class Piece:
    index: int  # the choice: prompt * n + sample
    text: str


@dataclass
class Finished:
    index: int
    reason: str  # "stop" or "length"
    text: str  # the whole answer, as a non-streaming response gives it
    ids: list[int]  # its tokens (the end-of-sequence token left out)


@dataclass
class Done:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Scored:
    scores: list[list[float]]  # per prompt, per candidate


@dataclass
class Failed:
    error: APIError


Event = Piece | Finished | Done | Scored | Failed
Emit = Callable[[list[Event]], None]  # thread-safe: called from the scheduler thread


@dataclass(eq=False)
class Job:
    """Work of one request. `rows` is the number of answers it holds in a batch (prompts x n)."""

    id: str
    emit: Emit
    prompts: list[list[int]]
    arrived: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    first_token_at: float | None = None

    @property
    def rows(self) -> int:
        return len(self.prompts)

    @property
    def prompt_tokens(self) -> int:
        return sum(len(p) for p in self.prompts)

    def cancel(self) -> None:
        """The client left: stop spending work on this job (safe from any thread)."""
        self.cancelled = True

    @property
    def group(self) -> Hashable:
        """Jobs of one group may run in one call (each kind of job says which); alone by default."""
        return (type(self).__name__, self.id)


@dataclass(eq=False)
class GenerateJob(Job):
    """Generate n answers for each prompt. Jobs with the same `group` can share one batched generation:
    their configs differ at most in max_new_tokens, which each answer's own max_tokens enforces."""

    config: GenerationConfig = field(default_factory=GenerationConfig)
    max_tokens: int = 16
    stops: list[str] = field(default_factory=list)
    stream: bool = False

    @property
    def n(self) -> int:
        return self.config.num_return_sequences

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n

    @property
    def beam(self) -> bool:
        return self.config.num_beams > 1

    @property
    def group(self) -> Hashable:
        """Jobs batch together when every decoding choice but the length limit agrees. Beam search's
        result depends on its length limit, so beam jobs also agree on max_new_tokens; a seeded sampling
        job draws from its own generator and is batched with no other job."""
        values = self.config.to_dict()
        if not self.beam:
            values.pop("max_new_tokens")
        if self.config.do_sample and self.config.seed is not None:
            values["job"] = self.id
        return tuple(sorted((k, repr(v)) for k, v in values.items()))


@dataclass(eq=False)
class ScoreJob(Job):
    """Score each prompt's candidates (strings); jobs with the same reduction share one call. `prompts`
    holds the encoded texts (for the token counts); rank_candidates encodes them itself."""

    texts: list[str] = field(default_factory=list)
    candidates: list[list[str]] = field(default_factory=list)
    reduction: str = "sum"

    @property
    def group(self) -> Hashable:
        return ("score", self.reduction)


__all__ = ["Done", "Emit", "Event", "Failed", "Finished", "GenerateJob", "Job", "Piece", "ScoreJob", "Scored"]
