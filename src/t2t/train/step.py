"""One optimizer step over `grad_accum_steps` micro-batches, with one policy for bad steps.

The micro-batches' token losses are summed and divided by the target tokens of all of them (on all
processes), so accumulation gives the update of the large batch. Gradients are reduced across
processes on the last micro-batch only. A step whose loss or gradient norm is not finite is skipped
(no update; the schedule moves on); a finite step whose gradient is exactly zero is marked dead.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from t2t.train import distributed
from t2t.train.config import TrainConfig
from t2t.train.loss import count_targets, loss_kind, loss_sums
from t2t.train.scheduled_sampling import mix_decoder_inputs, predictions, sampling_probability

Batch = dict[str, torch.Tensor]


@dataclass
class StepStats:
    loss: float
    grad_norm: float
    finite: bool
    target_tokens: int
    tokens: int
    ss_prob: float = 0.0
    ss_replaced: float = 0.0
    dead: bool = False  # finite, but the gradient is exactly zero: nothing can learn any more
    rl: dict[str, float] | None = None  # sequence-level training: reward, baseline, kl, sample_length


class OptimizerStep:
    """`step(micro_batches, step_index) -> StepStats`: forward, backward, clip, update, schedule."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        wrapped: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        dist: distributed.DistInfo,
        device: torch.device,
        ss_generator: torch.Generator,
        tokenizer: Any = None,
    ) -> None:
        self.cfg, self.model, self.wrapped = cfg, model, wrapped
        self.optimizer, self.scheduler = optimizer, scheduler
        self.dist, self.device, self.ss_generator = dist, device, ss_generator
        self.kind = loss_kind(model)
        self.fsdp = dist.enabled and cfg.distributed.strategy == "fsdp"
        self.rl = None
        if cfg.rl.method != "none":
            from t2t.train.rl import SequenceLevelLoss

            self.rl = SequenceLevelLoss(model, tokenizer, cfg.rl)

    def __call__(self, micro: list[Batch], step: int) -> StepStats:
        if self.rl is not None:
            return self._sequence_level(micro)
        cfg = self.cfg
        counts = [count_targets(b, self.kind) for b in micro]
        local_inputs = sum(_input_tokens(b) for b in micro)
        n_tok, n_rows, n_inputs = distributed.all_reduce_sum(
            [sum(c[0] for c in counts), sum(c[1] for c in counts), local_inputs], self.dist, self.device
        )
        n_tok, n_rows = int(n_tok), int(n_rows)
        seq2seq = self.kind == "seq2seq"
        ss_prob = sampling_probability(cfg.scheduled_sampling, step) if seq2seq else 0.0
        tok_sum = row_sum = 0.0
        replaced = replaceable = 0
        for i, batch in enumerate(micro):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            with self._gradient_sync(last=i == len(micro) - 1):
                with self._autocast():
                    decoder_inputs = None
                    if ss_prob > 0.0:
                        decoder_inputs, r, a = self._sampled_decoder_inputs(batch, ss_prob)
                        replaced, replaceable = replaced + r, replaceable + a
                    sums, _ = loss_sums(
                        self.wrapped,
                        self.model,
                        batch,
                        self.kind,
                        label_smoothing=cfg.label_smoothing,
                        decoder_input_ids=decoder_inputs,
                    )
                    loss = sums.normalised(n_tok, n_rows) * self.dist.world_size
                loss.backward()
            tok_sum += float(sums.tokens.detach())
            row_sum += float(sums.rows.detach())
        tok_sum, row_sum = distributed.all_reduce_sum([tok_sum, row_sum], self.dist, self.device)
        step_loss = tok_sum / max(n_tok, 1) + row_sum / max(n_rows, 1)
        grad_norm, has_grads = self._clip_gradients()
        finite = math.isfinite(step_loss) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # a skipped step calls the scheduler without optimizer.step()
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
        if self.dist.enabled:
            replaced, replaceable = (
                int(x) for x in distributed.all_reduce_sum([replaced, replaceable], self.dist, self.device)
            )
        return StepStats(
            loss=step_loss,
            grad_norm=grad_norm,
            finite=finite,
            target_tokens=n_tok,
            tokens=int(n_inputs) + (n_tok if seq2seq else 0),
            ss_prob=ss_prob,
            ss_replaced=replaced / replaceable if replaceable else 0.0,
            dead=finite and has_grads and grad_norm == 0.0 and n_tok + n_rows > 0,
        )

    def _sequence_level(self, micro: list[Batch]) -> StepStats:
        """One update of t2t.train.rl's loss: each input's sampled outputs, weighted by their advantage."""
        local_rows = sum(int(b["input_ids"].shape[0]) for b in micro)
        (n_rows,) = distributed.all_reduce_sum([local_rows], self.dist, self.device)
        total, logged = 0.0, {"reward": 0.0, "baseline": 0.0, "kl": 0.0, "sample_length": 0.0}
        for i, batch in enumerate(micro):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            rows = int(batch["input_ids"].shape[0])
            with self._gradient_sync(last=i == len(micro) - 1), self._autocast():
                loss_sum, stats = self.rl(self.wrapped, batch)
                loss = loss_sum / max(n_rows, 1) * self.dist.world_size
            loss.backward()
            total += float(loss_sum.detach())
            for key in logged:
                logged[key] += getattr(stats, key) * rows
        total, *sums = distributed.all_reduce_sum([total, *logged.values()], self.dist, self.device)
        logged = {key: value / max(n_rows, 1) for key, value in zip(logged, sums)}
        step_loss = total / max(n_rows, 1)
        grad_norm, has_grads = self._clip_gradients()
        finite = math.isfinite(step_loss) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
        return StepStats(
            loss=step_loss,
            grad_norm=grad_norm,
            finite=finite,
            target_tokens=int(logged["sample_length"] * n_rows),
            tokens=int(n_rows * logged["sample_length"]),
            dead=finite and has_grads and grad_norm == 0.0 and logged["reward"] != logged["baseline"],
            rl=logged,
        )

    def _gradient_sync(self, last: bool) -> Any:
        """Gradients are reduced across processes on the last micro-batch only."""
        if not self.dist.enabled:
            return contextlib.nullcontext()
        if self.fsdp:
            self.wrapped.set_requires_gradient_sync(last)
            return contextlib.nullcontext()
        return contextlib.nullcontext() if last else self.wrapped.no_sync()

    def _autocast(self) -> Any:
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _sampled_decoder_inputs(self, batch: Batch, prob: float) -> tuple[torch.Tensor, int, int]:
        """Pass 1 of the two-pass decoder: gold inputs, no gradient; mix in its predictions."""
        ss = self.cfg.scheduled_sampling
        labels = batch["labels"]
        gold = batch.get("decoder_input_ids")
        if gold is None:
            gold = self.model.shift_right(labels)
        with torch.no_grad():
            inputs = {k: v for k, v in batch.items() if k not in ("labels",)}
            inputs["decoder_input_ids"] = gold
            logits = self.model(**inputs).logits
            predicted = predictions(logits, ss.sample, ss.temperature, self.ss_generator)
        return mix_decoder_inputs(
            gold, labels, predicted, prob, self.ss_generator, batch.get("decoder_segment_ids")
        )

    def _clip_gradients(self) -> tuple[float, bool]:
        """(global gradient norm before clipping, whether any parameter has a gradient)."""
        clip = self.cfg.optim.grad_clip
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return 0.0, False
        norm = torch.nn.utils.get_total_norm(grads)
        if hasattr(norm, "full_tensor"):  # FSDP: sharded gradients give a DTensor norm over all shards
            norm = norm.full_tensor()
        if clip > 0:
            torch.nn.utils.clip_grads_with_norm_(self.model.parameters(), clip, norm)
        return float(norm), True


def _input_tokens(batch: Batch) -> int:
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
