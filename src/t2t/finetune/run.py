"""One recipe end to end: tokenizer, model with its head, features, training, scores, saved directory."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

import t2t
from t2t.cli.common import resolve_device as cli_device
from t2t.errors import ConfigError, T2TError
from t2t.finetune import gpt_inputs
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.features import Prepared, prepare
from t2t.finetune.loop import TrainStats, fit, freeze_backbone, predict, shuffled_batches, steps_for
from t2t.finetune.recipe import PRETRAINING, RecipeConfig
from t2t.finetune.resize import init_token_rows
from t2t.finetune.scoring import score
from t2t.interop.hf import family_for_config
from t2t.model.build import with_head
from t2t.model.models import T2TModel
from t2t.presets import PRESETS
from t2t.tokenizer import Tokenizer, load_tokenizer
from t2t.utils.io import atomic_write_text


@dataclass
class FinetuneResult:
    recipe: str
    task: str
    family: str
    scores: dict[str, float]
    parameters: int
    trainable_parameters: int
    steps: int
    train_seconds: float
    train_examples: int
    test_examples: int
    losses: list[float] = field(default_factory=list)
    output_dir: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """The recipe's `device` (auto, cpu, cuda, cuda:N, mps) checked as the CLI's --device is; a bad
    name is a ConfigError naming the recipe key."""
    try:
        return cli_device(name, option="device=")
    except T2TError as err:
        raise ConfigError(str(err)) from None


def recipe_tokenizer(recipe: RecipeConfig, workdir: Path | None = None) -> Tokenizer:
    """The recipe's tokenizer directory, the model directory's, or one trained on the built-in corpus
    (WordPiece for BERT, byte-level BPE for GPT, as the two papers use)."""
    if recipe.tokenizer:
        return load_tokenizer(recipe.tokenizer)
    if recipe.model not in PRESETS:
        return load_tokenizer(recipe.model)
    kind = "wordpiece" if recipe.family == "bert" else "bpe"
    return corpus_tokenizer(kind, recipe.tokenizer_vocab_size)


def recipe_model(
    recipe: RecipeConfig, tokenizer: Tokenizer, num_labels: int, label_names: list[str] | None
) -> T2TModel:
    """A preset built for the tokenizer, or a pre-trained directory moved under the recipe's head."""
    head_fields: dict = {"num_labels": num_labels, "label_names": label_names}
    if recipe.family == "gpt":
        head_fields["lm_loss_weight"] = recipe.lm_loss_weight
    if recipe.task in PRETRAINING:
        head_fields = {}
    if recipe.model in PRESETS:
        base = t2t.preset(recipe.model)
        ids = {"pad_id": tokenizer.pad_id if tokenizer.pad_id is not None else tokenizer.eos_id or 0}
        if recipe.family == "gpt":
            ids.update(eos_id=tokenizer.eos_id, bos_id=tokenizer.eos_id)
        fields = {
            "vocab_size": tokenizer.model_vocab_size,
            "max_positions": max(base.max_positions, recipe.max_length),
            "head": recipe.head,
            **ids,
            **head_fields,
        }
        config = base.replace(**{**fields, **recipe.model_overrides})  # the recipe's overrides win
        _check_length(recipe, config.max_positions, "model_overrides")
        return t2t.build_model(config)
    model = t2t.from_pretrained(recipe.model)
    expected = "encoder" if recipe.family == "bert" else "decoder"
    if model.config.arch != expected:
        raise ConfigError(
            f"model={recipe.model!r} is a {model.config.arch} model; family={recipe.family} needs a {expected}"
        )
    _check_length(recipe, model.config.max_positions, f"{recipe.model}'s")
    if model.config.task_head == recipe.head and model.config.num_labels == num_labels:
        return model
    return with_head(model, recipe.head, **head_fields)


def _check_length(recipe: RecipeConfig, max_positions: int, whose: str) -> None:
    if recipe.max_length > max_positions:
        raise ConfigError(
            f"max_length={recipe.max_length} is longer than {whose} max_positions={max_positions}; "
            f"use max_length={max_positions} or less"
        )


def finetune(
    recipe: RecipeConfig, *, on_log: Callable[[int, float], None] | None = None, save: bool = True
) -> FinetuneResult:
    """Train the recipe's head and score it on the test split; saves model + tokenizer + results.json
    to recipe.output_dir when set."""
    if recipe.task in PRETRAINING:
        from t2t.finetune.pretrain import pretrain

        return pretrain(recipe, on_log=on_log, save=save)
    torch.manual_seed(recipe.seed)
    device = resolve_device(recipe.device)
    tokenizer = recipe_tokenizer(recipe)
    added: list[int] = []
    if recipe.family == "gpt":
        before = tokenizer
        tokenizer = gpt_inputs.add_gpt_tokens(tokenizer)
        added = [tokenizer.token_to_id(t) for t in gpt_inputs.GPT_TOKENS if before.token_to_id(t) is None]
    data = prepare(recipe, tokenizer)
    model = recipe_model(recipe, tokenizer, data.num_labels, data.label_names)
    init_token_rows(model, added)
    if save and recipe.output_dir:
        check_save_format(recipe, model)
    if recipe.freeze_encoder:
        freeze_backbone(model)
    stats = train_recipe(recipe, model, data.train, device, on_log)
    scores = evaluate_prepared(model, data, recipe, device)
    result = make_result(recipe, model, stats, scores, len(data.train), len(data.references))
    if save and recipe.output_dir:
        save_run(model, tokenizer, recipe, result)
    return result


def train_recipe(
    recipe: RecipeConfig,
    model: T2TModel,
    features: list[dict],
    device: torch.device,
    on_log: Callable[[int, float], None] | None = None,
    *,
    epoch_size: int | None = None,
) -> TrainStats:
    """The recipe's epochs (or max_steps) over shuffled batches of `features`; an epoch is `epoch_size`
    features (default: all of them; fewer when `features` holds several maskings of the same data)."""
    pad = model.config.pad_id
    return fit(
        model,
        shuffled_batches(features, recipe.batch_size, lambda f: collate(f, pad), recipe.seed),
        steps_for(epoch_size or len(features), recipe.batch_size, recipe.epochs, recipe.max_steps),
        learning_rate=recipe.learning_rate,
        warmup=recipe.warmup,
        weight_decay=recipe.weight_decay,
        grad_clip=recipe.grad_clip,
        device=device,
        on_log=on_log,
    )


def make_result(
    recipe: RecipeConfig,
    model: T2TModel,
    stats: TrainStats,
    scores: dict[str, float],
    n_train: int,
    n_test: int,
) -> FinetuneResult:
    return FinetuneResult(
        recipe=recipe.name,
        task=recipe.task,
        family=recipe.family,
        scores=scores,
        parameters=model.num_parameters(),
        trainable_parameters=stats.trainable_parameters,
        steps=stats.steps,
        train_seconds=round(stats.seconds, 2),
        train_examples=n_train,
        test_examples=n_test,
        losses=[round(x, 4) for x in stats.losses],
        output_dir=recipe.output_dir,
    )


def evaluate_prepared(
    model: T2TModel, data: Prepared, recipe: RecipeConfig, device: torch.device
) -> dict[str, float]:
    outputs = predict(
        model, data.test, lambda f: collate(f, model.config.pad_id), recipe.eval_batch_size, device
    )
    predictions = data.decode(outputs)
    return score(recipe.metric_names, predictions, data.references)


def check_save_format(recipe: RecipeConfig, model: T2TModel) -> None:
    """save_format=hf needs a transformers class for the model and its head; say so before training."""
    if recipe.save_format == "hf" and family_for_config(model.config) is None:
        raise ConfigError(
            f"save_format=hf: a {model.config.arch} with head={model.config.task_head!r} has no transformers "
            "class (BERT heads and GPT-2's lm / multiple-choice have); use save_format=t2t"
        )


def save_run(model: T2TModel, tokenizer: Tokenizer, recipe: RecipeConfig, result: FinetuneResult) -> Path:
    """model + tokenizer side by side (t2t format, or transformers' with save_format=hf: either loads with
    t2t.from_pretrained), the recipe and results.json."""
    directory = Path(recipe.output_dir or ".")
    model.cpu().save_pretrained(directory, format=recipe.save_format)
    tokenizer.save_pretrained(directory)
    recipe.save(directory / "recipe.yaml")
    info = {**result.to_json(), "torch": torch.__version__, "python": platform.python_version()}
    atomic_write_text(directory / "results.json", json.dumps(info, indent=2) + "\n")
    return directory
