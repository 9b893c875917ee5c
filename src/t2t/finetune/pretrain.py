"""The pretraining recipes on the built-in corpus: BERT's masked LM + next-sentence prediction with a
WordPiece vocabulary, GPT's causal LM with a byte-level BPE one. Scored on the corpus' last lines, held
out: masked-token and next-sentence accuracy, or next-token loss and perplexity.

The objectives are t2t.data's (`Featurizer` with mlm_nsp: BERT's sentence pairs that fill the sequence,
80/10/10 masking; `causal_lm_chunks`), so pretraining here and through t2t.train build the same examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2t.data.features import Featurizer
from t2t.data.objectives import causal_lm_chunks
from t2t.errors import DataError
from t2t.finetune.builtin import builtin_path
from t2t.finetune.collate import collate
from t2t.finetune.recipe import RecipeConfig
from t2t.model.loss import IGNORE_INDEX
from t2t.tokenizer import Tokenizer

HELD_OUT = 0.05  # share of the corpus' lines (its end) kept for scoring
MAX_MASK_COPIES = 10  # BERT's dupe_factor: differently masked copies of the pretraining data


def mask_copies(epochs: float) -> int:
    return max(1, min(MAX_MASK_COPIES, math.ceil(epochs)))


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


def documents(lines: list[str]) -> list[str]:
    """Blank lines end documents; each document's lines are its sentences (one per line)."""
    docs, current = [], []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            docs.append("\n".join(current))
            current = []
    return docs


def mlm_nsp_features(
    lines: list[str], tokenizer: Tokenizer, max_length: int, mask_probability: float, seed: int
) -> list[dict]:
    """BERT's pretraining examples from t2t.data: [CLS] A [SEP] B [SEP] filling max_length, B the text
    that follows A in its document (label 0) or text of another document (1, half of the pairs), and
    `mask_probability` of the word pieces chosen for prediction (80% [MASK], 10% random, 10% kept)."""
    if tokenizer.mask_id is None or tokenizer.cls_id is None:
        raise DataError("mlm-nsp needs a WordPiece tokenizer with [MASK], [CLS] and [SEP]")
    featurizer = Featurizer(
        tokenizer,
        objective="mlm_nsp",
        arch="encoder",
        max_input_length=max_length,
        max_target_length=0,
        seed=seed,
        mlm_probability=mask_probability,
    )
    pieces = [p for i, doc in enumerate(documents(lines)) for p in featurizer({"text": doc}, i)]
    featurizer.finish()
    return [
        {
            "input_ids": p.ids,
            "token_type_ids": p.token_type_ids,
            "labels": p.labels,
            "next_sentence_label": p.next_sentence_label,
        }
        for p in pieces
    ]


def causal_lm_features(lines: list[str], tokenizer: Tokenizer, max_length: int) -> list[dict]:
    """The lines, each ended by the end-of-text token, as one stream cut into blocks of max_length
    (GPT's contiguous text); the model predicts each next token."""
    if tokenizer.eos_id is None:
        raise DataError("causal-lm needs a tokenizer with an end-of-text token")
    stream = [
        t
        for ids in tokenizer.encode_batch([line for line in lines if line], add_special_tokens=False)
        for t in (*ids, tokenizer.eos_id)
    ]
    blocks = [b.tolist() for b in causal_lm_chunks(stream, max_length, eos_id=None)]
    return [{"input_ids": b, "labels": b} for b in blocks if len(b) > 1]


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
        check_save_format,
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
    epoch_size = None
    if recipe.task == "mlm-nsp":
        build = lambda lines, seed: mlm_nsp_features(  # noqa: E731
            lines, tokenizer, recipe.max_length, recipe.mask_probability, seed
        )
        # A fresh masking and pairing for each epoch (up to BERT's dupe_factor of 10), so more epochs do
        # not show the model the same masked tokens again.
        copies = [build(train_lines, recipe.seed + k) for k in range(mask_copies(recipe.epochs))]
        train, epoch_size = [f for copy in copies for f in copy], len(copies[0])
        test = build(test_lines, recipe.seed + 1000)
    else:
        train = causal_lm_features(train_lines, tokenizer, recipe.max_length)
        test = causal_lm_features(test_lines, tokenizer, recipe.max_length)
    model = recipe_model(recipe, tokenizer, 2, None)
    if save and recipe.output_dir:
        check_save_format(recipe, model)
    stats = train_recipe(recipe, model, train, device, on_log, epoch_size=epoch_size)
    scores = held_out_scores(model, test, model.config.pad_id, recipe.eval_batch_size, device)
    result = make_result(recipe, model, stats, scores, epoch_size or len(train), len(test))
    if save and recipe.output_dir:
        save_run(model, tokenizer, recipe, result)
    return result
