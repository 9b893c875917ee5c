"""Loss of one micro-batch as sums, so that accumulation divides by the tokens of the whole update.

Averaging each micro-batch and then the micro-batches weighs a short micro-batch's tokens more than a
long one's; summing token losses and dividing by the target tokens of all micro-batches (and of all
processes) gives exactly the gradient of the large batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from t2t.model.loss import IGNORE_INDEX, next_token_labels, shift_for_next_token, token_cross_entropy
from t2t.model.models import DecoderLM, EncoderDecoderLM, EncoderModel

Batch = dict[str, torch.Tensor]


def loss_kind(model: torch.nn.Module) -> str:
    """How a model's loss is normalised: per target token ("seq2seq", "causal", "mlm") or per row."""
    if isinstance(model, EncoderDecoderLM):
        return "seq2seq"
    if isinstance(model, DecoderLM):
        return "causal"
    if isinstance(model, EncoderModel):
        return "mlm"
    return "rows"


def count_targets(batch: Batch, kind: str) -> tuple[int, int]:
    """(target tokens, rows) that the loss of this micro-batch is a sum over."""
    labels = batch.get("labels")
    rows = int(batch["input_ids"].shape[0])
    if kind == "rows" or labels is None:
        return 0, rows
    if kind == "causal":
        labels = next_token_labels(labels)
    return int((labels != IGNORE_INDEX).sum()), rows if kind == "mlm" else 0


@dataclass
class LossSums:
    tokens: torch.Tensor  # summed token cross-entropy
    rows: torch.Tensor  # summed per-row losses (NSP, classification heads)

    def normalised(self, n_tokens: int, n_rows: int) -> torch.Tensor:
        return self.tokens / max(n_tokens, 1) + self.rows / max(n_rows, 1)


def loss_sums(
    forward: Callable[..., Any],
    core: torch.nn.Module,
    batch: Batch,
    kind: str,
    *,
    label_smoothing: float = 0.0,
    decoder_input_ids: torch.Tensor | None = None,
) -> tuple[LossSums, torch.Tensor | None]:
    """Summed losses of one micro-batch and the logits. `forward` is the (possibly DDP-wrapped) model,
    `core` the bare one; `decoder_input_ids` replaces the teacher-forced inputs (scheduled sampling)."""
    zero = torch.zeros((), device=batch["input_ids"].device)
    if kind == "rows":
        out = forward(**batch)
        return LossSums(zero, out.loss.float() * batch["input_ids"].shape[0]), out.logits
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "next_sentence_label")}
    labels = batch["labels"]
    if kind == "seq2seq":
        if decoder_input_ids is not None:
            inputs["decoder_input_ids"] = decoder_input_ids
        elif "decoder_input_ids" not in inputs:
            assert isinstance(core, EncoderDecoderLM)
            inputs["decoder_input_ids"] = core.shift_right(labels)
    out = forward(**inputs)
    logits = out.logits
    if kind == "causal":
        scored, targets = shift_for_next_token(logits, labels)
    else:
        scored, targets = logits, labels
    tokens = token_cross_entropy(scored, targets, reduction="sum", label_smoothing=label_smoothing)
    rows = zero
    if kind == "mlm" and "next_sentence_label" in batch:
        rows = token_cross_entropy(out.nsp_logits, batch["next_sentence_label"], reduction="sum")
    return LossSums(tokens, rows), logits
