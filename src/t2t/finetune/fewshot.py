"""Few-shot prompting with no parameter update (GPT-2/GPT-3 style): K solved examples from a task's
training split, then the test example; the model's continuation is read as the answer.

    {text}\\n{pair}\\nanswer: {label}\\n\\n ... {text}\\n{pair}\\nanswer:

A task is a built-in data set name (sentiment, acceptability, paraphrase, entailment, similarity) or any
recipe of configs/finetune/ with sentence or pair examples. The shots are drawn once, seeded, and the
oldest are dropped for a test example that would not fit the model's positions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from t2t.errors import ConfigError
from t2t.finetune import formats
from t2t.finetune.builtin import builtin_path
from t2t.finetune.recipe import RecipeConfig, load_recipe, recipe_names
from t2t.finetune.scoring import score

TASKS = {
    "sentiment": "bert-sentiment",
    "acceptability": "bert-acceptability",
    "paraphrase": "bert-paraphrase",
    "entailment": "bert-entailment",
    "similarity": "bert-similarity",
}


@dataclass
class FewShotReport:
    task: str
    shots: int
    scores: dict[str, float]
    examples: list[dict]  # the first few: prompt tail, prediction, target


def task_recipe(name: str) -> RecipeConfig:
    if name in TASKS:
        return load_recipe(TASKS[name])
    if name in recipe_names() or name.endswith((".yaml", ".yml")):
        recipe = load_recipe(name)
        if recipe.task in ("classification", "regression"):
            return recipe
    raise ConfigError(
        f"--task {name!r}: few-shot prompting takes one of {', '.join(TASKS)} (or a sentence recipe)"
    )


def _render(example: formats.TextExample, answer: str | None) -> str:
    text = example.text if example.pair is None else f"{example.text}\n{example.pair}"
    return f"{text}\nanswer:" + ("" if answer is None else f" {answer}\n\n")


def answer_of(generated: str) -> str:
    """The first word of the continuation (the model may go on with another example)."""
    words = generated.strip().split()
    return words[0].strip(".,;:") if words else ""


def fewshot_prompts(
    recipe: RecipeConfig, shots: int, *, limit: int | None = None, seed: int = 0
) -> tuple[list[str], list[str], list[str], Callable[[str], str | float]]:
    """(prompts, references, label names, how an answer is read) for the recipe's test split."""
    if shots < 0:
        raise ConfigError(f"shots={shots} is negative; use 0 (no examples) or more")
    d, regression = recipe.data, recipe.task == "regression"
    train, names = formats.load_text_examples(
        builtin_path(d.train), d.text_field, d.pair_field, d.label_field, regression=regression
    )
    test, _ = formats.load_text_examples(
        builtin_path(d.test),
        d.text_field,
        d.pair_field,
        d.label_field,
        label_names=names,
        regression=regression,
    )
    test = test[:limit] if limit else test

    def label(e: formats.TextExample) -> str:
        return f"{e.label:g}" if regression else names[int(e.label)]

    demos = random.Random(seed).sample(train, min(shots, len(train)))
    context = "".join(_render(e, label(e)) for e in demos)
    prompts = [context + _render(e, None) for e in test]

    def read(answer: str) -> str | float:
        if not regression:
            return answer_of(answer)
        try:
            return float(answer_of(answer))
        except ValueError:
            return 0.0

    return prompts, [label(e) if not regression else float(e.label) for e in test], names or [], read


def fit_prompt(prompt: str, count: Callable[[str], int], room: int) -> str:
    """Drop the oldest shots (blank-line separated) until the prompt takes at most `room` tokens."""
    while count(prompt) > room and "\n\n" in prompt:
        prompt = prompt.split("\n\n", 1)[1]
    return prompt


def run_fewshot(
    pipe, task: str, shots: int, *, limit: int | None = None, seed: int = 0, **generation
) -> FewShotReport:  # type: ignore[no-untyped-def]
    """Generate an answer for each test prompt with the pipeline and score them with the task's metrics."""
    recipe = task_recipe(task)
    prompts, references, _, read = fewshot_prompts(recipe, shots, limit=limit, seed=seed)
    new = generation.get("max_new_tokens") or 8
    room = pipe.model.config.max_positions - new
    count = lambda text: len(pipe.tokenizer.encode(text))  # noqa: E731
    prompts = [fit_prompt(p, count, room) for p in prompts]
    outputs = pipe(prompts, **generation)
    predictions = [read(o) for o in outputs]
    metrics = [m for m in recipe.metric_names if m != "matthews" or recipe.task == "classification"]
    examples = [
        {"prompt_tail": p[-120:], "prediction": o, "target": r}
        for p, o, r in list(zip(prompts, outputs, references))[:3]
    ]
    return FewShotReport(task, shots, score(metrics, predictions, references), examples)
