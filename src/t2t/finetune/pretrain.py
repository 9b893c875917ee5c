"""Pretraining examples from a corpus file: BERT's masked LM + next-sentence prediction with a WordPiece
vocabulary, GPT's causal LM with a byte-level BPE one. Scored on the corpus' last lines, held out:
masked-token and next-sentence accuracy, or next-token loss and perplexity.

The objectives are t2t.data's (`Featurizer` with mlm_nsp: BERT's sentence pairs that fill the sequence,
80/10/10 masking; `causal_lm_chunks`), so pretraining here and through t2t.train build the same examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from t2t.data.features import Featurizer
from t2t.data.objectives import causal_lm_chunks
from t2t.errors import DataError
from t2t.finetune.builtin import builtin_path
from t2t.finetune.collate import collate
from t2t.finetune.spec import HeadSpec
from t2t.model.loss import IGNORE_INDEX
from t2t.tokenizer import Tokenizer

HELD_OUT = 0.05  # share of the corpus' lines (its end) kept for scoring
MAX_MASK_COPIES = 10  # BERT's dupe_factor: differently masked copies of the pretraining data


def mask_copies(epochs: float) -> int:
    return max(1, min(MAX_MASK_COPIES, math.ceil(epochs)))


def corpus_lines(spec: HeadSpec) -> tuple[list[str], list[str]]:
    """(training lines, held-out lines): the last 5% of the file (at least 10 lines) are held out."""
    path = builtin_path(spec.train)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the corpus ({err}); give a UTF-8 text file") from None
    if sum(map(bool, lines)) < 20:
        raise DataError(f"{path}: {len(lines)} lines; pretraining needs a corpus of at least 20 lines")
    cut = len(lines) - max(10, int(len(lines) * HELD_OUT))
    train = lines[:cut] if spec.limit_train is None else lines[: min(cut, spec.limit_train)]
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


@dataclass
class CorpusFeatures:
    train: list[dict]  # every masking of the training lines, one after the other (mlm_nsp)
    examples_per_epoch: int  # features of one masking: an epoch
    held_out: list[dict]


def corpus_features(spec: HeadSpec, tokenizer: Tokenizer, epochs: float | None) -> CorpusFeatures:
    """The pretraining features of the corpus file: for mlm_nsp a fresh masking and pairing for each
    epoch (up to BERT's dupe_factor of 10), so more epochs do not show the model the same masked
    tokens again; for causal_lm the blocks of the lines."""
    train_lines, held_lines = corpus_lines(spec)
    if spec.objective == "mlm_nsp":
        probability = spec.options.get("mlm_probability", 0.15)

        def build(lines: list[str], seed: int) -> list[dict]:
            return mlm_nsp_features(lines, tokenizer, spec.max_length, probability, seed)

        copies = [build(train_lines, spec.seed + k) for k in range(mask_copies(epochs or 1.0))]
        train = [f for copy in copies for f in copy]
        return CorpusFeatures(train, len(copies[0]), build(held_lines, spec.seed + 1000))
    train = causal_lm_features(train_lines, tokenizer, spec.max_length)
    return CorpusFeatures(train, len(train), causal_lm_features(held_lines, tokenizer, spec.max_length))
