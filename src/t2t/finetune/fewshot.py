"""Few-shot prompting with no parameter update (GPT-2/GPT-3 style): K solved examples from a task's
training split, then the test example; the model's continuation is read as the answer.

    {text}\\n{pair}\\nanswer: {label}\\n\\n ... {text}\\n{pair}\\nanswer:

The task is a HeadSpec of sentence or pair examples (t2t.train.recipes.fewshot_spec reads one from a
built-in data set name or a recipe of configs/finetune/). The shots are drawn once, seeded, and the
oldest are dropped for a test example that would not fit the model's positions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from t2t.errors import ConfigError
from t2t.finetune import formats
from t2t.finetune.builtin import builtin_path
from t2t.finetune.scoring import score
from t2t.finetune.spec import HeadSpec

SENTENCE_OBJECTIVES = ("classification", "regression")


@dataclass
class FewShotReport:
    task: str
    shots: int
    scores: dict[str, float]
    examples: list[dict]  # the first few: prompt tail, prediction, target


def _render(example: formats.TextExample, answer: str | None) -> str:
    text = example.text if example.pair is None else f"{example.text}\n{example.pair}"
    return f"{text}\nanswer:" + ("" if answer is None else f" {answer}\n\n")


def answer_of(generated: str) -> str:
    """The first word of the continuation (the model may go on with another example)."""
    words = generated.strip().split()
    return words[0].strip(".,;:") if words else ""


def fewshot_prompts(
    spec: HeadSpec, shots: int, *, limit: int | None = None, seed: int = 0
) -> tuple[list[str], list[str], list[str], Callable[[str], str | float]]:
    """(prompts, references, label names, how an answer is read) for the spec's evaluation file."""
    if shots < 0:
        raise ConfigError(f"shots={shots} is negative; use 0 (no examples) or more")
    if spec.objective not in SENTENCE_OBJECTIVES or not spec.eval:
        raise ConfigError(
            f"few-shot prompting takes sentence or pair examples with a test file, not objective={spec.objective!r}"
        )
    d, regression = spec, spec.objective == "regression"
    train, names = formats.load_text_examples(
        builtin_path(d.train), d.text_field, d.pair_field, d.label_field, regression=regression
    )
    test, _ = formats.load_text_examples(
        builtin_path(d.eval),
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
    pipe, task: str, spec: HeadSpec, shots: int, *, limit: int | None = None, seed: int = 0, **generation
) -> FewShotReport:  # type: ignore[no-untyped-def]
    """Generate an answer for each test prompt with the pipeline and score them with the task's metrics."""
    prompts, references, _, read = fewshot_prompts(spec, shots, limit=limit, seed=seed)
    new = generation.get("max_new_tokens") or 8
    room = pipe.model.config.max_positions - new
    count = lambda text: len(pipe.tokenizer.encode(text))  # noqa: E731
    prompts = [fit_prompt(p, count, room) for p in prompts]
    outputs = pipe(prompts, **generation)
    predictions = [read(o) for o in outputs]
    metrics = [m for m in spec.metric_names if m != "matthews" or spec.objective == "classification"]
    examples = [
        {"prompt_tail": p[-120:], "prediction": o, "target": r}
        for p, o, r in list(zip(prompts, outputs, references))[:3]
    ]
    return FewShotReport(task, shots, score(metrics, predictions, references), examples)
