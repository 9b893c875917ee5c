"""TrainConfig: everything a training run needs, in sections that map one-to-one onto a recipe YAML.

Every field is checked when the config is built (type, range, allowed values), so a typo in a recipe
fails before a model is built or a batch is read, naming the key and the closest valid one. A section's
checks name its fields bare (`lr`): reading the section from a mapping puts the section in front
(`optim.lr=-1.0 is out of range`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from t2t.configbase import StrictConfig, check_choice, check_range
from t2t.data.features import OBJECTIVES as STREAM_OBJECTIVES
from t2t.data.features import check_objective_options
from t2t.errors import ConfigError
from t2t.finetune.objectives import HEAD_OBJECTIVES, check_head_options
from t2t.model.memory import check_fits
from t2t.peft.config import PeftConfig

OPTIMIZERS = ("adamw", "adafactor")
SCHEDULES = ("constant", "inverse_sqrt", "cosine", "linear")
# Text objectives (t2t.data: a task or mixture, or a corpus file) and the head objectives of BERT's
# heads and GPT's input transformations (t2t.finetune: data.train / data.test files).
OBJECTIVES = STREAM_OBJECTIVES + HEAD_OBJECTIVES
MAX_SEED = 2**63 - 1  # torch.manual_seed and the Random of a shuffled epoch take 64-bit seeds
DEFAULT_STEPS = 1000  # a run that gives neither max_steps nor epochs
RL_METHODS = ("none", "scst", "mrt")
SS_SCHEDULES = ("none", "constant", "linear", "exponential", "inverse_sigmoid")


@dataclass
class ModelSection(StrictConfig):
    """Where the model comes from: exactly one of preset / config / checkpoint (unless passed in code)."""

    preset: str | None = None  # t2t.preset name, e.g. "t5-small", "t5-tiny"
    config: str | None = None  # path of a ModelConfig YAML/JSON
    checkpoint: str | None = None  # t2t or Hugging Face directory (or a hub name)
    overrides: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields, e.g. {dropout: 0.0}
    tokenizer: str | None = None  # tokenizer directory; default: the checkpoint's own
    # With no tokenizer directory, a model from a preset gets one trained on the built-in corpus with
    # this many tokens (WordPiece for BERT, byte-level BPE for GPT, as the papers use).
    tokenizer_vocab_size: int | None = None
    freeze_encoder: bool = False  # train only the task head (BERT's feature-based setting)

    def validate(self) -> None:
        if self.tokenizer_vocab_size is not None:
            check_range("tokenizer_vocab_size", self.tokenizer_vocab_size, 16)
        given = [k for k in ("preset", "config", "checkpoint") if getattr(self, k)]
        if len(given) > 1:
            raise ConfigError(
                f"{given[0]} and {given[1]} are both set; give one of preset, config, checkpoint"
            )


@dataclass
class ReplaySection(StrictConfig):
    """Incremental learning: a share of each optimizer step's batches comes from earlier tasks."""

    tasks: list[str] = field(default_factory=list)
    share: float = 0.0  # fraction of batches drawn from the earlier tasks (0: no replay)
    report: bool = True  # evaluate the earlier tasks before and after training (forgetting.json)

    def validate(self) -> None:
        check_range("share", self.share, 0.0, 1.0)


@dataclass
class DataSection(StrictConfig):
    """Where examples come from: a registered task or mixture (text objectives, streamed), or files
    (`train`, `validation`, `test`; `builtin:NAME/FILE` for data/builtin/finetune) read by the head
    objectives and by BERT / GPT pretraining on a corpus file."""

    task: str | None = None
    mixture: str | None = None
    tasks_yaml: list[str] = field(default_factory=list)  # YAML files declaring tasks/mixtures to register
    objective: str = "text2text"
    train: str | None = None  # files of examples (TSV / CSV / JSONL / CoNLL / SQuAD JSON / text lines)
    validation: str | None = None
    test: str | None = None
    text_field: str = "sentence"  # multiple choice: the context field
    pair_field: str | None = None  # the second text of a pair; multiple choice: the endings field
    label_field: str = "label"
    limit_train: int | None = None  # keep the first N training examples of a file (quick runs); None: all
    limit_eval: int | None = None  # keep the first N evaluation examples of a file
    batch_size: int = 8  # rows per micro-batch, across all processes
    max_input_length: int = 512
    max_target_length: int = 128
    pack: bool = False
    shuffle: bool = False  # each epoch of each task in its own seeded order (the split is held in memory)
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # objective options (noise_density, ...)
    # Worker processes featurising examples beside training (t2t.data.workers): the same batches, the
    # same resume. None: $T2T_DATA_WORKERS, else 0 (all in the training thread).
    workers: int | None = None
    replay: ReplaySection = field(default_factory=ReplaySection)

    def validate(self) -> None:
        check_choice("objective", self.objective, OBJECTIVES)
        if self.task and self.mixture:
            raise ConfigError("task and mixture are both set; give one")
        check_range("batch_size", self.batch_size, 1)
        check_range("max_input_length", self.max_input_length, 1)
        check_range("max_target_length", self.max_target_length, 1)
        check_range("seed", self.seed, 0, MAX_SEED)
        if self.workers is not None:
            check_range("workers", self.workers, 0, 64)
        # One batch's token ids must fit in memory (a batch of 10**9 rows would fill for ever).
        tokens = self.batch_size * (self.max_input_length + self.max_target_length)
        check_fits(f"batch_size={self.batch_size}", 4 * 8 * tokens, "cpu", "give a smaller batch_size")
        for name in ("limit_train", "limit_eval"):
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, 1)
        if self.objective in HEAD_OBJECTIVES and not self.train:
            raise ConfigError(
                f"objective={self.objective!r} reads files: set data.train (and data.test or "
                "data.validation), e.g. builtin:sentiment/train.tsv"
            )
        if self.train and (self.task or self.mixture):
            raise ConfigError("train (a file) and task / mixture are both set; give one source")
        self._check_options()

    @property
    def from_files(self) -> bool:
        """Examples come from data.train / data.test files (head objectives, corpus pretraining)."""
        return bool(self.train)

    def _check_options(self) -> None:
        """Objective options need no tokenizer to check: a typo or a value out of range (noise_density=2
        would make span corruption search for ever) fails here, before a model or a batch is built."""
        try:
            if self.objective in HEAD_OBJECTIVES:
                check_head_options(self.objective, self.options)
            else:
                check_objective_options(self.objective, self.options)
        except ConfigError as err:
            raise ConfigError(f"options: {err}") from None


@dataclass
class OptimSection(StrictConfig):
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    grad_clip: float = 1.0  # global L2 norm; 0 disables clipping
    # Adafactor (Shazeer & Stern 2018) with T5's fine-tuning settings as defaults.
    beta1: float | None = None  # None: no first moment (T5)
    decay_rate: float = -0.8
    clip_threshold: float = 1.0  # update clipping d
    eps1: float = 1e-30
    eps2: float = 1e-3
    scale_parameter: bool = False
    relative_step: bool = False

    def validate(self) -> None:
        check_choice("name", self.name, OPTIMIZERS)
        check_range("lr", self.lr, 0.0)
        check_range("weight_decay", self.weight_decay, 0.0)
        if self.lr * self.weight_decay >= 1.0:  # (decoupled: each step scales weights by 1 - lr * wd)
            raise ConfigError(
                f"weight_decay={self.weight_decay!r} times lr={self.lr!r} is at least 1: decoupled weight "
                "decay would zero or flip every weight at each step; give a weight_decay below 1 / lr"
            )
        check_range("grad_clip", self.grad_clip, 0.0)
        check_range("clip_threshold", self.clip_threshold, 0.0)
        # `not 0 <= b < 1` (rather than `b < 0 or b >= 1`) so that NaN fails too
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas={self.betas!r} should be two numbers in [0, 1)")
        check_range("eps", self.eps, 0.0)
        check_range("eps1", self.eps1, 0.0)
        check_range("eps2", self.eps2, 0.0)
        check_range("decay_rate", self.decay_rate, -1.0, 0.0)  # Adafactor's 1 - t**decay_rate
        if self.beta1 is not None:
            check_range("beta1", self.beta1, 0.0, 1.0)


@dataclass
class ScheduleSection(StrictConfig):
    name: str = "constant"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # warm-up as a share of the run's steps (BERT's 0.1), when warmup_steps is 0
    linear_warmup: bool = True  # False: flat during warmup (T5's 1/sqrt(max(step, warmup)) exactly)
    min_lr_ratio: float = 0.0  # cosine / linear decay floor, as a fraction of optim.lr

    def validate(self) -> None:
        check_choice("name", self.name, SCHEDULES)
        check_range("warmup_steps", self.warmup_steps, 0)
        check_range("warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if self.warmup_steps and self.warmup_ratio:
            raise ConfigError("warmup_steps and warmup_ratio are both set; give one")

    def warmup_for(self, max_steps: int) -> int:
        """Warm-up steps of a run of max_steps steps."""
        return self.warmup_steps or int(self.warmup_ratio * max_steps)


@dataclass
class EvalSection(StrictConfig):
    every: int = 0  # optimizer steps between evaluations; 0: only at the end
    tasks: list[str] = field(default_factory=list)  # validation tasks for t2t.evaluate
    split: str = "validation"
    limit: int | None = None
    batch_size: int = 32
    max_new_tokens: int = 64
    loss: bool = False  # also compute the validation loss of the training source
    metrics: list[str] | None = None  # head objectives: what to score (None: the objective's defaults)
    # "auto" (eval_loss when computed, else "mean"), "eval_loss", "TASK/METRIC" or "mean" (the mean of
    # each task's first metric)
    metric: str = "auto"
    mode: str = "auto"  # max | min | auto (min for losses, max otherwise)
    patience: int = 0  # evaluations without improvement before stopping; 0: never stop early

    def validate(self) -> None:
        check_range("every", self.every, 0)
        check_range("patience", self.patience, 0)
        if self.metrics is not None and not self.metrics:
            raise ConfigError("metrics=[] names none; name at least one, or null for the objective's own")
        check_choice("mode", self.mode, ("auto", "max", "min"))
        if self.limit is not None:
            check_range("limit", self.limit, 1)

    def resolved_metric(self, has_loss: bool) -> str:
        if self.metric != "auto":
            return self.metric
        return "eval_loss" if has_loss else "mean"

    def maximize(self, metric: str) -> bool:
        if self.mode != "auto":
            return self.mode == "max"
        return "loss" not in metric


@dataclass
class CheckpointSection(StrictConfig):
    every: int = 0  # optimizer steps between checkpoints; 0: only at the end (and at each evaluation)
    keep_last: int = 2
    save_best: bool = True
    format: str = "auto"  # model weights: auto (HF names where transformers has the model) | hf | t2t

    def validate(self) -> None:
        check_range("every", self.every, 0)
        check_range("keep_last", self.keep_last, 1)
        check_choice("format", self.format, ("auto", "hf", "t2t"))


@dataclass
class RLSection(StrictConfig):
    """Sequence-level fine-tuning (t2t.train.rl): train on the model's own samples, each weighted by its
    reward minus a baseline. scst: one sample, the greedy output's reward as the baseline (self-critical
    sequence training); mrt: `samples` outputs, the mean reward of the others as the baseline."""

    method: str = "none"  # none | scst | mrt
    reward: str = (
        "chrf"  # a t2t metric scored per example (chrf, bleu, rouge, exact_match, ...) or module:function
    )
    samples: int = 1  # outputs sampled per input (mrt: at least 2)
    temperature: float = 1.0
    max_new_tokens: int = 32
    kl_weight: float = 0.0  # penalty on log p - log p_start of the sampled tokens (0: none)
    mle_weight: float = 0.0  # teacher-forced loss added beside the samples' (0: none)

    def validate(self) -> None:
        check_choice("method", self.method, RL_METHODS)
        check_range("samples", self.samples, 1, 64)
        if self.method == "mrt" and self.samples < 2:
            raise ConfigError("method=mrt compares samples with each other: set samples to 2 or more")
        check_range("temperature", self.temperature, 1e-3, 100.0)
        check_range("max_new_tokens", self.max_new_tokens, 1, 4096)
        check_range("kl_weight", self.kl_weight, 0.0)
        check_range("mle_weight", self.mle_weight, 0.0)
        if not self.reward:
            raise ConfigError("reward is empty; name a metric (chrf, exact_match, ...) or module:function")


@dataclass
class ScheduledSamplingSection(StrictConfig):
    """Scheduled sampling (Bengio et al. 2015) with the two-pass decoder of Mihaylova & Martins (2019).

    `prob(step)` is the probability that a gold decoder input is replaced by the model's prediction:
    linear: min(max_prob, slope * step); exponential: max_prob * (1 - k**step);
    inverse_sigmoid: max_prob * (1 - k / (k + exp(step / k))); constant: max_prob."""

    schedule: str = "none"
    max_prob: float = 0.25
    k: float = 0.9999  # exponential: decay base in (0, 1); inverse_sigmoid: k >= 1 (steps scale)
    slope: float = 1e-4  # linear: probability gained per step
    start_step: int = 0  # teacher forcing only before this step
    sample: bool = False  # False: argmax predictions; True: sample from the softmax
    temperature: float = 1.0

    def validate(self) -> None:
        check_choice("schedule", self.schedule, SS_SCHEDULES)
        check_range("max_prob", self.max_prob, 0.0, 1.0)
        check_range("slope", self.slope, 0.0)
        check_range("start_step", self.start_step, 0)
        check_range("temperature", self.temperature, 1e-6)
        if self.schedule == "exponential":
            check_range("k", self.k, 0.0, 1.0)
        if self.schedule == "inverse_sigmoid":
            check_range("k", self.k, 1.0)


@dataclass
class DistributedSection(StrictConfig):
    strategy: str = "ddp"  # ddp | fsdp (used when launched by torchrun with WORLD_SIZE > 1)
    backend: str = "auto"  # auto: nccl on CUDA, gloo on CPU

    def validate(self) -> None:
        check_choice("strategy", self.strategy, ("ddp", "fsdp"))
        check_choice("backend", self.backend, ("auto", "gloo", "nccl"))


@dataclass
class TrainConfig(StrictConfig):
    """A training run; `t2t train --config recipe.yaml key=value ...` builds one of these."""

    run_dir: str = "runs/default"
    seed: int = 0
    # The run's length in optimizer steps; when None, `epochs` passes over the training data (a head
    # objective's or a corpus file's examples), and with neither, 1000 steps. As in transformers,
    # max_steps wins over epochs.
    max_steps: int | None = None
    epochs: float | None = None
    grad_accum_steps: int = 1
    bf16: bool = False  # autocast matmuls to bfloat16 (weights and optimizer stay fp32)
    # Recompute each transformer block in the backward pass instead of keeping its activations (less
    # memory, one more forward per step; gradients identical).
    activation_checkpointing: bool = False
    label_smoothing: float = 0.0
    device: str = "auto"
    log_every: int = 10
    progress: bool = True
    tensorboard: bool = True  # event files in RUN_DIR/tensorboard (metrics.jsonl is always written)
    max_bad_steps: int = 5  # consecutive non-finite steps before the run stops
    resume: bool = False
    overwrite: bool = False  # start over in a run_dir an earlier run used (its checkpoints and logs go)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    eval: EvalSection = field(default_factory=EvalSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    scheduled_sampling: ScheduledSamplingSection = field(default_factory=ScheduledSamplingSection)
    rl: RLSection = field(default_factory=RLSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)
    peft: PeftConfig = field(default_factory=PeftConfig)  # LoRA / adapters (t2t.peft); method none: off

    def validate(self) -> None:
        check_range("seed", self.seed, 0, MAX_SEED)
        if self.max_steps is not None:
            check_range("max_steps", self.max_steps, 1)
        if self.epochs is not None:
            check_range("epochs", self.epochs, 0.0)
            if self.epochs <= 0:
                raise ConfigError(f"epochs={self.epochs} should be more than 0")
        check_range("grad_accum_steps", self.grad_accum_steps, 1)
        check_range("label_smoothing", self.label_smoothing, 0.0, 1.0)
        check_range("log_every", self.log_every, 1)
        check_range("max_bad_steps", self.max_bad_steps, 1)
        if self.rl.method != "none" and self.scheduled_sampling.schedule != "none":
            raise ConfigError(
                "rl and scheduled_sampling both replace teacher forcing; turn one off (scheduled_sampling."
                "schedule: none, or rl.method: none)"
            )
        if self.epochs is not None and self.max_steps is None and not self.data.from_files:
            raise ConfigError(
                "epochs counts passes over data.train, but the examples come from a task or mixture "
                "stream of unknown length; give max_steps"
            )
        if not self.run_dir:
            raise ConfigError("run_dir is empty; give the directory for checkpoints and logs")

    def steps_for(self, examples_per_epoch: int | None) -> int:
        """The run's optimizer steps: max_steps, else `epochs` passes of examples_per_epoch examples in
        batches of data.batch_size (the last batch of an epoch may be smaller), else 1000."""
        if self.max_steps is not None:
            return self.max_steps
        if self.epochs is not None and examples_per_epoch:
            batches = math.ceil(examples_per_epoch / self.data.batch_size)
            return max(1, math.ceil(batches * self.epochs))
        return DEFAULT_STEPS
