"""The pretraining recipes on the built-in corpus: BERT's masked LM + next-sentence prediction with a
WordPiece vocabulary, GPT's causal LM with a byte-level BPE one. Scored on the corpus' last lines, held
out: masked-token and next-sentence accuracy, or next-token loss and perplexity.

t2t.data's `mlm_nsp` / `causal_lm` objectives are to replace the two feature builders here once they land.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch

from t2t.errors import DataError
from t2t.finetune.builtin import builtin_path
from t2t.finetune.collate import collate
from t2t.finetune.recipe import RecipeConfig
from t2t.model.loss import IGNORE_INDEX
from t2t.tokenizer import Tokenizer

HELD_OUT = 0.02  # share of the corpus' lines (its end) kept for scoring


def corpus_lines(recipe: RecipeConfig) -> tuple[list[str], list[str]]:
    path = builtin_path(recipe.data.train)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the corpus ({err}); give a UTF-8 text file") from None
    if sum(map(bool, lines)) < 20:
        raise DataError(f"{path}: {len(lines)} lines; pretraining needs a corpus of at least 20 lines")
    cut = len(lines) - max(10, int(len(lines) * HELD_OUT))
    train = lines[:cut] if recipe.data.limit_train is None else lines[: min(cut, recipe.data.limit_train)]
    return train, lines[cut:]


def mlm_nsp_features(
    lines: list[str], tokenizer: Tokenizer, max_length: int, mask_probability: float, seed: int
) -> list[dict]:
    """Pairs of lines, the second the true next line of the same document (blank lines end documents)
    half of the time (label 0) and a random line otherwise (1); `mask_probability` of the word pieces
    chosen for prediction: 80% [MASK], 10% a random piece, 10% kept."""
    if tokenizer.mask_id is None or tokenizer.cls_id is None:
        raise DataError("mlm-nsp needs a WordPiece tokenizer with [MASK], [CLS] and [SEP]")
    rng = random.Random(seed)
    specials = set(tokenizer.special_ids)
    features = []
    texts = [line for line in lines if line]
    for i in range(len(lines) - 1):
        if not lines[i] or not lines[i + 1]:
            continue
        is_random = rng.random() < 0.5
        second = texts[rng.randrange(len(texts))] if is_random else lines[i + 1]
        pair = tokenizer.encode_pair(lines[i], second, max_length=max_length)
        ids, labels = list(pair.ids), [IGNORE_INDEX] * len(pair.ids)
        for position, token in enumerate(pair.ids):
            if token in specials or rng.random() >= mask_probability:
                continue
            labels[position] = token
            roll = rng.random()
            if roll < 0.8:
                ids[position] = tokenizer.mask_id
            elif roll < 0.9:
                ids[position] = rng.randrange(tokenizer.vocab_size)
        features.append(
            {
                "input_ids": ids,
                "token_type_ids": pair.token_type_ids,
                "labels": labels,
                "next_sentence_label": int(is_random),
            }
        )
    return features


def causal_lm_features(lines: list[str], tokenizer: Tokenizer, max_length: int) -> list[dict]:
    """The lines joined by the end-of-text token and cut into blocks of max_length (GPT's contiguous
    text); the model predicts each next token."""
    if tokenizer.eos_id is None:
        raise DataError("causal-lm needs a tokenizer with an end-of-text token")
    stream: list[int] = []
    for ids in tokenizer.encode_batch([line for line in lines if line], add_special_tokens=False):
        stream += [*ids, tokenizer.eos_id]
    return [
        {"input_ids": stream[s : s + max_length], "labels": stream[s : s + max_length]}
        for s in range(0, len(stream) - 1, max_length)
        if len(stream[s : s + max_length]) > 1
    ]


@torch.no_grad()
def held_out_scores(
    model: torch.nn.Module, features: list[dict], pad_id: int, batch_size: int, device
) -> dict[str, float]:
    model.eval()
    mlm = "next_sentence_label" in features[0]
    total_loss = tokens = hits = nsp_hits = 0.0
    for start in range(0, len(features), batch_size):
        batch = {k: v.to(device) for k, v in collate(features[start : start + batch_size], pad_id).items()}
        out = model(**batch)
        labels = batch["labels"]
        if mlm:
            chosen = labels != IGNORE_INDEX
            hits += (out.logits.argmax(-1)[chosen] == labels[chosen]).sum().item()
            tokens += chosen.sum().item()
            nsp_hits += (out.nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum().item()
        else:
            n = (labels[:, 1:] != IGNORE_INDEX).sum().item()
            total_loss += out.loss.item() * n
            tokens += n
    if mlm:
        return {"mlm_accuracy": 100 * hits / max(tokens, 1), "nsp_accuracy": 100 * nsp_hits / len(features)}
    loss = total_loss / max(tokens, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50))}


def pretrain(recipe: RecipeConfig, *, on_log: Callable[[int, float], None] | None = None, save: bool = True):
    from t2t.finetune.run import (
        make_result,
        recipe_model,
        recipe_tokenizer,
        resolve_device,
        save_run,
        train_recipe,
    )

    torch.manual_seed(recipe.seed)
    device = resolve_device(recipe.device)
    tokenizer = recipe_tokenizer(recipe)
    train_lines, test_lines = corpus_lines(recipe)
    if recipe.task == "mlm-nsp":
        build = lambda lines, seed: mlm_nsp_features(  # noqa: E731
            lines, tokenizer, recipe.max_length, recipe.mask_probability, seed
        )
        train, test = build(train_lines, recipe.seed), build(test_lines, recipe.seed + 1)
    else:
        train = causal_lm_features(train_lines, tokenizer, recipe.max_length)
        test = causal_lm_features(test_lines, tokenizer, recipe.max_length)
    model = recipe_model(recipe, tokenizer, 2, None)
    stats = train_recipe(recipe, model, train, device, on_log)
    scores = held_out_scores(model, test, model.config.pad_id, recipe.eval_batch_size, device)
    result = make_result(recipe, model, stats, scores, len(train), len(test))
    if save and recipe.output_dir:
        save_run(model, tokenizer, recipe, result)
    return result
