"""run_quickstart: tokenizer -> pretraining -> fine-tuning with and without it -> evaluation -> prompts.

Each stage is timed; the report compares every task's held-out score of the model fine-tuned from the
pretrained weights with the same model fine-tuned from scratch for the same number of steps (the T5
paper's transfer claim, at small scale), once with all the training data and once with a small share of
it, where pretraining has room to show. OUT ends up with `model/` (weights + tokenizer, what
`t2t generate --model OUT/model` and `t2t eval --model OUT/model` take), `report.md`, `report.json` and
the training runs under `runs/`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2t.data import Task, get_task, make_stream
from t2t.presets import preset
from t2t.quickstart.plan import PLANS, QuickstartPlan
from t2t.quickstart.report import render_report, target_verdicts
from t2t.quickstart.tasks import DATA_DIR, QUICKSTART_TASKS, RULE_TARGET, register_quickstart_tasks
from t2t.utils.io import atomic_open, atomic_write_text

CORPUS = DATA_DIR.parent / "finetune" / "corpus" / "train.txt"
# Items of the test splits: their names, places, words and numbers never occur in any training text.
PROMPTS = (
    "translate English to German: one hundred and sixty-six",
    "classify sentiment: The harvest was rich and everyone rejoiced.",
    "question: What does Bjarnlaug work as? context: Bjarnlaug works as a logger. Fridah lives in Nancy.",
    "summarize: The news spread quickly. Dario, a wagoner from Tongjing, tethered the hayrig on Monday. "
    "It was a cold day.",
    "reasoning: If the erythrina inosculates, the ironing gets hyperopic. The erythrina inosculates. "
    "What happens to the ironing?",
    "reasoning: If the pollen bustles, the pane gets deadening. The pollen does not bustle. What happens "
    "to the pane?",
)


@dataclass
class QuickstartReport:
    plan: str
    seed: int
    device: str
    parameters: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # variant -> task -> metric
    answers: list[tuple[str, str]] = field(default_factory=list)
    model_dir: str = ""

    @property
    def total_seconds(self) -> float:
        return sum(self.stages.values())

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "total_seconds": self.total_seconds,
            "rule_target": {"metric": "exact_match", "at_least": RULE_TARGET},
            "rule_target_met": target_verdicts(self.scores),
        }


def run_quickstart(
    out: str | Path,
    *,
    fast: bool = False,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> QuickstartReport:
    plan = PLANS["fast" if fast else "full"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    register_quickstart_tasks()
    tasks = [get_task(name) for name in QUICKSTART_TASKS]
    report = QuickstartReport(plan=plan.name, seed=seed, device=_device(device), parameters=0)

    with _stage(report, "tokenizer", log):
        tokenizer = _train_tokenizer(plan, tasks, out / "work")
    with _stage(report, "pretrain", log):
        torch.manual_seed(seed)
        pretrained = _build_model(plan, tokenizer)
        initial = {k: v.clone() for k, v in pretrained.state_dict().items()}
        report.parameters = sum(p.numel() for p in pretrained.parameters())
        stream = pretrain_stream(plan, tokenizer, out / "work" / "pretrain.txt", seed)
        schedule = {"name": "inverse_sqrt", "lr": plan.pretrain_lr, "steps": plan.pretrain_steps}
        _fit(plan, pretrained, tokenizer, stream, out / "runs" / "pretrain", schedule, seed, device, progress)
    starts = {
        "pretrained": {k: v.clone() for k, v in pretrained.state_dict().items()},
        "from scratch": initial,
    }
    share = f"{plan.low_data_share:.0%}"
    arms = [(v, start, "quickstart", plan.finetune_steps) for v, start in starts.items()]
    low = _low_data_mixture(tasks, plan.low_data_share, seed)
    arms += [(f"{v}, {share} of the data", start, low, plan.low_data_steps) for v, start in starts.items()]
    models = {}
    for variant, start, source, steps in arms:
        with _stage(report, f"finetune ({variant})", log):
            model = _build_model(plan, tokenizer)
            model.load_state_dict(start)  # the pretrained weights, or the same initial ones without them
            stream = finetune_stream(plan, tokenizer, source, seed)
            run_dir = (
                out / "runs" / f"finetune-{variant.replace(' ', '-').replace(',', '').replace('%', 'pct')}"
            )
            schedule = {"name": plan.finetune_schedule, "lr": plan.finetune_lr, "steps": steps}
            _fit(plan, model, tokenizer, stream, run_dir, schedule, seed, device, progress)
        with _stage(report, f"evaluate ({variant})", log):
            report.scores[variant] = _evaluate(model, tokenizer, tasks, plan, progress)
        models[variant] = model
    best = models["pretrained"]
    with _stage(report, "prompts + save", log):
        report.answers = _answer(best, tokenizer, PROMPTS)
        model_dir = out / "model"
        best.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        report.model_dir = str(model_dir)
    text = render_report(report)
    atomic_write_text(out / "report.md", text)
    with atomic_open(out / "report.json") as handle:
        json.dump(report.to_json(), handle, indent=2)
    log(text)
    return report


STAGES = (
    11  # tokenizer, pretrain, finetune and evaluate for both variants with all and some data, prompts + save
)


@contextmanager
def _stage(report: QuickstartReport, name: str, log: Callable[[str], None]) -> Iterator[None]:
    """Announce a stage as [k/7] (training and evaluation stages show their own bars), then time it."""
    log(f"== [{len(report.stages) + 1}/{STAGES}] {name}")
    start = time.perf_counter()
    yield
    report.stages[name] = time.perf_counter() - start
    elapsed = report.total_seconds
    log(f"   {name}: {report.stages[name]:.1f}s ({elapsed / 60:.1f} min so far)")


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _lines(tasks: list[Task]) -> Iterator[str]:
    for task in tasks:
        for example in task.examples("train"):
            yield example["inputs"]
            yield example["targets"]


def _train_tokenizer(plan: QuickstartPlan, tasks: list[Task], work: Path) -> Any:
    """A sentencepiece vocabulary over the corpus and the tasks' training text (never their test text),
    and the pretraining text: the built-in prose, plus with plan.pretrain_corpus="prose+inputs" the
    tasks' training inputs without their targets (unlabeled in-domain text, as the T5 paper's in-domain
    ablations use)."""
    from t2t.tokenizer import TokenizerConfig, train_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    task_text = list(_lines(tasks))
    corpus_text = CORPUS.read_text(encoding="utf-8").splitlines()
    atomic_write_text(work / "tokenizer.txt", "\n".join(corpus_text + task_text) + "\n")
    pretrain_text = corpus_text + (task_text[0::2] if plan.pretrain_corpus == "prose+inputs" else [])
    atomic_write_text(work / "pretrain.txt", "\n".join(line for line in pretrain_text if line) + "\n")
    return train_tokenizer(
        [work / "tokenizer.txt"],
        TokenizerConfig(vocab_size=plan.vocab_size, max_piece_length=plan.max_piece_length),
    )


def pretrain_stream(plan: QuickstartPlan, tokenizer: Any, text: Path, seed: int) -> Any:
    """Pretraining batches of plan.pretrain_objective over the pretraining text: the lines tokenized,
    concatenated and cut into chunks, one example a chunk (the objectives experiment's stream, so the
    quickstart pretrains as that experiment measured)."""
    from t2t.experiments.textdata import CorpusObjectiveStream, corpus_token_ids

    lines = [line for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
    return CorpusObjectiveStream(
        corpus_token_ids(lines, tokenizer),
        tokenizer,
        plan.pretrain_objective,
        batch_size=plan.pretrain_batch_size,
        input_length=plan.pretrain_input_length,
        seed=seed,
    )


def _low_data_mixture(tasks: list[Task], share: float, seed: int) -> Any:
    """The quickstart mixture over a seeded `share` of every task's training split (test splits whole)."""
    from t2t.experiments.textdata import mixture_of, subset_task

    return mixture_of([subset_task(task, share, seed)[0] for task in tasks], "equal", None, 1.0)


def finetune_stream(plan: QuickstartPlan, tokenizer: Any, source: Any, seed: int) -> Any:
    """The fine-tuning batches of the plan: shuffled examples of a task or mixture (a name or the object),
    packed if it says so."""
    return make_stream(
        source,
        tokenizer,
        objective="text2text",
        batch_size=plan.finetune_batch_size,
        max_input_length=plan.max_input_length,
        max_target_length=plan.max_target_length,
        seed=seed,
        shuffle=True,
        pack=plan.finetune_pack,
    )


def _build_model(plan: QuickstartPlan, tokenizer: Any) -> Any:
    from t2t.model.build import build_model

    config = preset(
        "t5-small",
        vocab_size=tokenizer.model_vocab_size,
        d_model=plan.d_model,
        d_ff=plan.d_ff,
        n_heads=plan.n_heads,
        head_dim=plan.d_model // plan.n_heads,
        n_encoder_layers=plan.n_layers,
        n_decoder_layers=plan.n_layers,
        dropout=plan.dropout,
    )
    return build_model(config)


def _fit(
    plan: QuickstartPlan,
    model: Any,
    tokenizer: Any,
    stream: Any,
    run_dir: Path,
    schedule: dict[str, Any],
    seed: int,
    device: str,
    progress: bool,
) -> Any:
    from t2t.train import TrainConfig, Trainer

    config = TrainConfig.from_dict(
        {
            "run_dir": str(run_dir),
            "overwrite": True,  # the quickstart rebuilds everything under --out
            "seed": seed,
            "max_steps": schedule["steps"],
            "device": device,
            "progress": progress,
            "log_every": 50,
            "optim": {"name": "adamw", "lr": schedule["lr"]},
            "schedule": {"name": schedule["name"], "warmup_steps": plan.warmup_steps},
            "checkpoint": {"keep_last": 1, "format": "t2t"},
        }
    )
    return Trainer(config, model=model, tokenizer=tokenizer, train_stream=stream).fit()


def _evaluate(model: Any, tokenizer: Any, tasks: list[Task], plan: QuickstartPlan, progress: bool) -> dict:
    from t2t.evaluate import evaluate

    result = evaluate(
        model,
        tokenizer,
        tasks,
        split="test",
        batch_size=64,
        max_new_tokens=plan.max_target_length,
        limit=plan.eval_limit,
        progress=progress,
    )
    return result.scores


def _answer(model: Any, tokenizer: Any, prompts: tuple[str, ...]) -> list[tuple[str, str]]:
    from t2t.generation import Pipeline

    pipe = Pipeline(model, tokenizer)
    return list(zip(prompts, pipe(list(prompts), max_new_tokens=32), strict=True))
