"""make_stream / BatchStream: a task or mixture -> objective -> tokenizer -> batches for `model(**batch)`.

The stream's position is (examples read, pieces waiting): both go into `state_dict()`, and a stream
loaded from it yields exactly the batches the original would have yielded next. Under DDP every rank
builds the same global batch of `batch_size` rows and keeps its own contiguous share of them.

Featurising (tokenising, span corruption, ...) depends only on an example and its index, so it can run
in other processes (`featurize_with`, t2t.data.workers) without changing a single batch.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from t2t.data.batching import Row, collate_causal, collate_masked, collate_seq2seq, piece_lengths
from t2t.data.features import Featurizer
from t2t.data.mixtures import Mixture, cycle_examples
from t2t.data.registry import resolve
from t2t.data.tasks import Task
from t2t.errors import ConfigError, DataError

log = logging.getLogger("t2t.data")
_STATE_VERSION = 2  # 2: next-sentence documents kept by text, and those waiting for another one; 1 loads too
_MAX_BARREN = 100_000  # examples in a row without a piece before the stream gives up


class StreamStats(dict):
    """`stream.stats`: the counters as a dict, and `summary()`, one line to log at the end of training."""

    def summary(self) -> str:
        """e.g. `data: 1,674 examples, 2,560 pairs -> 2,560 rows in 40 batches; truncated 0 inputs and 0
        targets; 0 bad records skipped; padding 35.6% of 61,440 token positions`."""
        n = self.get
        made = "".join(f", {n(key):,} {key}" for key in ("chunks", "pairs") if n(key))
        positions = n("tokens", 0) + n("padding", 0)
        padding = f"{n('padding', 0) / positions:.1%}" if positions else "0%"
        return (
            f"data: {n('examples', 0):,} examples{made} -> {n('rows', 0):,} rows in {n('batches', 0):,} batches; "
            f"truncated {n('truncated_inputs', 0):,} inputs and {n('truncated_targets', 0):,} targets; "
            f"{n('skipped_records', 0):,} bad records skipped; padding {padding} of {positions:,} token positions"
        )


class BatchStream:
    """An iterator of `dict[str, Tensor]` batches (this rank's rows of each global batch)."""

    def __init__(
        self,
        examples: Callable[[int], Iterator[dict]],
        featurizer: Featurizer,
        *,
        tasks: list[Task] | None = None,
        split: str = "train",
        batch_size: int,
        pack: bool,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} should be at least 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank} should be in [0, world_size={world_size})")
        if batch_size % world_size:
            raise ConfigError(
                f"batch_size={batch_size} (the global batch) is not divisible by world_size={world_size}; "
                f"use a multiple of {world_size}"
            )
        if pack and featurizer.objective == "mlm_nsp" and featurizer.options["nsp"]:
            raise ConfigError(
                "packing mixes sentence pairs, which next-sentence prediction cannot; pass nsp=False or pack=False"
            )
        self._source = examples
        self._tasks, self._split = tasks or [], split
        self.featurizer = featurizer
        self.batch_size, self.pack = batch_size, pack
        self.rank, self.world_size = rank, world_size
        self.consumed = 0  # examples read from the source
        self.batches = 0
        self.pending: deque = deque()  # pieces made but not yet in a batch
        self._examples: Iterator[tuple[list, dict | None]] | None = None  # (pieces, stats delta) each
        # (examples from index i on, i) -> their (pieces, stats delta) in order, computed elsewhere
        self._featurize: Callable[[Iterator[dict], int], Iterable[tuple[list, dict | None]]] | None = None
        self._exhausted = False
        self._warned: set[str] = set()
        self._barren = 0  # examples in a row that gave no piece

    @property
    def stats(self) -> StreamStats:
        """examples, chunks / pairs, truncated_inputs, truncated_targets, rows (of the global batches),
        batches, tokens and padding (of this rank's rows), skipped_records (bad records skipped with
        skip_bad_records, in each task's latest pass); `stream.stats.summary()` says it in one line."""
        skipped = sum(t.skipped.get(self._split, 0) for t in self._tasks)
        return StreamStats(
            {
                "skipped_records": skipped,
                "examples": 0,
                "truncated_inputs": 0,
                "truncated_targets": 0,
                "rows": 0,
                **self.featurizer.stats,
                "batches": self.batches,
            }
        )

    def __iter__(self) -> BatchStream:
        return self

    @property
    def parallel_featurizing(self) -> bool:
        """Whether examples can be featurised apart from each other: all objectives but next-sentence
        prediction, whose negatives come from the documents seen before."""
        f = self.featurizer
        return not (f.objective == "mlm_nsp" and f.options["nsp"])

    def featurize_with(
        self, featurize: Callable[[Iterator[dict], int], Iterable[tuple[list, dict | None]]] | None
    ) -> None:
        """Have `featurize(examples, start)` featurise the examples (index `start` on): it yields each
        one's (pieces, the featurizer stats it added), in order, as `self.featurizer(example, index)`
        would (t2t.data.workers runs it in worker processes). None: featurise here again."""
        if featurize is not None and not self.parallel_featurizing:
            raise ConfigError(
                "next-sentence prediction featurises examples in order; it cannot use data workers"
            )
        self._featurize = featurize
        self._examples = None

    def _featurized(self, start: int) -> Iterator[tuple[list, dict | None]]:
        examples = self._source(start)
        if self._featurize is not None:
            yield from self._featurize(examples, start)
            return
        for index, example in enumerate(examples, start):
            yield self.featurizer(example, index), None

    def _fill(self) -> bool:
        """Make sure a piece is waiting; False when the source has ended."""
        while not self.pending:
            if self._exhausted:
                return False
            if self._examples is None:
                self._examples = self._featurized(self.consumed)
            try:
                pieces, stats = next(self._examples)
            except StopIteration:
                self._exhausted = True
                self.featurizer.finish()
                return False
            if stats:
                self.featurizer.stats.update(stats)  # what the featurizer counted in a worker
            self.pending.extend(pieces)
            self.consumed += 1
            self._barren = 0 if pieces else self._barren + 1
            if self._barren >= _MAX_BARREN:
                first = self.consumed - self._barren
                raise DataError(
                    f"{self._barren} examples in a row (examples {first} to {self.consumed - 1}, counting from 0) "
                    f"made nothing to train on with objective={self.featurizer.objective!r}: they are too short "
                    "(one token?); check the data"
                )
        return True

    def _row(self) -> Row | None:
        if not self._fill():
            return None
        if not self.pack:
            return [self.pending.popleft()]
        max_in, max_tgt = self.featurizer.limits
        row: Row = []
        used_in = used_tgt = 0
        while self._fill():
            n_in, n_tgt = piece_lengths(self.pending[0])
            if row and (used_in + n_in > max_in or used_tgt + n_tgt > max_tgt):
                break
            row.append(self.pending.popleft())
            used_in, used_tgt = used_in + n_in, used_tgt + n_tgt
        return row

    def __next__(self) -> dict[str, torch.Tensor]:
        rows: list[Row] = []
        while len(rows) < self.batch_size:
            row = self._row()
            if row is None:
                break
            rows.append(row)
        share = self.batch_size // self.world_size
        mine = rows[self.rank * share : (self.rank + 1) * share]
        if not mine:
            raise StopIteration
        self.batches += 1
        stats = self.featurizer.stats
        stats["rows"] += len(rows)
        self._report()
        return self._collate(mine)

    def _collate(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        f = self.featurizer
        if f.arch == "encoder-decoder":
            batch = collate_seq2seq(rows, pad_id=f.pad, decoder_start_id=f.decoder_start_id, packed=self.pack)
            mask = batch["attention_mask"]
        elif f.arch == "decoder":
            batch = collate_causal(rows, pad_id=f.pad, packed=self.pack)
            mask = batch["attention_mask"]
        else:
            batch = collate_masked(rows, pad_id=f.pad, packed=self.pack)
            mask = batch["attention_mask"]
        f.stats["tokens"] += int(mask.sum())
        f.stats["padding"] += int(mask.numel() - mask.sum())
        return batch

    def _report(self) -> None:
        """Truncation is never silent: a warning the first time, the counts in `stats`."""
        for key in ("truncated_inputs", "truncated_targets"):
            if self.featurizer.stats[key] and key not in self._warned:
                self._warned.add(key)
                limit = self.featurizer.max_in if key == "truncated_inputs" else self.featurizer.max_tgt
                log.warning(
                    "some examples are longer than %s=%d and were %s; stream.stats counts them",
                    "max_input_length" if key == "truncated_inputs" else "max_target_length",
                    limit,
                    "truncated",
                )

    def state_dict(self) -> dict[str, Any]:
        """The exact position: examples read, pieces waiting, the objective's state, counters."""
        return {
            "version": _STATE_VERSION,
            "consumed": self.consumed,
            "batches": self.batches,
            "exhausted": self._exhausted,
            "pending": [(type(p).__name__, *p) for p in self.pending],
            "featurizer": self.featurizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from t2t.data import batching

        if state.get("version") not in (1, _STATE_VERSION):
            raise ConfigError(
                f"stream state version {state.get('version')!r} is not {_STATE_VERSION}; it comes from another t2t"
            )
        self.consumed = int(state["consumed"])
        self.batches = int(state["batches"])
        self._exhausted = bool(state["exhausted"])
        self.pending = deque(getattr(batching, kind)(*fields) for kind, *fields in state["pending"])
        self.featurizer.load_state_dict(state["featurizer"])
        self._examples = None


def _examples(
    source: Task | Mixture, split: str, seed: int, repeat: bool, shuffle: bool
) -> Callable[[int], Iterator[dict]]:
    """A function start -> the source's examples from that position (endless when repeat)."""
    if isinstance(source, Mixture):
        if repeat:
            return lambda start: source.examples(split, seed=seed, start=start, shuffle=shuffle)
        return lambda start: itertools.islice(source.examples_once(split), start, None)
    if repeat:
        return lambda start: cycle_examples(source, split, start, seed if shuffle else None)
    return lambda start: source.examples(split, start=start)


def make_stream(
    source: str | Path | Task | Mixture,
    tokenizer: Any,
    *,
    objective: str = "text2text",
    arch: str = "encoder-decoder",
    batch_size: int,
    max_input_length: int = 512,
    max_target_length: int = 128,
    split: str = "train",
    seed: int = 0,
    pack: bool = False,
    repeat: bool = True,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = False,
    **objective_options: Any,
) -> BatchStream:
    """Batches of `source` (a Task, a Mixture, a registered name or a data file) for `model(**batch)`.

    objective: text2text (inputs -> targets), span_corruption, prefix_lm (encoder-decoder or decoder),
    causal_lm (decoder), mlm_nsp (encoder). Pretraining objectives read each example's "text" (else
    "inputs"). Options: noise_density, mean_noise_span_length (span_corruption); mlm_probability, nsp
    (mlm_nsp); decoder_start_id (encoder-decoder; default the pad id, as T5). shuffle (with repeat):
    every epoch of every task in its own seeded order; it holds each task's split in memory, so shuffle
    a corpus too big for that on disk beforehand."""
    resolved = resolve(source)
    featurizer = Featurizer(
        tokenizer,
        objective=objective,
        arch=arch,
        max_input_length=max_input_length,
        max_target_length=max_target_length,
        seed=seed,
        **objective_options,
    )
    return BatchStream(
        _examples(resolved, split, seed, repeat, shuffle),
        featurizer,
        tasks=resolved.tasks if isinstance(resolved, Mixture) else [resolved],
        split=split,
        batch_size=batch_size,
        pack=pack,
        rank=rank,
        world_size=world_size,
    )
