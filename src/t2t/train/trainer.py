"""The training loop: one Trainer for pre-training, fine-tuning, multi-task and incremental learning.

Each optimizer step reads `grad_accum_steps` micro-batches, sums their token losses, divides by the
target tokens of all of them (on all processes) and steps once, so accumulation gives the update of the
large batch. A step whose loss or gradient norm is not finite is skipped and counted; `max_bad_steps`
in a row stop the run. Checkpoints hold everything needed to continue bit-identically (`resume: true`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2t.errors import CheckpointError, ConfigError, T2TError
from t2t.train import build, checkpoint, checks, distributed, rundir
from t2t.train.config import TrainConfig
from t2t.train.evaluation import BestTracker, EvalFn, select, stream_loss, task_scores
from t2t.train.loss import count_targets, loss_kind, loss_sums
from t2t.train.optim import build_optimizer, build_scheduler, restore_optimizer
from t2t.train.resume import resume_changes
from t2t.train.runlog import Progress, RunLog, data_counts, describe_data_counts, truncate_metrics
from t2t.train.scheduled_sampling import mix_decoder_inputs, predictions, sampling_probability
from t2t.train.speed import tune_malloc


class TrainingDiverged(T2TError):
    """Too many consecutive steps with a non-finite loss or gradient."""


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


class Trainer:
    """`Trainer(TrainConfig(...), model=..., tokenizer=..., train_stream=...).fit()`.

    Anything not passed in is built from the config: the model from model.preset / model.config /
    model.checkpoint, the stream from data.task / data.mixture through t2t.data.make_stream.
    `eval_tasks` (names or Task objects) are scored with t2t.evaluate every eval.every steps;
    `eval_stream` (an iterable of batches, or a callable returning one) gives the validation loss;
    `eval_fn(model, step) -> {name: value}` adds metrics of your own."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: Any = None,
        tokenizer: Any = None,
        train_stream: Iterable[dict[str, torch.Tensor]] | None = None,
        eval_tasks: Sequence[Any] | None = None,
        eval_stream: Any = None,
        eval_fn: EvalFn | None = None,
    ) -> None:
        self.config = cfg = config
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        rundir.check_run_dir(self.run_dir, resume=cfg.resume, overwrite=cfg.overwrite)
        self.dist = distributed.init_distributed(cfg.distributed, "cuda" if _wants_cuda(cfg) else "cpu")
        self.device = distributed.device_for(cfg.device, self.dist)
        _seed_everything(cfg.seed)
        build.register_yaml_tasks(cfg)
        self.tokenizer = tokenizer if tokenizer is not None else _maybe_tokenizer(cfg)
        self.model = model if model is not None else build.build_model(cfg, self.tokenizer)
        self.kind = loss_kind(self.model)
        checks.check_scheduled_sampling(cfg.scheduled_sampling.schedule, self.model)
        self.eval_tasks = checks.resolve_tasks(
            "eval.tasks", list(eval_tasks) if eval_tasks is not None else cfg.eval.tasks
        )
        self.replay_tasks = checks.resolve_tasks("data.replay.tasks", cfg.data.replay.tasks)
        self._check_data(train_stream is None, eval_stream is None and cfg.eval.loss)
        self.stream = train_stream if train_stream is not None else self._default_stream()
        self.eval_stream = eval_stream
        if self.eval_stream is None and cfg.eval.loss:
            self.eval_stream = self._default_eval_stream
        self.eval_fn = eval_fn
        self.metric = cfg.eval.resolved_metric(self.eval_stream is not None)
        if self._has_eval():
            checks.check_metric(
                self.metric, self.eval_tasks, self.eval_stream is not None, eval_fn is not None
            )
        self.best = BestTracker(maximize=cfg.eval.maximize(self.metric))
        self.ss_generator = torch.Generator().manual_seed(cfg.seed + 1 + self.dist.rank)
        self.step = 0
        self.skipped_steps = 0
        self.bad_in_a_row = 0
        self.dead_in_a_row = 0  # steps in a row whose gradient was exactly zero (a dead run)
        self.losses: list[float] = []
        self.stopped_early = False
        self.forgetting_before: dict[str, float] | None = None
        self._last_saved: Path | None = None

    # ----------------------------------------------------------------------------------------- set-up
    def _check_data(self, builds_stream: bool, builds_eval_stream: bool) -> None:
        """Every split the run will read exists, before the first step."""
        cfg = self.config
        split = cfg.eval.split
        checks.check_splits("eval.split", self.eval_tasks, split, " (eval.tasks)")
        if cfg.data.replay.report:
            checks.check_splits(
                "eval.split", self.replay_tasks, split, " (data.replay.tasks are scored on it)"
            )
        if cfg.data.replay.share > 0:
            checks.check_splits("data.replay.tasks", self.replay_tasks, "train")
        if not (builds_stream or builds_eval_stream):
            return
        if builds_eval_stream and not (cfg.data.task or cfg.data.mixture):
            raise ConfigError(
                "eval.loss: true reads the validation split of data.task / data.mixture; set one, or pass "
                "eval_stream="
            )
        key = "data.mixture" if cfg.data.mixture else "data.task"
        tasks = checks.source_tasks(key, build.source_of(cfg))
        if builds_stream:
            checks.check_splits(key, tasks, "train")
        if builds_eval_stream:
            checks.check_splits("eval.split", tasks, split, " (eval.loss reads it from the training source)")

    def _default_stream(self) -> Any:
        cfg = self.config
        if self.tokenizer is None:
            build.build_tokenizer(cfg)  # raises the ConfigError that says what is missing
        arch = build.arch_of(self.model)
        main = build.build_stream(
            cfg,
            self.tokenizer,
            arch,
            build.source_of(cfg),
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        replay = build.replay_source(self.replay_tasks, cfg.data.replay.share)
        if replay is None:
            return main
        from t2t.train.replay import ReplayStream

        replayed = build.build_stream(
            cfg,
            self.tokenizer,
            arch,
            replay,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            seed_offset=1,
        )
        return ReplayStream(main, replayed, cfg.data.replay.share)

    def _default_eval_stream(self) -> Any:
        cfg = self.config
        return build.build_stream(
            cfg,
            self.tokenizer,
            build.arch_of(self.model),
            build.source_of(cfg),
            split=cfg.eval.split,
            repeat=False,
        )

    def _setup(self) -> None:
        cfg = self.config
        if self.device.type == "cpu":
            tune_malloc()
        if cfg.overwrite and not cfg.resume and self.dist.is_main:
            removed = rundir.clear_earlier_run(self.run_dir)
            if removed:
                print(
                    f"t2t train: --overwrite: removed {', '.join(removed)} from {self.run_dir}",
                    file=sys.stderr,
                )
        distributed.barrier(self.dist)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self._resume_state() if cfg.resume else None
        self.model.to(self.device)
        self.model.train()
        self.wrapped = distributed.wrap(self.model, cfg.distributed, self.dist, self.device)
        self.optimizer = build_optimizer(self.wrapped, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, cfg.max_steps)
        if state is not None:
            self._load_state(state)
        if self.dist.is_main:
            cfg.save(self.run_dir / "config.yaml")
            if state is not None:
                truncate_metrics(self.run_dir, self.step)
        self.log = RunLog(self.run_dir, enabled=self.dist.is_main, tensorboard=cfg.tensorboard)

    def _resume_state(self) -> dict[str, Any] | None:
        directory = checkpoint.resolve_link(self.ckpt_root, "last")
        link = self.ckpt_root / "last"
        if directory is None and link.is_symlink():
            steps = sorted(p.name for p in self.ckpt_root.glob("step-*") if p.is_dir())
            hint = f"point it at {steps[-1]} (ln -sfn {steps[-1]} {link})" if steps else "remove it"
            raise CheckpointError(f"{link} points at {os.readlink(link)}, which is missing; {hint}")
        if directory is None:
            if self.dist.is_main:
                print(f"t2t train: no checkpoint in {self.ckpt_root}; starting from step 0", file=sys.stderr)
            return None
        from t2t.hub import from_pretrained

        state = checkpoint.load_state(directory)
        saved_config = state.get("config")
        if isinstance(saved_config, dict):
            changes = resume_changes(saved_config, self.config.to_dict())
            if changes and self.dist.is_main:
                print(
                    f"t2t train: resuming with {'; '.join(changes)} (from step {state['step']} on)",
                    file=sys.stderr,
                )
        loaded = from_pretrained(directory)
        _load_weights(self.model, loaded.state_dict(), directory)
        state["directory"] = directory
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        load = None
        if self._fsdp:

            def load(full: dict[str, Any]) -> None:
                distributed.load_full_optimizer_state(self.wrapped, self.optimizer, full)

        restore_optimizer(self.optimizer, self.scheduler, state["optimizer"], state["scheduler"], load)
        self.step = state["step"]
        self.skipped_steps = state["skipped_steps"]
        self.bad_in_a_row = state["bad_in_a_row"]
        self.dead_in_a_row = state.get("dead_in_a_row", 0)
        self.best.load_state_dict(state["best"])
        self.forgetting_before = state.get("forgetting_before")
        rngs = state["rng"]
        checkpoint.set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        self.ss_generator.set_state(
            state["ss_generator"][min(self.dist.rank, len(state["ss_generator"]) - 1)]
        )
        if state.get("stream") is not None and hasattr(self.stream, "load_state_dict"):
            self.stream.load_state_dict(state["stream"])
        elif self.dist.is_main:
            print("t2t train: the data stream has no saved position; it restarts", file=sys.stderr)
        self._last_saved = state["directory"]
        if self.dist.is_main:
            print(f"t2t train: resumed from {state['directory']} at step {self.step}", file=sys.stderr)

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg = self.config
        start = time.perf_counter()
        self._setup()
        self._forgetting_start()
        batches = iter(self.stream)
        progress = Progress(cfg.max_steps, self.step, cfg.progress and self.dist.is_main)
        last_eval = self.step if cfg.resume else -1
        try:
            while self.step < cfg.max_steps and not self.stopped_early:
                micro = _take(batches, cfg.grad_accum_steps)
                if micro is None:
                    break  # a finite stream ended
                t0 = time.perf_counter()
                stats = self._train_step(micro)
                seconds = time.perf_counter() - t0
                self.step += 1
                self._after_step(stats, seconds, progress)
                if cfg.eval.every and self.step % cfg.eval.every == 0:
                    self._evaluate()
                    last_eval = self.step
                periodic = cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0
                healthy = not (self.bad_in_a_row or self.dead_in_a_row)
                if periodic and healthy and not self._saved_now():
                    self._save()  # never in the middle of a run of bad steps; once per step
            if self._has_eval() and last_eval != self.step:
                self._evaluate()
            if not self._saved_now():
                self._save()
            self._forgetting_end()
            self._report_data()
        finally:
            progress.close()
            self.log.close()
        return TrainResult(
            step=self.step,
            losses=self.losses,
            eval_history=self.best.history,
            best_checkpoint=checkpoint.resolve_link(self.ckpt_root, "best"),
            last_checkpoint=checkpoint.resolve_link(self.ckpt_root, "last"),
            best_metric=self.best.best,
            elapsed=time.perf_counter() - start,
            skipped_steps=self.skipped_steps,
            stopped_early=self.stopped_early,
            run_dir=self.run_dir,
        )

    def _train_step(self, micro: list[dict[str, torch.Tensor]]) -> StepStats:
        cfg = self.config
        counts = [count_targets(b, self.kind) for b in micro]
        local_inputs = sum(_input_tokens(b) for b in micro)
        n_tok, n_rows, n_inputs = distributed.all_reduce_sum(
            [sum(c[0] for c in counts), sum(c[1] for c in counts), local_inputs], self.dist, self.device
        )
        n_tok, n_rows = int(n_tok), int(n_rows)
        world = self.dist.world_size
        ss_prob = sampling_probability(cfg.scheduled_sampling, self.step) if self.kind == "seq2seq" else 0.0
        tok_sum = row_sum = 0.0
        replaced = replaceable = 0
        for i, batch in enumerate(micro):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            last = i == len(micro) - 1
            sync = self._gradient_sync(last)
            with sync:
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
                    loss = sums.normalised(n_tok, n_rows) * world
                loss.backward()
            tok_sum += float(sums.tokens.detach())
            row_sum += float(sums.rows.detach())
        tok_sum, row_sum = distributed.all_reduce_sum([tok_sum, row_sum], self.dist, self.device)
        step_loss = tok_sum / max(n_tok, 1) + row_sum / max(n_rows, 1)
        grad_norm = self._clip_gradients()
        finite = math.isfinite(step_loss) and math.isfinite(grad_norm)
        dead = finite and grad_norm == 0.0 and n_tok + n_rows > 0 and self._has_gradients()
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
            tokens=int(n_inputs) + (n_tok if self.kind == "seq2seq" else 0),
            ss_prob=ss_prob,
            ss_replaced=replaced / replaceable if replaceable else 0.0,
            dead=dead,
        )

    def _has_gradients(self) -> bool:
        return any(p.requires_grad for p in self.model.parameters())

    def _gradient_sync(self, last: bool) -> Any:
        """Gradients are reduced across processes on the last micro-batch only."""
        if not self.dist.enabled:
            return contextlib.nullcontext()
        if self._fsdp:
            self.wrapped.set_requires_gradient_sync(last)
            return contextlib.nullcontext()
        return contextlib.nullcontext() if last else self.wrapped.no_sync()

    def _sampled_decoder_inputs(
        self, batch: dict[str, torch.Tensor], prob: float
    ) -> tuple[torch.Tensor, int, int]:
        """Pass 1 of the two-pass decoder: gold inputs, no gradient; mix in its predictions."""
        ss = self.config.scheduled_sampling
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

    def _clip_gradients(self) -> float:
        clip = self.config.optim.grad_clip
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        norm = torch.nn.utils.get_total_norm(grads)
        if hasattr(norm, "full_tensor"):  # FSDP: sharded gradients give a DTensor norm over all shards
            norm = norm.full_tensor()
        if clip > 0:
            torch.nn.utils.clip_grads_with_norm_(self.model.parameters(), clip, norm)
        return float(norm)

    def _autocast(self) -> Any:
        if not self.config.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

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
        progress.update(1, stats.loss, lr, tokens_per_s, stats.ss_prob if sampling else None)
        if self.bad_in_a_row >= cfg.max_bad_steps:
            raise TrainingDiverged(
                f"training stopped at step {self.step}: {self.bad_in_a_row} steps in a row had a non-finite "
                f"loss or gradient (loss={stats.loss}, grad_norm={stats.grad_norm}); {self._kept()}; lower "
                "optim.lr, set optim.grad_clip, turn off bf16 or check the data"
            )
        if self.dead_in_a_row >= cfg.max_bad_steps:
            raise TrainingDiverged(
                f"training stopped at step {self.step}: the gradient was exactly 0 for {self.dead_in_a_row} "
                f"steps in a row (loss {stats.loss:.4f}{_uniform_note(self.model, stats.loss)}), so the run "
                f"can no longer learn; {self._kept()}; lower optim.lr (now {cfg.optim.lr:g}) or check that "
                "the model's weights can train"
            )

    def _kept(self) -> str:
        good = checkpoint.resolve_link(self.ckpt_root, "last")
        return f"the last good checkpoint is {good}" if good else "no checkpoint was written"

    # ------------------------------------------------------------------------------------ evaluation
    def _has_eval(self) -> bool:
        return bool(self.eval_tasks or self.eval_stream is not None or self.eval_fn is not None)

    def _compute_metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if not self._has_eval() or not self._evaluates_here():
            return metrics
        self.model.eval()
        try:
            if self.eval_tasks:
                metrics.update(task_scores(self.model, self.tokenizer, self.eval_tasks, self.config.eval))
            if self.eval_stream is not None:
                stream = self.eval_stream() if callable(self.eval_stream) else self.eval_stream
                metrics["eval_loss"] = stream_loss(self.model, stream, self.device)
            if self.eval_fn is not None:
                metrics.update({k: float(v) for k, v in self.eval_fn(self.model, self.step).items()})
        finally:
            self.model.train()
        return metrics

    def _evaluates_here(self) -> bool:
        """Rank 0 evaluates; with FSDP every rank runs the same forward passes (they gather the shards
        together) and rank 0's result is used."""
        return self.dist.is_main or self._fsdp

    def _evaluate(self) -> None:
        metrics = _broadcast(self._compute_metrics(), self.dist)
        if not metrics:
            return
        value = select(metrics, self.metric)
        improved = self.best.update(self.step, value)
        self.best.history.append({"step": self.step, **metrics})
        self.log.write("eval", self.step, {**metrics, "best": self.best.best})
        if improved and self.config.checkpoint.save_best:
            directory = self._save()
            if self.dist.is_main and directory is not None:
                checkpoint.point(self.ckpt_root, "best", directory)
        patience = self.config.eval.patience
        if patience and self.best.since_best >= patience:
            self.stopped_early = True
            if self.dist.is_main:
                print(
                    f"t2t train: early stop at step {self.step}: {self.metric} did not improve for {patience} "
                    f"evaluations (best {self.best.best} at step {self.best.best_step})",
                    file=sys.stderr,
                )

    # ----------------------------------------------------------------------------------- checkpoints
    def _trainer_state(self) -> dict[str, Any]:
        rng = _gather(checkpoint.rng_state(), self.dist)
        ss = _gather(self.ss_generator.get_state(), self.dist)
        return {
            "step": self.step,
            "optimizer": self._optimizer_state(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng,
            "ss_generator": ss,
            "stream": self.stream.state_dict() if hasattr(self.stream, "state_dict") else None,
            "skipped_steps": self.skipped_steps,
            "bad_in_a_row": self.bad_in_a_row,
            "dead_in_a_row": self.dead_in_a_row,
            "best": self.best.state_dict(),
            "forgetting_before": self.forgetting_before,
            "config": self.config.to_dict(),
        }

    def _optimizer_state(self) -> dict[str, Any]:
        if self._fsdp:
            return self._fsdp_optimizer_state  # gathered with the weights in _full_model
        return self.optimizer.state_dict()

    def _full_model(self) -> Any:
        """The model with all its weights on this process (FSDP: gathered to rank 0, a CPU copy)."""
        if not self._fsdp:
            return self.model
        weights, self._fsdp_optimizer_state = distributed.full_state_dicts(self.wrapped, self.optimizer)
        if not self.dist.is_main:
            return None
        import t2t

        copy = t2t.build_model(self.model.config)
        copy.load_state_dict(weights)
        return copy

    @property
    def _fsdp(self) -> bool:
        return self.dist.enabled and self.config.distributed.strategy == "fsdp"

    def _save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0 writes; all ranks take part in gathers)."""
        model = self._full_model()
        state = self._trainer_state()
        directory = None
        if self.dist.is_main:
            summary = {
                "step": self.step,
                "loss": self.losses[-1] if self.losses else None,
                "skipped_steps": self.skipped_steps,
                "best_metric": self.best.best,
                "best_step": self.best.best_step,
                "metric": self.metric,
            }
            directory = checkpoint.save_checkpoint(
                self.ckpt_root,
                self.step,
                model,
                self.tokenizer,
                state,
                summary,
                weight_format=self.config.checkpoint.format,
            )
            checkpoint.point(self.ckpt_root, "last", directory)
            best = checkpoint.resolve_link(self.ckpt_root, "best")
            checkpoint.prune(self.ckpt_root, self.config.checkpoint.keep_last, {directory, best})
        distributed.barrier(self.dist)
        self._last_saved = directory or self.ckpt_root / checkpoint.step_dir_name(self.step)
        return directory

    def _saved_now(self) -> bool:
        """This step's checkpoint is written (by an improving evaluation, or before a resume)."""
        return self._last_saved is not None and self._last_saved.name == checkpoint.step_dir_name(self.step)

    def _report_data(self) -> None:
        """One line on stderr (and a `data` record) when examples were truncated or records skipped."""
        counts = data_counts(self.stream)
        if not self.dist.is_main or not counts:
            return
        self.log.write("data", self.step, counts)
        print(f"t2t train: {describe_data_counts(self.stream, counts)}", file=sys.stderr)

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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _maybe_tokenizer(cfg: TrainConfig) -> Any:
    if cfg.model.tokenizer or cfg.model.checkpoint:
        return build.build_tokenizer(cfg)
    return None


def _take(batches: Iterator[dict[str, torch.Tensor]], n: int) -> list[dict[str, torch.Tensor]] | None:
    out = []
    for _ in range(n):
        try:
            out.append(next(batches))
        except StopIteration:
            return None
    return out


def _load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], directory: Path) -> None:
    """Load a checkpoint's weights into the configured model; a shape that differs is named, with
    both shapes, instead of torch's many-line size-mismatch error."""
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise CheckpointError(
                f"{directory}: weight {name!r} has shape {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(expected[name].shape)} in the configured model; resume with the model settings "
                "the run started with (model.preset / model.overrides)"
            )
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{directory}: weights do not fit the configured model ({first})") from None


def _uniform_note(model: Any, loss: float) -> str:
    """', the uniform guess over V tokens' when the loss sits at ln(V): the model predicts nothing."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and vocab > 1 and abs(loss - math.log(vocab)) < 0.05 * math.log(vocab):
        return f", about ln({vocab}) = {math.log(vocab):.4f}: a uniform guess"
    return ""


def _input_tokens(batch: dict[str, torch.Tensor]) -> int:
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())


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
