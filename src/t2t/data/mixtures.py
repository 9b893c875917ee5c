"""Mixture: sample examples from several tasks at given rates, as in the T5 paper (section 3.5.2).

- equal: every task 1/k.
- proportional: examples-proportional with an artificial limit K, r_m = min(n_m, K) / sum_j min(n_j, K).
- temperature: the proportional rates (with K) raised to 1/T and renormalised (T=1 is proportional,
  T -> inf tends to equal).

The draws come in fixed blocks, each from its own seeded generator, so the stream is deterministic
given a seed and can start at any position without replaying the examples before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from t2t.configbase import check_choice
from t2t.data.task_table import get_task
from t2t.data.tasks import Task
from t2t.errors import ConfigError, DataError

RATES = ("proportional", "equal", "temperature")
_BLOCK = 4096


def cycle_examples(task: Task, split: str, start: int = 0, shuffle_seed: int | None = None) -> Iterator[dict]:
    """A task's examples over and over (epoch after epoch), from example `start` of the endless run.
    With shuffle_seed, each epoch visits the split in its own seeded order (the split is held in memory)."""
    if shuffle_seed is not None:
        yield from _shuffled_cycle(task, split, start, shuffle_seed)
        return
    first = 0
    if start:
        size = task.num_examples(split)
        if size == 0:
            raise DataError(f"task {task.name!r} has no {split} examples to repeat")
        first = start % size
    while True:
        produced = False
        for example in task.examples(split, start=first):
            produced = True
            yield example
        if not produced and first == 0:
            raise DataError(f"task {task.name!r} has no {split} examples to repeat")
        first = 0


def _shuffled_cycle(task: Task, split: str, start: int, seed: int) -> Iterator[dict]:
    examples = list(task.examples(split))
    if not examples:
        raise DataError(f"task {task.name!r} has no {split} examples to repeat")
    epoch, offset = divmod(start, len(examples))
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(examples))
        for index in order[offset:].tolist():
            yield examples[index]
        epoch, offset = epoch + 1, 0


class Mixture:
    """tasks: Task objects or registered task names. `examples()` is endless; each example carries
    "task" (its task's name)."""

    def __init__(
        self,
        name: str,
        tasks: Sequence[Task | str],
        *,
        rate: str = "proportional",
        cap: int | None = None,
        temperature: float = 1.0,
    ) -> None:

        check_choice("rate", rate, RATES)
        if not tasks:
            raise ConfigError(f"mixture {name!r} has no tasks; give it at least one")
        if cap is not None and cap < 1:
            raise ConfigError(f"cap={cap} should be a positive number of examples (or None for no cap)")
        if not 0 < temperature < float("inf"):  # written so that NaN fails too
            raise ConfigError(f"temperature={temperature} should be a number > 0 (1 = examples-proportional)")
        self.name = name
        self.tasks = [t if isinstance(t, Task) else get_task(t) for t in tasks]
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ConfigError(f"mixture {name!r} lists a task twice: {names}")
        self.rate = rate
        self.cap = cap
        self.temperature = temperature
        self._rates: dict[str, float] | None = None

    def __repr__(self) -> str:
        return f"Mixture({self.name!r}, tasks={[t.name for t in self.tasks]}, rate={self.rate!r})"

    @property
    def rates(self) -> dict[str, float]:
        """Each task's share of the examples (sums to 1); counts come from the train split."""
        if self._rates is None:
            self._rates = mixing_rates(
                {t.name: (t.num_examples("train") if self.rate != "equal" else 1) for t in self.tasks},
                rate=self.rate,
                cap=self.cap,
                temperature=self.temperature,
            )
        return self._rates

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.tasks[0].splits if all(s in t.splits for t in self.tasks))

    def _choices(self, seed: int, block: int) -> np.ndarray:
        probs = np.array(list(self.rates.values()), dtype=np.float64)
        return np.random.default_rng([seed, block]).choice(len(probs), size=_BLOCK, p=probs / probs.sum())

    def examples(
        self, split: str = "train", seed: int = 0, start: int = 0, shuffle: bool = False
    ) -> Iterator[dict]:
        """Endless, deterministic given `seed`; `start` begins at that position of the same sequence.
        shuffle: each task's epochs in a seeded order (its split held in memory)."""
        block, offset = divmod(start, _BLOCK)
        counts = np.zeros(len(self.tasks), dtype=np.int64)
        for b in range(block):
            counts += np.bincount(self._choices(seed, b), minlength=len(self.tasks))
        first = self._choices(seed, block)
        counts += np.bincount(first[:offset], minlength=len(self.tasks))
        streams = [
            cycle_examples(t, split, int(n), seed + k if shuffle else None)
            for k, (t, n) in enumerate(zip(self.tasks, counts, strict=True))
        ]
        choices: np.ndarray = first[offset:]
        while True:
            for index in choices.tolist():
                example = next(streams[index])
                yield {**example, "task": self.tasks[index].name}
            block += 1
            choices = self._choices(seed, block)

    def examples_once(self, split: str) -> Iterator[dict]:
        """Each task's split once, task after task (for an evaluation pass)."""
        for task in self.tasks:
            for example in task.examples(split):
                yield {**example, "task": task.name}


def mixing_rates(
    sizes: dict[str, int], *, rate: str = "proportional", cap: int | None = None, temperature: float = 1.0
) -> dict[str, float]:
    """Rates from example counts (see the module docstring)."""
    check_choice("rate", rate, RATES)
    if rate == "equal":
        return {name: 1.0 / len(sizes) for name in sizes}
    weights = {name: float(min(n, cap) if cap is not None else n) for name, n in sizes.items()}
    empty = [name for name, w in weights.items() if w <= 0]
    if empty:
        raise DataError(f"task {empty[0]!r} has no train examples, so it cannot be mixed by size")
    if rate == "temperature":
        weights = {name: w ** (1.0 / temperature) for name, w in weights.items()}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}
