"""The fine-tuning objectives of BERT's heads and GPT's input transformations, and their options.

Each names how examples of a file become features for a task head (`t2t.finetune.features`) and what
the head's loss is; `data.objective` picks one in a training config, beside the text objectives of
t2t.data (text2text, span corruption, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from t2t.configbase import check_choice, check_range, closest
from t2t.errors import ConfigError

# GPT's input transformation of each task (Radford et al. 2018, figure 1); "auto" picks by the data.
TRANSFORMS = ("auto", "classification", "entailment", "similarity", "multiple-choice")
_TRANSFORM = {"transform": "auto"}
HEAD_OPTIONS: dict[str, dict[str, Any]] = {
    "classification": _TRANSFORM,
    "regression": _TRANSFORM,
    "multiple_choice": _TRANSFORM,
    "tagging": {},
    # contexts longer than max_input_length slide in windows doc_stride tokens apart
    "span_qa": {"doc_stride": 64, "max_query_length": 32},
}
HEAD_OBJECTIVES = tuple(HEAD_OPTIONS)
# The metrics each objective is scored with unless eval.metrics names others.
DEFAULT_METRICS = {
    "classification": ["accuracy"],
    "regression": ["pearson", "spearman"],
    "tagging": ["entity_f1"],
    "span_qa": ["exact_match", "token_f1"],
    "multiple_choice": ["accuracy"],
    "mlm_nsp": ["mlm_accuracy", "nsp_accuracy"],
    "causal_lm": ["loss", "perplexity"],
}


def check_head_options(objective: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a head objective with their defaults; a typo or a bad value is a ConfigError."""
    allowed = HEAD_OPTIONS[objective]
    for key in options:
        if key not in allowed:
            hint = closest(str(key), allowed)
            names = ", ".join(allowed) or "none"
            raise ConfigError(f"unknown option {key!r} for objective={objective!r}{hint}; allowed: {names}")
    merged = {**allowed, **options}
    if "transform" in merged:
        check_choice("transform", merged["transform"], TRANSFORMS)
    for name in ("doc_stride", "max_query_length"):
        if name in merged:
            value = merged[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}={value!r} should be an integer")
            check_range(name, value, 1)
    return merged


def head_of(objective: str, arch: str, transform: str) -> str:
    """The model head (ModelConfig.task_head) an objective trains on an encoder or a decoder."""
    if objective == "mlm_nsp":
        return "pretraining"
    if objective == "causal_lm":
        return "lm"
    if arch == "encoder":
        names = {
            "tagging": "token-classification",
            "span_qa": "span-qa",
            "multiple_choice": "multiple-choice",
        }
        return names.get(objective, objective)
    if objective == "multiple_choice":
        return "multiple-choice"
    return "similarity" if transform == "similarity" else objective


def gpt_transform(objective: str, transform: str, has_pairs: bool) -> str:
    """GPT's input transformation: the one named, or the one the data implies."""
    if transform != "auto":
        return transform
    if objective == "multiple_choice":
        return "multiple-choice"
    return "entailment" if has_pairs else "classification"
