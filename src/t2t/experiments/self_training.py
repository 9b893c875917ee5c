"""Semi-supervised self-training (pseudo-labelling): train on the labelled examples, label the unlabelled
ones with the model, keep the answers it is most confident of, train again on both, repeat.

    result = self_train(train, label, labelled, unlabelled, SelfTrainingConfig(rounds=2, keep=0.5))

`train(examples, round) -> model` trains a model on text examples ({"inputs", "targets"}) through the
Trainer; `label(model, examples) -> [(answer, confidence)]` is `pseudo_label` (below) or any labeller.
The confidence comes from t2t.generation: with candidate answers (a classification task's labels) the
probability of the best candidate among them (`rank_candidates`, T5's way of scoring classes); without,
the greedy answer's mean token probability (`score`, reduction "mean").

This is the recipe a `t2t train` pseudo-labelling stage would run (see docs/experiments/README.md);
t2t.experiments.procedures wires it to an experiment's Unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from t2t.configbase import StrictConfig, check_range

Example = dict[str, Any]


@dataclass
class SelfTrainingConfig(StrictConfig):
    rounds: int = 2  # pseudo-labelling rounds after the supervised one
    keep: float = 0.5  # share of the labelled pool kept each round: the most confident answers
    pool: int | None = 2000  # unlabelled examples labelled each round (a seeded sample; None: all)
    candidates: list[str] | None = None  # answers to choose among; None: a task's own when it has <= 20
    fresh: bool = True  # each round trains from the initial weights (False: continues the last model)
    seed: int = 0

    def validate(self) -> None:
        check_range("rounds", self.rounds, 0)
        if not 0.0 < self.keep <= 1.0:
            from t2t.errors import ConfigError

            raise ConfigError(f"keep={self.keep} is out of range (0, 1]")
        if self.pool is not None:
            check_range("pool", self.pool, 1)


@dataclass
class SelfTrainingResult:
    model: Any
    rounds: list[dict[str, float]] = field(default_factory=list)  # per round: scores and pseudo-label stats


def pseudo_label(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    candidates: Sequence[str] | None = None,
    batch_size: int = 32,
    max_new_tokens: int = 24,
) -> list[tuple[str, float]]:
    """(answer, confidence in [0, 1]) for each example's inputs."""
    from t2t.generation.pipeline import Pipeline
    from t2t.generation.scoring import rank_candidates, score
    from t2t.generation.text import pad_rows

    prompts = [e["inputs"] for e in examples]
    model.eval()
    if candidates:
        scores = rank_candidates(
            model, tokenizer, prompts, [list(candidates)] * len(prompts), batch_size=batch_size
        )
        out = []
        for row in scores:
            probs = torch.softmax(torch.tensor(row), 0)
            best = int(probs.argmax())
            out.append((candidates[best], float(probs[best])))
        return out
    answers = Pipeline(model, tokenizer, batch_size=batch_size, max_new_tokens=max_new_tokens)(prompts)
    out = []
    for begin in range(0, len(prompts), batch_size):
        chunk = range(begin, min(begin + batch_size, len(prompts)))
        ids, mask = pad_rows(
            [tokenizer.encode(prompts[i]) for i in chunk],
            tokenizer.pad_id,
            left=False,
            device=torch.device("cpu"),
        )
        answer_ids = [tokenizer.encode(answers[i]) or [tokenizer.eos_id] for i in chunk]
        width = max(map(len, answer_ids))
        labels = torch.full((len(answer_ids), width), -100, dtype=torch.long)
        for r, row in enumerate(answer_ids):
            labels[r, : len(row)] = torch.tensor(row)
        with torch.no_grad():
            mean_logp = score(model, ids, labels, mask, reduction="mean")
        out += [(answers[i], math.exp(float(v))) for i, v in zip(chunk, mean_logp, strict=True)]
    return out


def confident(
    labelled: Sequence[tuple[Example, str, float]], keep: float
) -> list[tuple[Example, str, float]]:
    """The `keep` share of (example, answer, confidence) with the highest confidence (ties: first)."""
    order = sorted(range(len(labelled)), key=lambda i: (-labelled[i][2], i))
    count = max(1, math.ceil(keep * len(labelled))) if labelled else 0
    return [labelled[i] for i in sorted(order[:count])]


def self_train(
    train: Callable[[list[Example], int], Any],
    label: Callable[[Any, list[Example]], list[tuple[str, float]]],
    labelled: Sequence[Example],
    unlabelled: Sequence[Example],
    config: SelfTrainingConfig,
    *,
    evaluate: Callable[[Any], dict[str, float]] | None = None,
    same: Callable[[Example, str], bool] | None = None,
) -> SelfTrainingResult:
    """Round 0 trains on `labelled`; each later round labels a sample of `unlabelled` with the latest
    model, keeps the confident share, and trains on labelled + kept. `same(example, answer)` (when the
    hidden targets are known, as in an experiment) gives the kept pseudo-labels' accuracy."""
    model = train(list(labelled), 0)
    rounds = [{"round": 0.0, "pseudo_kept": 0.0, **(evaluate(model) if evaluate else {})}]
    rng = np.random.default_rng([config.seed, 31])
    for r in range(1, config.rounds + 1):
        pool = list(unlabelled)
        if config.pool is not None and len(pool) > config.pool:
            pool = [pool[i] for i in sorted(rng.choice(len(pool), config.pool, replace=False).tolist())]
        answers = label(model, pool)
        kept = confident([(e, a, c) for e, (a, c) in zip(pool, answers, strict=True)], config.keep)
        pseudo = [{**e, "targets": a} for e, a, _ in kept if a.strip()]
        stats = {"round": float(r), "pseudo_kept": float(len(pseudo))}
        if kept:
            stats["pseudo_confidence"] = float(np.mean([c for _, _, c in kept]))
        if same is not None and kept:
            stats["pseudo_accuracy"] = 100.0 * float(np.mean([same(e, a) for e, a, _ in kept]))
        model = train(list(labelled) + pseudo, r)
        rounds.append({**stats, **(evaluate(model) if evaluate else {})})
    return SelfTrainingResult(model, rounds)
