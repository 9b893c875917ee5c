"""A fine-tuning (or pretraining) recipe: which data, which model and head, how long to train and what to
score, as one YAML file under configs/finetune/ with command-line `key=value` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from t2t.configbase import StrictConfig, check_range, closest
from t2t.errors import ConfigError

TASKS = ("classification", "regression", "tagging", "span-qa", "multiple-choice", "mlm-nsp", "causal-lm")
PRETRAINING = ("mlm-nsp", "causal-lm")
# GPT's input transformation of each task (Radford et al. 2018, figure 1); "auto" picks by the data.
TRANSFORMS = ("auto", "classification", "entailment", "similarity", "multiple-choice")
# The metrics each task is scored with unless the recipe names others.
DEFAULT_METRICS = {
    "classification": ["accuracy"],
    "regression": ["pearson", "spearman"],
    "tagging": ["entity_f1"],
    "span-qa": ["exact_match", "token_f1"],
    "multiple-choice": ["accuracy"],
    "mlm-nsp": [],
    "causal-lm": [],
}
RECIPE_DIR = Path(__file__).resolve().parents[3] / "configs" / "finetune"


@dataclass
class DataConfig(StrictConfig):
    """Files (`builtin:` = data/builtin/finetune/) and the fields that hold text and labels."""

    train: str = ""
    test: str = ""
    text_field: str = "sentence"  # multiple choice: the context field
    pair_field: str | None = None  # multiple choice: the endings field
    label_field: str = "label"
    limit_train: int | None = None  # keep the first N training examples (quick runs); None: all
    limit_test: int | None = None

    def validate(self) -> None:
        # A negative limit would slice from the end (items[:-1]: all but the last), never what is meant.
        for name in ("limit_train", "limit_test"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(
                    f"{name}={value} is negative; give a number of examples to keep, or null for all"
                )


@dataclass
class RecipeConfig(StrictConfig):
    name: str = "recipe"
    task: str = "classification"
    family: Literal["bert", "gpt"] = "bert"  # BERT heads on an encoder, or GPT transformations on a decoder
    transform: str = "auto"  # gpt: classification, entailment, similarity or multiple-choice
    data: DataConfig = field(default_factory=DataConfig)
    model: str = "bert-tiny"  # a preset name, or a model directory (e.g. a pretraining recipe's output)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # preset fields (d_model, n_heads, ...)
    tokenizer: str | None = None  # a tokenizer directory; None: the model directory's, else trained here
    tokenizer_vocab_size: int = 2000  # for a tokenizer trained on the built-in corpus
    max_length: int = 128
    doc_stride: int = 64  # span QA: tokens between the starts of two windows over a long context
    max_query_length: int = 32
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 1e-3
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    freeze_encoder: bool = False  # train only the head (BERT's feature-based comparison)
    lm_loss_weight: float = 0.5  # gpt: weight of the auxiliary language-modelling loss
    mask_probability: float = 0.15  # mlm-nsp
    metrics: list[str] | None = None  # None: the task's defaults
    seed: int = 0
    device: str = "auto"
    output_dir: str | None = None
    save_format: Literal["t2t", "hf"] = (
        "t2t"  # hf: config.json + HF names (BertForSequenceClassification, ...)
    )

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(
                f"task={self.task!r} is not one of {', '.join(TASKS)}{closest(self.task, TASKS)}"
            )
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"transform={self.transform!r} is not one of {', '.join(TRANSFORMS)}")
        if self.family == "gpt" and self.task in ("tagging", "span-qa", "mlm-nsp"):
            raise ConfigError(f"task={self.task!r} has no GPT form; use family=bert")
        if self.family == "bert" and self.task == "causal-lm":
            raise ConfigError("task='causal-lm' trains a decoder; use family=gpt")
        if not self.data.train:
            raise ConfigError(
                "data.train is empty; name the training file (builtin:sentiment/train.tsv, ...)"
            )
        check_range("max_length", self.max_length, 8)
        check_range("epochs", self.epochs, 0.0)
        check_range("batch_size", self.batch_size, 1)
        check_range("learning_rate", self.learning_rate, 0.0)
        check_range("warmup", self.warmup, 0.0, 1.0)
        check_range("mask_probability", self.mask_probability, 0.0, 1.0)

    @property
    def head(self) -> str:
        """The model head this recipe trains."""
        if self.task in PRETRAINING:
            return "pretraining" if self.family == "bert" else "lm"
        if self.family == "bert":
            return "token-classification" if self.task == "tagging" else self.task
        if self.task == "multiple-choice":
            return "multiple-choice"
        return "similarity" if self.gpt_transform == "similarity" else self.task

    @property
    def gpt_transform(self) -> str:
        if self.transform != "auto":
            return self.transform
        if self.task == "multiple-choice":
            return "multiple-choice"
        return "entailment" if self.data.pair_field else "classification"

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics) if self.metrics is not None else DEFAULT_METRICS[self.task]


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_file: str | Path, overrides: list[str] | None = None) -> RecipeConfig:
    """A recipe by name (configs/finetune/NAME.yaml) or by file, with `key=value` overrides."""
    path = Path(name_or_file)
    if not path.is_file():
        names = recipe_names()
        if str(name_or_file) not in names:
            raise ConfigError(
                f"no recipe {str(name_or_file)!r}{closest(str(name_or_file), names)}; "
                f"use a YAML file or one of {', '.join(names)}"
            )
        path = RECIPE_DIR / f"{name_or_file}.yaml"
    return RecipeConfig.load(path).with_overrides(overrides or [])
