"""Running grouped jobs through t2t's generation API: the only place the server touches the model.

- `Cohort`: greedy / sampling jobs of one group, decoded as one batch by `stream_tokens`, one step per
  `step()` call, so the scheduler can interleave cohorts step by step and feed streaming clients as
  tokens come. Each answer ends on its own (end-of-sequence token, its own max_tokens, a stop sequence,
  or its client leaving) and its job completes then; the batch stops when every answer has ended.
- `run_beam`: beam-search jobs of one group in one `generate` call (beam search settles its tokens only
  at the end, so streaming clients get the answer in one piece).
- `run_scores`: candidate-ranking jobs in one `rank_candidates` call.

Prompts of different lengths share a batch with padding and a mask (encoder inputs padded on the right,
decoder-only prompts on the left), exactly as `Pipeline.generate_batch` pads them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import torch

from t2t.errors import T2TError
from t2t.generation.config import GenerationConfig
from t2t.generation.scoring import rank_candidates
from t2t.generation.search import generate, stream_tokens
from t2t.generation.text import pad_rows
from t2t.serve.answers import Answer
from t2t.serve.errors import APIError
from t2t.serve.jobs import Done, Event, Failed, Finished, GenerateJob, Piece, Scored, ScoreJob
from t2t.serve.loader import ServedModel

log = logging.getLogger("t2t.serve")


def _padded(
    served: ServedModel, prompts: Sequence[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_rows(prompts, pad_id, left=not served.encoder_decoder, device=served.model.device)


def _failure(err: Exception) -> APIError:
    """A generation that raised: a T2TError is about the request (400), anything else is a bug (500)."""
    if isinstance(err, T2TError):
        return APIError(400, str(err))
    log.exception("generation failed")
    return APIError(500, f"the generation failed ({type(err).__name__}); the server logged the details")


class _Answers:
    """The answers of the jobs of one batch, row by row in the batch's order (prompt-major, n per prompt)."""

    def __init__(self, served: ServedModel, jobs: Sequence[GenerateJob]) -> None:
        self.jobs = list(jobs)
        self.answers: list[list[Answer]] = [
            [Answer(served.tokenizer, job.config.eos_ids, job.max_tokens, job.stops) for _ in range(job.rows)]
            for job in self.jobs
        ]
        self.completed = [False] * len(self.jobs)

    def live_rows(self) -> int:
        return sum(
            sum(not a.done for a in answers)
            for job, answers, completed in zip(self.jobs, self.answers, self.completed)
            if not completed and not job.cancelled
        )

    def all_over(self) -> bool:
        return all(c or job.cancelled for job, c in zip(self.jobs, self.completed))

    def push(self, tokens: Sequence[int] | None, reason: str = "length") -> None:
        """One token per row (None: no more tokens: every open answer ends with `reason`); events go out."""
        row = 0
        now = time.perf_counter()
        for j, (job, answers) in enumerate(zip(self.jobs, self.answers)):
            rows = range(row, row + len(answers))
            row += len(answers)
            if self.completed[j] or job.cancelled:
                continue
            if job.first_token_at is None:
                job.first_token_at = now
            events: list[Event] = []
            for i, (answer, r) in enumerate(zip(answers, rows)):
                if answer.done:
                    continue
                piece = answer.push(tokens[r]) if tokens is not None else answer.finish(reason)
                if piece and job.stream:
                    events.append(Piece(i, piece))
                if answer.done:
                    events.append(Finished(i, answer.reason or reason, answer.final_text(), list(answer.ids)))
            if all(a.done for a in answers):
                self.completed[j] = True
                events.append(Done(job.prompt_tokens, sum(len(a.ids) for a in answers)))
            if events:
                job.emit(events)

    def fail(self, error: APIError) -> None:
        for j, job in enumerate(self.jobs):
            if not self.completed[j]:
                self.completed[j] = True
                job.emit([Failed(error)])


class Cohort:
    """Greedy / sampling jobs of one group, decoded together one step per `step()`."""

    def __init__(self, served: ServedModel, jobs: Sequence[GenerateJob]) -> None:
        self.served = served
        self.answers = _Answers(served, jobs)
        first = jobs[0].config
        config = first.replace(max_new_tokens=max(job.max_tokens for job in jobs))
        prompts = [p for job in jobs for p in job.prompts]
        ids, mask = _padded(served, prompts, first.pad_token_id or 0)
        self.rows = ids.shape[0] * first.num_return_sequences
        self._tokens: Iterator[torch.Tensor] | None = stream_tokens(served.model, ids, mask, config)

    @property
    def jobs(self) -> list[GenerateJob]:
        return self.answers.jobs

    @property
    def done(self) -> bool:
        return self._tokens is None

    def live_rows(self) -> int:
        return self.answers.live_rows()

    def step(self) -> None:
        """Decode one token for every row (the first call also runs the prompts), hand out the text."""
        if self._tokens is None:
            return
        if self.answers.all_over():  # every answer ended, or its client left: stop decoding now
            self.close()
            return
        try:
            tokens = next(self._tokens)
        except StopIteration:
            self.answers.push(None)
            self.close()
            return
        except Exception as err:
            self.answers.fail(_failure(err))
            self.close()
            return
        self.answers.push(tokens.tolist())
        if self.answers.all_over():
            self.close()

    def close(self) -> None:
        if self._tokens is not None:
            self._tokens.close()  # type: ignore[attr-defined]
            self._tokens = None

    def cancel(self, error: APIError) -> None:
        self.answers.fail(error)
        self.close()


def run_beam(served: ServedModel, jobs: Sequence[GenerateJob]) -> int:
    """Beam-search jobs of one group (same options, same max_new_tokens) in one `generate` call; returns
    the rows decoded."""
    answers = _Answers(served, jobs)
    config: GenerationConfig = jobs[0].config
    prompts = [p for job in jobs for p in job.prompts]
    ids, mask = _padded(served, prompts, config.pad_token_id or 0)
    try:
        sequences = generate(served.model, ids, mask, config)
    except Exception as err:
        answers.fail(_failure(err))
        return 0
    start = 1 if served.encoder_decoder else ids.shape[1]
    new = sequences[:, start:].tolist()  # type: ignore[index]
    for column in range(len(new[0]) if new else 0):
        answers.push([row[column] for row in new])
    answers.push(None)
    return len(new)


def run_scores(served: ServedModel, jobs: Sequence[ScoreJob]) -> None:
    """Scoring jobs of one reduction in one `rank_candidates` call."""
    texts = [t for job in jobs for t in job.texts]
    candidates = [c for job in jobs for c in job.candidates]
    try:
        scores = rank_candidates(
            served.model, served.tokenizer, texts, candidates, reduction=jobs[0].reduction
        )
    except Exception as err:
        error = _failure(err)
        for job in jobs:
            job.emit([Failed(error)])
        return
    begin = 0
    for job in jobs:
        mine = scores[begin : begin + len(job.texts)]
        begin += len(job.texts)
        job.emit([Scored(mine), Done(job.prompt_tokens, 0)])


__all__ = ["Cohort", "run_beam", "run_scores"]
