"""Token-level cross-entropy as the models and the trainer compute it (labels of -100 are ignored)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy over [..., vocab] logits in fp32; `mean` averages over the non-ignored tokens."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1).to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def next_token_labels(labels: torch.Tensor) -> torch.Tensor:
    """Decoder-only LMs predict token t+1 at position t: the labels shifted left, the last position
    ignored. Shifting the labels rather than slicing the logits keeps the [B, T, V] logits contiguous,
    so the loss reads them in place instead of copying them (and their gradient) once more."""
    shifted = labels.new_full(labels.shape, IGNORE_INDEX)
    shifted[:, :-1] = labels[:, 1:]
    return shifted


def shift_for_next_token(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) to score a decoder-only LM's next-token predictions with token_cross_entropy."""
    return logits, next_token_labels(labels)
