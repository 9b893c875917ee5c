"""A small training loop for the fine-tuning heads and the pretraining recipes.

t2t.train's Trainer drives text-to-text streams and evaluates by generation; the heads here take
per-task batches (choices, span positions) and are scored by their own decoders, so this loop keeps to
what they need and takes t2t.train's pieces for the rest: AdamW without decay on biases and norms, BERT's
linear warm-up then linear decay, gradient clipping, and an option that trains the head only (the
encoder frozen, BERT's feature-based setting).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from t2t.errors import ConfigError
from t2t.train.config import OptimSection, ScheduleSection
from t2t.train.optim import build_optimizer, build_scheduler

HEAD_MODULES = ("classifier", "pooler")  # what a frozen backbone leaves trainable
Batch = dict[str, torch.Tensor]


@dataclass
class TrainStats:
    steps: int
    seconds: float
    trainable_parameters: int
    losses: list[float] = field(default_factory=list)  # the mean loss of each logging window


def freeze_backbone(model: nn.Module) -> int:
    """Train only the task head (`classifier`, and BERT's `pooler`): the encoder's features stay as
    pre-trained. Returns the number of trainable parameters left."""
    trainable = 0
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.split(".")[0] in HEAD_MODULES
        trainable += parameter.numel() if parameter.requires_grad else 0
    if not trainable:
        raise ConfigError("freeze_encoder=true leaves nothing to train: the model has no task head")
    return trainable


def shuffled_batches(
    features: Sequence[dict], batch_size: int, collate: Callable[[Sequence[dict]], Batch], seed: int
) -> Iterator[Batch]:
    """Endless batches, reshuffled each epoch with a seeded order (the same seed, the same batches)."""
    if not features:
        raise ConfigError("no training examples; check data.train and data.limit_train")
    rng = random.Random(seed)
    order = list(range(len(features)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield collate([features[i] for i in order[start : start + batch_size]])


def steps_for(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    steps = max(1, math.ceil(n_examples / batch_size * epochs))
    return min(steps, max_steps) if max_steps else steps


def fit(
    model: nn.Module,
    batches: Iterator[Batch],
    steps: int,
    *,
    learning_rate: float,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    grad_clip: float = 1.0,
    device: torch.device | str = "cpu",
    log_every: int = 50,
    on_log: Callable[[int, float], None] | None = None,
) -> TrainStats:
    """`steps` optimizer steps of model(**batch).loss over `batches`."""
    model.to(device).train()
    optimizer = build_optimizer(
        model, OptimSection(name="adamw", lr=learning_rate, weight_decay=weight_decay)
    )
    schedule = build_scheduler(
        optimizer, ScheduleSection(name="linear", warmup_steps=int(warmup * steps)), steps
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = TrainStats(steps=steps, seconds=0.0, trainable_parameters=trainable)
    window: list[float] = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise ConfigError(f"the loss became {loss.item()} at step {step}; lower learning_rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
        optimizer.step()
        schedule.step()
        window.append(loss.item())
        if step % log_every == 0 or step == steps:
            stats.losses.append(sum(window) / len(window))
            if on_log is not None:
                on_log(step, stats.losses[-1])
            window = []
    stats.seconds = time.perf_counter() - start
    model.eval()
    return stats


@torch.no_grad()
def predict(
    model: nn.Module,
    features: Sequence[dict],
    collate: Callable[[Sequence[dict]], Batch],
    batch_size: int,
    device: torch.device | str = "cpu",
) -> list[dict[str, torch.Tensor]]:
    """The head's outputs (logits, or start/end logits) of each feature, labels left out of the batch."""
    model.to(device).eval()
    label_keys = {"labels", "start_positions", "end_positions"}
    outputs: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(features), batch_size):
        batch = collate(
            [
                {k: v for k, v in f.items() if k not in label_keys}
                for f in features[start : start + batch_size]
            ]
        )
        out = model(**{k: v.to(device) for k, v in batch.items()})
        keys = ["start_logits", "end_logits"] if out.start_logits is not None else ["logits"]
        for row in range(batch["input_ids"].shape[0]):
            outputs.append({k: getattr(out, k)[row].float().cpu() for k in keys})
    return outputs
