"""The training loop: one Trainer for pretraining, fine-tuning (text-to-text and task heads), multi-task
and incremental learning.

What varies between kinds of training is an Objective (t2t.train.objective): how a batch is made and
how the model is scored. The rest is here and the same for all: set-up (model, optimizer, schedule,
resume), the loop (optimizer steps of t2t.train.step, evaluation, checkpoints), and a run's health: a
step whose loss or gradient norm is not finite is skipped and counted, and `max_bad_steps` such steps
in a row, or steps in a row with an exactly zero gradient (a dead run), stop it with one line.
Checkpoints hold everything needed to continue bit-identically (`resume: true`).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2t.data.workers import prefetch
from t2t.errors import T2TError
from t2t.model.transformer import set_activation_checkpointing
from t2t.peft.inject import apply_peft
from t2t.train import build, checkpoint, checks, distributed, rundir
from t2t.train.checkpointing import RunCheckpoints
from t2t.train.config import TrainConfig
from t2t.train.evaluation import EvalFn, Evaluator, task_scores
from t2t.train.objective import Objective, text_objective
from t2t.train.optim import build_optimizer, build_scheduler, restore_optimizer
from t2t.train.runlog import Progress, RunLog, data_counts, describe_data_counts, truncate_metrics
from t2t.train.speed import tune_malloc
from t2t.train.step import OptimizerStep, StepStats
from t2t.utils.log import logger

log = logger("train")


class TrainingDiverged(T2TError):
    """Too many consecutive steps with a non-finite loss or gradient, or with no gradient at all."""


@dataclass
class TrainResult:
    step: int
    losses: list[float]  # training loss of each optimizer step of this process's fit()
    eval_history: list[dict[str, Any]]
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    best_metric: float | None
    elapsed: float  # seconds
    skipped_steps: int = 0
    stopped_early: bool = False
    run_dir: Path = field(default_factory=Path)

    @property
    def final_metrics(self) -> dict[str, float]:
        """The last evaluation's metrics (the end of the run), without its step."""
        last = self.eval_history[-1] if self.eval_history else {}
        return {k: v for k, v in last.items() if k != "step"}


class Trainer:
    """`Trainer(TrainConfig(...)).fit()`, or with parts of your own: `model=`, `tokenizer=`,
    `train_stream=` (batches with state_dict / load_state_dict), `objective=` (t2t.train.objective).

    Anything not passed in is built from the config: the model from model.preset / model.config /
    model.checkpoint; the objective from data (a task or mixture of t2t.data, or data.train files for
    a task head or corpus pretraining). `eval_tasks` (names or Task objects) are scored with
    t2t.evaluate every eval.every steps; `eval_stream` (an iterable of batches, or a callable
    returning one) gives the validation loss; `eval_fn(model, step) -> {name: value}` adds metrics of
    your own."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: Any = None,
        tokenizer: Any = None,
        train_stream: Iterable[dict[str, torch.Tensor]] | None = None,
        objective: Objective | None = None,
        eval_tasks: Sequence[Any] | None = None,
        eval_stream: Any = None,
        eval_fn: EvalFn | None = None,
        data_workers: int | None = None,
    ) -> None:
        self.config = cfg = config
        self.run_dir = Path(cfg.run_dir)
        rundir.check_run_dir(self.run_dir, resume=cfg.resume, overwrite=cfg.overwrite)
        self.dist = distributed.init_distributed(cfg.distributed, "cuda" if _wants_cuda(cfg) else "cpu")
        self.device = distributed.device_for(cfg.device, self.dist)
        _seed_everything(cfg.seed)
        build.register_yaml_tasks(cfg)
        self.replay_tasks = checks.resolve_tasks("data.replay.tasks", cfg.data.replay.tasks)
        if objective is None and train_stream is None and cfg.data.from_files:
            from t2t.train.heads import build_head_objective

            head = build_head_objective(
                cfg, model=model, tokenizer=tokenizer, rank=self.dist.rank, world_size=self.dist.world_size
            )
            model, tokenizer = head.model, head.tokenizer
            objective = Objective(
                cfg.data.objective, head.stream, head.evaluate, head.metric, head.train_examples
            )
        self.tokenizer = tokenizer if tokenizer is not None else _maybe_tokenizer(cfg)
        self.model = model if model is not None else build.build_model(cfg, self.tokenizer)
        # t2t.peft: adapters in and the base frozen before an optimizer sees the parameters
        apply_peft(self.model, cfg.peft)
        set_activation_checkpointing(self.model, cfg.activation_checkpointing)
        checks.check_scheduled_sampling(cfg.scheduled_sampling.schedule, self.model)
        self.eval_tasks = checks.resolve_tasks(
            "eval.tasks", list(eval_tasks) if eval_tasks is not None else cfg.eval.tasks
        )
        has_loss = False
        if objective is None:
            objective, has_loss = text_objective(
                cfg,
                self.model,
                self.tokenizer,
                eval_tasks=self.eval_tasks,
                replay_tasks=self.replay_tasks,
                train_stream=train_stream,
                eval_stream=eval_stream,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
        self.objective = objective
        # data_workers (else data.workers, else $T2T_DATA_WORKERS, else 0): the input pipeline in
        # background processes, same batches, same resume (t2t.data.workers)
        self.stream = prefetch(objective.stream, _data_workers(cfg, data_workers))
        self.max_steps = cfg.steps_for(objective.examples_per_epoch)
        metric = cfg.eval.metric if cfg.eval.metric != "auto" else objective.metric
        metric = metric or cfg.eval.resolved_metric(has_loss)
        self.evaluator = Evaluator(cfg.eval, objective.evaluate, eval_fn, metric)
        if self.evaluator.active and objective.metric is None:
            checks.check_metric(metric, self.eval_tasks, has_loss, eval_fn is not None)
        self.checkpoints = RunCheckpoints(cfg, self.dist)
        self.ss_generator = torch.Generator().manual_seed(cfg.seed + 1 + self.dist.rank)
        self.step = 0
        self.skipped_steps = 0
        self.bad_in_a_row = 0
        self.dead_in_a_row = 0  # steps in a row whose gradient was exactly zero (a dead run)
        self.losses: list[float] = []
        self.stopped_early = False
        self.forgetting_before: dict[str, float] | None = None
        self.wrapped: Any = None  # set up in fit(): the model under DDP / FSDP, optimizer, schedule
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.log: Any = None

    @property
    def metric(self) -> str:
        return self.evaluator.metric

    @property
    def ckpt_root(self) -> Path:
        return self.checkpoints.root

    # ----------------------------------------------------------------------------------------- set-up
    def _setup(self) -> OptimizerStep:
        cfg = self.config
        if self.device.type == "cpu":
            tune_malloc()
        if cfg.overwrite and not cfg.resume and self.dist.is_main:
            removed = rundir.clear_earlier_run(self.run_dir)
            if removed:
                log.info("--overwrite: removed %s from %s", ", ".join(removed), self.run_dir)
        distributed.barrier(self.dist)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.checkpoints.resume(self.model) if cfg.resume else None
        self.model.to(self.device)
        self.model.train()
        self.wrapped = distributed.wrap(self.model, cfg.distributed, self.dist, self.device)
        self.optimizer = build_optimizer(self.wrapped, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.max_steps)
        if state is not None:
            self._load_state(state)
        if self.dist.is_main:
            cfg.save(self.run_dir / "config.yaml")
            if state is not None:
                truncate_metrics(self.run_dir, self.step)
        self.log = RunLog(self.run_dir, enabled=self.dist.is_main, tensorboard=cfg.tensorboard)
        if self.dist.is_main and cfg.progress:
            log.info(_parameter_line(self.model))
        return OptimizerStep(
            cfg,
            self.model,
            self.wrapped,
            self.optimizer,
            self.scheduler,
            self.dist,
            self.device,
            self.ss_generator,
            tokenizer=self.tokenizer,
        )

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg = self.config
        start = time.perf_counter()
        optimizer_step = self._setup()
        self._forgetting_start()
        batches = iter(self.stream)
        progress = Progress(self.max_steps, self.step, cfg.progress and self.dist.is_main)
        last_eval = self.step if cfg.resume else -1
        try:
            while self.step < self.max_steps and not self.stopped_early:
                micro = _take(batches, cfg.grad_accum_steps)
                if micro is None:
                    break  # a finite stream ended
                t0 = time.perf_counter()
                stats = optimizer_step(micro, self.step)
                seconds = time.perf_counter() - t0
                self.step += 1
                self._after_step(stats, seconds, progress)
                if cfg.eval.every and self.step % cfg.eval.every == 0:
                    self._evaluate()
                    last_eval = self.step
                periodic = cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0
                healthy = not (self.bad_in_a_row or self.dead_in_a_row)
                if periodic and healthy and not self.checkpoints.saved_at(self.step):
                    self._save()  # never in the middle of a run of bad steps; once per step
            if self.evaluator.active and last_eval != self.step:
                self._evaluate()
            if not self.checkpoints.saved_at(self.step):
                self._save()
            self._forgetting_end()
            self._report_data()
        finally:
            progress.close()
            self.log.close()
            if hasattr(self.stream, "close"):
                self.stream.close()  # background data workers, if any
        return TrainResult(
            step=self.step,
            losses=self.losses,
            eval_history=self.evaluator.best.history,
            best_checkpoint=self.checkpoints.link("best"),
            last_checkpoint=self.checkpoints.link("last"),
            best_metric=self.evaluator.best.best,
            elapsed=time.perf_counter() - start,
            skipped_steps=self.skipped_steps,
            stopped_early=self.stopped_early,
            run_dir=self.run_dir,
        )

    def _after_step(self, stats: StepStats, seconds: float, progress: Progress) -> None:
        cfg = self.config
        lr = self.scheduler.get_last_lr()[0]
        self.losses.append(stats.loss)
        if not stats.finite:
            self.skipped_steps += 1
            self.bad_in_a_row += 1
        else:
            self.bad_in_a_row = 0
        self.dead_in_a_row = self.dead_in_a_row + 1 if stats.dead else 0
        tokens_per_s = stats.tokens / seconds if seconds > 0 else 0.0
        record = {
            "loss": stats.loss,
            "lr": lr,
            "grad_norm": stats.grad_norm,
            "tokens": stats.tokens,
            "target_tokens": stats.target_tokens,
            "tokens_per_s": tokens_per_s,
            "skipped_steps": self.skipped_steps,
        }
        if not stats.finite:
            record["skipped"] = True
        if self.step % cfg.log_every == 0 or not stats.finite:
            self.log.write("train", self.step, record)
        sampling = cfg.scheduled_sampling.schedule != "none"
        if sampling:  # every step, whatever log_every says: the schedule is part of the experiment
            self.log.write(
                "scheduled_sampling", self.step, {"ss_prob": stats.ss_prob, "ss_replaced": stats.ss_replaced}
            )
        if stats.rl is not None:  # every step: the reward curve is what sequence-level training is about
            self.log.write("rl", self.step, stats.rl)
        progress.update(1, stats.loss, lr, tokens_per_s, stats.ss_prob if sampling else None)
        self._check_health(stats)

    def _check_health(self, stats: StepStats) -> None:
        cfg = self.config
        if self.bad_in_a_row >= cfg.max_bad_steps:
            raise TrainingDiverged(
                f"training stopped at step {self.step}: {self.bad_in_a_row} steps in a row had a non-finite "
                f"loss or gradient (loss={stats.loss}, grad_norm={stats.grad_norm}); "
                f"{self.checkpoints.kept()}; lower optim.lr, set optim.grad_clip, turn off bf16 or check the data"
            )
        if self.dead_in_a_row >= cfg.max_bad_steps:
            raise TrainingDiverged(
                f"training stopped at step {self.step}: the gradient was exactly 0 for {self.dead_in_a_row} "
                f"steps in a row (loss {stats.loss:.4f}{_uniform_note(self.model, stats.loss)}), so the run "
                f"can no longer learn; {self.checkpoints.kept()}; lower optim.lr (now {cfg.optim.lr:g}) or "
                "check that the model's weights can train"
            )

    # ------------------------------------------------------------------------------------ evaluation
    def _evaluates_here(self) -> bool:
        """Rank 0 evaluates; with FSDP every rank runs the same forward passes (they gather the shards
        together) and rank 0's result is used."""
        return self.dist.is_main or self.checkpoints.fsdp

    def _evaluate(self) -> None:
        metrics = self.evaluator.compute(self.model, self.step) if self._evaluates_here() else {}
        metrics = _broadcast(metrics, self.dist)
        if not metrics:
            return
        outcome = self.evaluator.record(self.step, metrics)
        best = self.evaluator.best
        self.log.write("eval", self.step, {**metrics, "best": best.best})
        if outcome.improved and self.config.checkpoint.save_best:
            self.checkpoints.point_best(self._save())
        if outcome.stop:
            self.stopped_early = True
            if self.dist.is_main:
                log.info(
                    "early stop at step %d: %s did not improve for %d evaluations (best %s at step %s)",
                    self.step,
                    self.metric,
                    self.config.eval.patience,
                    best.best,
                    best.best_step,
                )

    # ----------------------------------------------------------------------------------- checkpoints
    def _trainer_state(self) -> dict[str, Any]:
        """Everything but the weights and the optimizer state (RunCheckpoints adds that one)."""
        return {
            "step": self.step,
            "scheduler": self.scheduler.state_dict(),
            "rng": _gather(checkpoint.rng_state(), self.dist),
            "ss_generator": _gather(self.ss_generator.get_state(), self.dist),
            "stream": self.stream.state_dict() if hasattr(self.stream, "state_dict") else None,
            "skipped_steps": self.skipped_steps,
            "bad_in_a_row": self.bad_in_a_row,
            "dead_in_a_row": self.dead_in_a_row,
            "best": self.evaluator.best.state_dict(),
            "forgetting_before": self.forgetting_before,
            "config": self.config.to_dict(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        load = None
        if self.checkpoints.fsdp:

            def load(full: dict[str, Any]) -> None:
                distributed.load_full_optimizer_state(self.wrapped, self.optimizer, full)

        restore_optimizer(self.optimizer, self.scheduler, state["optimizer"], state["scheduler"], load)
        self.step = state["step"]
        self.skipped_steps = state["skipped_steps"]
        self.bad_in_a_row = state["bad_in_a_row"]
        self.dead_in_a_row = state.get("dead_in_a_row", 0)
        self.evaluator.best.load_state_dict(state["best"])
        self.forgetting_before = state.get("forgetting_before")
        rngs = state["rng"]
        checkpoint.set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        self.ss_generator.set_state(
            state["ss_generator"][min(self.dist.rank, len(state["ss_generator"]) - 1)]
        )
        if state.get("stream") is not None and hasattr(self.stream, "load_state_dict"):
            self.stream.load_state_dict(state["stream"])
        elif self.dist.is_main:
            log.warning("the data stream has no saved position; it restarts")
        if self.dist.is_main:
            log.info("resumed from %s at step %d", state["directory"], self.step)

    def _save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; all ranks take part in gathers)."""
        summary = {
            "step": self.step,
            "loss": self.losses[-1] if self.losses else None,
            "skipped_steps": self.skipped_steps,
            "best_metric": self.evaluator.best.best,
            "best_step": self.evaluator.best.best_step,
            "metric": self.metric,
        }
        return self.checkpoints.save(
            self.step,
            self.model,
            self.wrapped,
            self.optimizer,
            self.tokenizer,
            self._trainer_state(),
            summary,
        )

    def _report_data(self) -> None:
        """One line on stderr (and a `data` record) when examples were truncated or records skipped."""
        counts = data_counts(self.stream)
        if not self.dist.is_main or not counts:
            return
        self.log.write("data", self.step, counts)
        log.info(describe_data_counts(self.stream, counts))

    # ------------------------------------------------------------------------- incremental learning
    def _forgetting_start(self) -> None:
        replay = self.config.data.replay
        if not (replay.report and replay.tasks) or self.forgetting_before is not None:
            return
        self.forgetting_before = self._replay_scores()

    def _forgetting_end(self) -> None:
        replay = self.config.data.replay
        if not (replay.report and replay.tasks) or self.forgetting_before is None:
            return
        from t2t.train.incremental import write_forgetting_report

        after = self._replay_scores()
        if self.dist.is_main:
            write_forgetting_report(self.run_dir, self.forgetting_before, after, replay.share)

    def _replay_scores(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        if self._evaluates_here():
            self.model.eval()
            try:
                scores = task_scores(self.model, self.tokenizer, self.replay_tasks, self.config.eval)
            finally:
                self.model.train()
        return _broadcast(scores, self.dist)


# --------------------------------------------------------------------------------------------- helpers
def _wants_cuda(cfg: TrainConfig) -> bool:
    return cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())


def _data_workers(cfg: TrainConfig, given: int | None) -> int:
    if given is not None:
        return given
    if cfg.data.workers is not None:
        return cfg.data.workers
    raw = os.environ.get("T2T_DATA_WORKERS", "0")
    try:
        workers = int(raw)
    except ValueError:
        workers = -1
    if not 0 <= workers <= 64:
        raise T2TError(f"T2T_DATA_WORKERS={raw!r} is not a worker count; give 0 to 64 or unset it")
    return workers


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _maybe_tokenizer(cfg: TrainConfig) -> Any:
    if cfg.model.tokenizer or cfg.model.checkpoint:
        return build.build_tokenizer(cfg)
    return None


def _parameter_line(model: torch.nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    share = 100.0 * trainable / max(total, 1)
    return f"{total:,} parameters, {trainable:,} trainable ({share:.1f}%)"


def _take(batches: Iterator[dict[str, torch.Tensor]], n: int) -> list[dict[str, torch.Tensor]] | None:
    out = []
    for _ in range(n):
        try:
            out.append(next(batches))
        except StopIteration:
            return None
    return out


def _uniform_note(model: Any, loss: float) -> str:
    """', the uniform guess over V tokens' when the loss sits at ln(V): the model predicts nothing."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and vocab > 1 and abs(loss - math.log(vocab)) < 0.05 * math.log(vocab):
        return f", about ln({vocab}) = {math.log(vocab):.4f}: a uniform guess"
    return ""


def _broadcast(value: Any, info: distributed.DistInfo) -> Any:
    if not info.enabled:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather(value: Any, info: distributed.DistInfo) -> list[Any]:
    if not info.enabled:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out
