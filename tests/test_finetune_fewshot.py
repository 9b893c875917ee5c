"""Few-shot prompting: prompts from a task's training split, the oldest shots dropped to fit, answers
read from the continuation and scored; `t2t generate --task NAME --shots K`."""

from __future__ import annotations

import pytest

from t2t.cli.main import main
from t2t.errors import ConfigError
from t2t.finetune import fewshot
from t2t.train import Trainer
from t2t.train.recipes import fewshot_spec, load_recipe


def test_prompts_hold_k_solved_examples_then_the_question():
    recipe = fewshot_spec("paraphrase")
    prompts, references, names, _ = fewshot.fewshot_prompts(recipe, 3, limit=5)
    assert len(prompts) == len(references) == 5 and names == ["0", "1"]
    first = prompts[0]
    assert first.count("\nanswer: ") == 3 and first.endswith("\nanswer:")
    assert len({p.split("\n\n")[0] for p in prompts}) == 1  # the same shots before every question
    zero, _, _, _ = fewshot.fewshot_prompts(recipe, 0, limit=1)
    assert zero[0].count("answer:") == 1


def test_oldest_shots_are_dropped_to_fit():
    prompt = "a\nanswer: x\n\nb\nanswer: y\n\nq\nanswer:"
    assert fewshot.fit_prompt(prompt, len, 100) == prompt
    assert fewshot.fit_prompt(prompt, len, 25) == "b\nanswer: y\n\nq\nanswer:"
    assert fewshot.answer_of("  positive.\n\nnext example") == "positive"


class EchoPipe:
    """Answers with the reference label (right) for even prompts and a wrong word for odd ones."""

    def __init__(self, answers):
        self.answers = answers
        self.model = type("M", (), {"config": type("C", (), {"max_positions": 10_000})()})()
        self.tokenizer = type("T", (), {"encode": staticmethod(lambda text: text.split())})()

    def __call__(self, prompts, **options):
        return [
            f" {a}\n\nmore" if i % 2 == 0 else " maybe" for i, a in enumerate(self.answers[: len(prompts)])
        ]


def test_scores_count_right_answers():
    recipe = fewshot_spec("sentiment")
    _, references, _, _ = fewshot.fewshot_prompts(recipe, 2, limit=8)
    report = fewshot.run_fewshot(EchoPipe(references), "sentiment", recipe, 2, limit=8, max_new_tokens=3)
    assert report.scores == {"accuracy": 50.0}
    with pytest.raises(ConfigError, match="--task 'tagging'"):
        fewshot_spec("tagging")


def test_generate_cli_task_option(tmp_path, capsys):
    out = tmp_path / "gpt"
    overrides = ["model.tokenizer_vocab_size=400", "model.overrides={}", "data.max_input_length=64"]
    cfg = load_recipe("gpt-pretrain", [*overrides, "data.limit_train=200", "max_steps=2", f"run_dir={out}"])
    Trainer(cfg.replace(progress=False)).fit()
    model = out / "checkpoints" / "last"
    argv = ["generate", "--model", str(model), "--task", "sentiment", "--shots", "2", "--limit", "4"]
    assert main([*argv, "--max-new-tokens", "2"]) == 0
    assert capsys.readouterr().out.startswith("sentiment (2-shot): accuracy ")
    assert main([*argv, "a prompt"]) == 2
    assert "--task builds its own prompts" in capsys.readouterr().err


def test_negative_shots_is_a_config_error():
    from t2t.errors import ConfigError
    from t2t.finetune.fewshot import fewshot_prompts

    with pytest.raises(ConfigError, match="shots=-1 is negative"):
        fewshot_prompts(fewshot_spec("sentiment"), -1)
