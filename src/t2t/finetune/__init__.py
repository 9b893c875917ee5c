"""Fine-tuning as BERT and GPT did it: task heads, GPT's input transformations, pretraining recipes on
the built-in corpus and few-shot prompting; see docs/finetuning.md."""

from t2t.finetune.fewshot import FewShotReport, run_fewshot
from t2t.finetune.recipe import RecipeConfig, load_recipe, recipe_names
from t2t.finetune.run import FinetuneResult, finetune

__all__ = [
    "FewShotReport",
    "FinetuneResult",
    "RecipeConfig",
    "finetune",
    "load_recipe",
    "recipe_names",
    "run_fewshot",
]
