"""The built-in fine-tuning recipes as training configs: `load_recipe("bert-sentiment", overrides)` is
what `t2t finetune --recipe` runs and what `t2t train --config configs/finetune/NAME.yaml` reads.

A t2t 0.1 recipe file or override key is read through t2t.finetune.recipe's aliases, with a warning.
"""

from __future__ import annotations

from pathlib import Path

from t2t.configbase import read_config_file
from t2t.errors import ConfigError
from t2t.finetune.recipe import is_legacy, legacy_override, legacy_recipe, recipe_names, recipe_path
from t2t.finetune.spec import HeadSpec
from t2t.train.config import TrainConfig

# Few-shot prompting's names for the built-in sentence and pair tasks.
FEWSHOT_TASKS = {
    "sentiment": "bert-sentiment",
    "acceptability": "bert-acceptability",
    "paraphrase": "bert-paraphrase",
    "entailment": "bert-entailment",
    "similarity": "bert-similarity",
}


def load_recipe(name_or_file: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe by name (configs/finetune/NAME.yaml) or by file, with `key=value` overrides."""
    path, data = read_config_file(recipe_path(name_or_file))
    if is_legacy(data):
        try:
            cfg = TrainConfig.from_dict(legacy_recipe(data, str(path)))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    else:
        cfg = TrainConfig.load(path)
    return cfg.with_overrides([new for item in overrides or [] for new in legacy_override(item)])


def fewshot_spec(name: str) -> HeadSpec:
    """The sentence or pair examples few-shot prompting reads: a built-in task name (sentiment, ...) or
    a recipe of sentence examples."""
    recipe = FEWSHOT_TASKS.get(name, name)
    if recipe in recipe_names() or str(recipe).endswith((".yaml", ".yml")):
        cfg = load_recipe(recipe)
        if cfg.data.objective in ("classification", "regression"):
            from t2t.train.heads import head_spec

            return head_spec(cfg, "decoder")
    raise ConfigError(
        f"--task {name!r}: few-shot prompting takes one of {', '.join(FEWSHOT_TASKS)} (or a sentence recipe)"
    )
