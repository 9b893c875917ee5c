"""An experiment as a small declarative file: configs/experiments/NAME.yaml.

    name: norm_position                # the file's name; `t2t experiment norm_position`
    title: Post-LN vs pre-LN
    claim: Pre-LN trains deeper stacks and tolerates larger learning rates ...
    analysis: lr_sweep                 # how results become the table, the verdict and the plots
    options: {threshold: 1.0}          # the analysis's settings
    seeds: 3
    budget: {minutes: 20, jobs: 2}     # at most this long alone on a 2-core CPU; runs in parallel
    data: {kind: synthetic, task: reverse, ...}       # DataSpec
    model: {preset: gpt2-tiny, d_model: 64, ...}       # a preset and ModelConfig fields (+ n_layers,
                                                       # residual, residual_scale, match_parameters_of)
    train: {max_steps: 120, optim: {...}}              # TrainConfig fields (run_dir, seed: set per run)
    measure: {every: 20, grad_norms: true, ...}        # MeasureSpec
    stages:                                            # runs once per seed, whose weights variants start
      span_corruption: {data: {kind: corpus, objective: span_corruption}, train: {max_steps: 400}}
    variants:                                          # what to vary; each overrides model / train / data
      - {name: post-LN, model: {norm_position: post}}
      - {name: pre-LN, model: {norm_position: pre}, init: span_corruption}
    grid:                                              # crossed with every variant; dotted keys
      model.n_layers: [6, 12, 24]
      train.optim.lr: [1.0e-3, 1.0e-2]
    quick: {seeds: 2, train: {max_steps: 5}, grid: {model.n_layers: [2]}}   # laid over it by --quick

A run (`Unit`) is one variant at one grid point with one seed; its model, train and data settings are
the file's, then the variant's, then the grid point's, merged key by key.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2t.configbase import StrictConfig, check_choice, check_range, closest
from t2t.errors import ConfigError
from t2t.experiments.models import model_config
from t2t.utils.resources import configs_dir
from t2t.utils.yamlio import load_yaml

ANALYSES = ("lr_sweep", "curves", "tradeoff", "exposure_bias", "transfer", "ranking")
DATA_KINDS = ("synthetic", "tasks", "corpus")
CORPORA = ("prose", "prose+inputs")
# Pretraining objectives of an encoder-decoder on the corpus (T5's comparison), and language modelling
# of a decoder-only model.
CORPUS_OBJECTIVES = ("span_corruption", "bert_mlm", "prefix_lm", "causal_lm")
PROCEDURES = ("train", "single_task", "self_training")
MIXING = ("equal", "proportional", "temperature")
SECTIONS = ("model", "train", "data")
MAX_SEEDS = 100


def experiments_dir() -> Path:
    return configs_dir() / "experiments"


def list_experiments() -> list[str]:
    return sorted(p.stem for p in experiments_dir().glob("*.yaml"))


@dataclass
class DataSpec(StrictConfig):
    kind: str = "synthetic"
    batch_size: int = 32
    # synthetic (t2t.experiments.synthetic): integer sequences, no tokenizer
    task: str = "reverse"
    vocab: int = 32
    min_length: int = 4
    max_length: int = 12
    eval_examples: int = 256  # held-out sequences scored at the end
    # tasks: the quickstart's built-in tasks (t2t.quickstart.tasks), a sentencepiece vocabulary trained
    # on the corpus and the tasks' training text
    tasks: list[str] = field(default_factory=list)
    fraction: float = 1.0  # share of each task's training split (a seeded sample)
    mixing: str = "equal"  # rate of the tasks' mixture (T5 section 3.5.2)
    cap: int | None = None  # examples-proportional mixing's K
    temperature: float = 1.0
    eval_split: str = "test"
    eval_limit: int | None = 100  # examples per task scored at the end (None: all)
    unseen_limit: int = 0  # also score up to this many training examples left out of a fraction < 1
    vocab_size: int = 1000  # sentencepiece tokens, 100 sentinels included
    max_piece_length: int = 16
    vocab_lines: int | None = None  # lines of each source the vocabulary is trained on (None: all)
    max_input_length: int = 96
    max_target_length: int = 24
    pack: bool = False
    shuffle: bool = True
    # corpus: the built-in prose (and with corpus=prose+inputs the tasks' training inputs, unlabelled)
    corpus: str = "prose"
    objective: str = "span_corruption"
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0
    validation_share: float = 0.05  # corpus lines held out for the validation loss

    def validate(self) -> None:
        check_choice("kind", self.kind, DATA_KINDS)
        check_choice("mixing", self.mixing, MIXING)
        check_choice("corpus", self.corpus, CORPORA)
        check_choice("objective", self.objective, CORPUS_OBJECTIVES)
        check_range("batch_size", self.batch_size, 1)
        check_range("vocab", self.vocab, 5)
        check_range("min_length", self.min_length, 1)
        check_range("max_length", self.max_length, self.min_length)
        check_range("eval_examples", self.eval_examples, 1)
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"fraction={self.fraction} is out of range (0, 1]")
        check_range("temperature", self.temperature, 1e-3)
        check_range("vocab_size", self.vocab_size, 200)
        if self.vocab_lines is not None:
            check_range("vocab_lines", self.vocab_lines, 10)
        check_range("max_input_length", self.max_input_length, 4)
        check_range("max_target_length", self.max_target_length, 2)
        check_range("unseen_limit", self.unseen_limit, 0)
        check_range("validation_share", self.validation_share, 0.001, 0.5)
        if self.kind == "tasks" and not self.tasks:
            raise ConfigError("kind=tasks needs tasks: [quickstart_translate, ...]")


@dataclass
class MeasureSpec(StrictConfig):
    """What each run measures. During training (every `every` steps, through the Trainer's eval_fn): the
    loss of a fixed held-out probe batch, and with grad_norms the gradient norm of every block on it.
    At the end: the rest."""

    every: int = 0  # steps between probes (0: at the end only)
    grad_norms: bool = False
    watchdog: float | None = None  # stop a run whose probe loss exceeds this x its initial value
    task_scores: bool = False  # data kind tasks: t2t.evaluate on data.eval_split
    sequence_scores: bool = False  # synthetic: greedy exact match and token accuracy
    position_errors: bool = False  # error rate by output position, free-running and teacher-forced
    eval_loss: bool = False  # corpus: validation loss of the held-out lines
    eval_batches: int = 20  # corpus: validation batches
    step_time: bool = False  # median seconds per training step (logs every step)
    norm_time: bool = False  # seconds of the norm layer alone, forward + backward
    decode: dict[str, int] = field(default_factory=dict)  # {batch_size, prompt_length, new_tokens}
    kv_cache: dict[str, int] = field(default_factory=dict)  # {batch_size, length}

    def validate(self) -> None:
        check_range("every", self.every, 0)
        check_range("eval_batches", self.eval_batches, 1)
        if self.watchdog is not None:
            check_range("watchdog", self.watchdog, 1.0)
        for name, keys in (
            ("decode", ("batch_size", "prompt_length", "new_tokens")),
            ("kv_cache", ("batch_size", "length")),
        ):
            given = getattr(self, name)
            for key in given:
                if key not in keys:
                    raise ConfigError(f"{name}: unknown key {key!r}{closest(key, keys)}")
            if given and set(given) != set(keys):
                raise ConfigError(f"{name}: give {', '.join(keys)}")


@dataclass
class BudgetSpec(StrictConfig):
    minutes: float = 20.0  # the most the full experiment may take alone on this project's 2-core CPU
    jobs: int = 1  # runs at once (processes), `threads` torch threads each
    threads: int = 1
    estimate: str = ""  # how the budget was calibrated

    def validate(self) -> None:
        check_range("minutes", self.minutes, 0.0)
        check_range("jobs", self.jobs, 1)
        check_range("threads", self.threads, 1)


@dataclass
class VariantSpec(StrictConfig):
    name: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # a stage whose trained weights (same seed) the run starts from
    # train; single_task: one model per task of data.tasks, trained alone, scores merged; self_training:
    # t2t.experiments.self_training
    procedure: str = "train"
    options: dict[str, Any] = field(default_factory=dict)  # the procedure's settings
    note: str = ""

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("a variant needs a name")
        check_choice("procedure", self.procedure, PROCEDURES)


@dataclass
class StageSpec(StrictConfig):
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class ExperimentSpec(StrictConfig):
    name: str = ""
    title: str = ""
    claim: str = ""
    analysis: str = "ranking"
    options: dict[str, Any] = field(default_factory=dict)
    seeds: int = 3
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    data: DataSpec = field(default_factory=DataSpec)
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    measure: MeasureSpec = field(default_factory=MeasureSpec)
    stages: dict[str, StageSpec] = field(default_factory=dict)
    variants: list[VariantSpec] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # sentences the report carries under the design

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("name: give the experiment a name")
        check_choice("analysis", self.analysis, ANALYSES)
        check_range("seeds", self.seeds, 1, MAX_SEEDS)
        if not self.variants:
            raise ConfigError("variants: give at least one")
        names = [v.name for v in self.variants]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"variants: {name!r} is named twice")
        stages = {}
        for key, value in self.stages.items():
            stages[key] = (
                value if isinstance(value, StageSpec) else StageSpec.from_dict(value, f"stages.{key}.")
            )
        self.stages = stages
        for variant in self.variants:
            if variant.init is not None and variant.init not in self.stages:
                raise ConfigError(
                    f"variants: {variant.name!r} starts from stage {variant.init!r}, which stages does not "
                    f"define{closest(variant.init, self.stages)}"
                )
        for key, values in self.grid.items():
            section = key.split(".", 1)[0]
            if section not in SECTIONS or "." not in key:
                raise ConfigError(f"grid: {key!r} should be model.FIELD, train.FIELD or data.FIELD")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"grid: {key} should be a non-empty list of values")
        self.check_runs()

    def check_runs(self) -> None:
        """Every run's settings build (model fields, TrainConfig, DataSpec), before any run starts."""
        from t2t.train.config import TrainConfig

        for unit in self.units(1) + self.stage_units(1):
            DataSpec.from_dict(unit.data, "data.")
            train = {k: v for k, v in unit.train.items() if k not in ("run_dir", "seed")}
            try:
                TrainConfig.from_dict(train)
            except ConfigError as err:
                raise ConfigError(f"{unit.label}: train.{err}") from None
            model_config(unit.model, DataSpec.from_dict(unit.data), None, where=f"{unit.label}: model")

    # ------------------------------------------------------------------------------------ the runs
    def grid_points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*self.grid.values())]

    def units(self, seeds: int | None = None) -> list[Unit]:
        """Every run of the variants: variant x grid point x seed, in that order."""
        out = []
        for variant in self.variants:
            for point in self.grid_points():
                for seed in range(seeds if seeds is not None else self.seeds):
                    sections = {s: merged(self._base(s), getattr(variant, s)) for s in SECTIONS}
                    for key, value in point.items():
                        section, dotted = key.split(".", 1)
                        set_dotted(sections[section], dotted, value)
                    out.append(
                        Unit(
                            variant=variant.name,
                            point=point,
                            seed=seed,
                            model=sections["model"],
                            train=sections["train"],
                            data=sections["data"],
                            init=variant.init,
                            procedure=variant.procedure,
                            options=dict(variant.options),
                        )
                    )
        return out

    def stage_units(self, seeds: int | None = None) -> list[Unit]:
        """The stages variants start from, once per seed."""
        used = {v.init for v in self.variants if v.init}
        out = []
        for name, stage in self.stages.items():
            if name not in used:
                continue
            for seed in range(seeds if seeds is not None else self.seeds):
                out.append(
                    Unit(
                        variant=name,
                        point={},
                        seed=seed,
                        model=merged(self._base("model"), stage.model),
                        train=merged(self._base("train"), stage.train),
                        data=merged(self._base("data"), stage.data),
                        stage=True,
                    )
                )
        return out

    def _base(self, section: str) -> dict[str, Any]:
        value = getattr(self, section)
        return value.to_dict() if isinstance(value, StrictConfig) else copy.deepcopy(value)


@dataclass
class Unit:
    """One training run of an experiment (or a stage that variants start from)."""

    variant: str
    point: dict[str, Any]
    seed: int
    model: dict[str, Any]
    train: dict[str, Any]
    data: dict[str, Any]
    init: str | None = None
    procedure: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    stage: bool = False

    @property
    def key(self) -> str:
        """A folder name unique within the experiment."""
        parts = ["stage-" + self.variant if self.stage else self.variant]
        parts += [f"{k.split('.')[-1]}={_short(v)}" for k, v in self.point.items()]
        return _safe("_".join(parts)) + f"/seed-{self.seed}"

    @property
    def label(self) -> str:
        point = ", ".join(f"{k}={_short(v)}" for k, v in self.point.items())
        return (
            f"{'stage ' if self.stage else ''}{self.variant}"
            + (f" ({point})" if point else "")
            + f" seed {self.seed}"
        )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_=.+" else "-" for c in text)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`, mappings merged key by key (recursively), everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"grid: {dotted!r} goes through {part!r}, which is not a mapping")
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------- loading
def spec_path(name: str) -> Path:
    """A shipped experiment's file, or `name` itself when it is a YAML file (a copy of one)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: experiment file not found")
        return path
    found = experiments_dir() / f"{name}.yaml"
    if not found.is_file():
        raise ConfigError(
            f"no experiment named {name!r}{closest(name, list_experiments())}; "
            f"`t2t experiment --list` names them ({', '.join(list_experiments())})"
        )
    return found


def load_spec(name: str, *, quick: bool = False, overrides: list[str] | None = None) -> ExperimentSpec:
    """The experiment `name` (a shipped name or a YAML path); `quick` lays its `quick:` section over it;
    `overrides` are dotted `key=value` strings laid over the result (`train.max_steps=50`)."""
    from t2t.configbase import parse_override_value

    path = spec_path(name)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except Exception as err:  # YAML errors: one line with the file
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an experiment file is a mapping (name, variants, ...)")
    if quick:
        raw = merged(raw, raw.get("quick") or {})
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} should look like key=value")
        key, _, text = item.partition("=")
        key = key.strip()
        if key.startswith("grid."):  # a grid key holds dots itself: grid.train.optim.lr=[...]
            raw.setdefault("grid", {})[key[len("grid.") :]] = parse_override_value(text)
        else:
            set_dotted(raw, key, parse_override_value(text))
    try:
        return ExperimentSpec.from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
