"""What the feature builders need to know of a run: which files, which fields, which objective.

A training config (t2t.train.TrainConfig) says this and much more; the features of a head are built
from this small part of it, so t2t.finetune does not depend on the layer that trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from t2t.finetune.objectives import DEFAULT_METRICS, gpt_transform


@dataclass(frozen=True)
class HeadSpec:
    objective: str  # a head objective (classification, ...) or mlm_nsp / causal_lm on a corpus file
    arch: str  # encoder (BERT) or decoder (GPT)
    train: str  # file of training examples; `builtin:NAME/FILE` for data/builtin/finetune
    eval: str | None = None  # file the model is scored on
    text_field: str = "sentence"
    pair_field: str | None = None
    label_field: str = "label"
    limit_train: int | None = None
    limit_eval: int | None = None
    max_length: int = 128
    options: dict[str, Any] = field(default_factory=dict)  # transform, doc_stride, max_query_length, ...
    metrics: list[str] | None = None
    seed: int = 0

    @property
    def family(self) -> str:
        return "gpt" if self.arch == "decoder" else "bert"

    @property
    def transform(self) -> str:
        """GPT's input transformation of this task (named, or implied by the data)."""
        return gpt_transform(
            self.objective, self.options.get("transform", "auto"), self.pair_field is not None
        )

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics) if self.metrics is not None else DEFAULT_METRICS[self.objective]
