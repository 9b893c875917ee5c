"""Room in a pre-trained model for tokens added at fine-tuning time (GPT's start, delimiter and extract
tokens): grow the embedding, and an untied LM head, and give the new rows a fresh initialisation.

Lives here until the model package has such a helper (t2t.model is not this package's to change).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from t2t.model.models import T2TModel


def _init_std(model: T2TModel) -> float:
    """The std the model's own init gives embeddings and plain linears (t5: 1.0; others: init_std)."""
    return 1.0 if model.config.init == "t5" else model.config.init_std


@torch.no_grad()
def grow_embeddings(model: T2TModel, rows: int) -> T2TModel:
    """Add `rows` rows to model.embed (and to an untied lm_head), initialised like the model's own
    weights; config.vocab_size follows. Returns the model (changed in place)."""
    if rows <= 0:
        return model
    old = model.embed
    size = old.num_embeddings + rows
    embed = nn.Embedding(size, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
    embed.weight[: old.num_embeddings] = old.weight
    nn.init.normal_(embed.weight[old.num_embeddings :], std=_init_std(model))
    model.embed = embed
    head = getattr(model, "lm_head", None)
    if isinstance(head, nn.Linear):
        grown = nn.Linear(
            head.in_features,
            size,
            bias=head.bias is not None,
            device=head.weight.device,
            dtype=head.weight.dtype,
        )
        grown.weight[: head.out_features] = head.weight
        nn.init.normal_(grown.weight[head.out_features :], std=_init_std(model))
        if head.bias is not None:
            grown.bias[: head.out_features] = head.bias
            grown.bias[head.out_features :] = 0
        model.lm_head = grown
    model.config = model.config.replace(vocab_size=size)
    return model


@torch.no_grad()
def init_token_rows(model: T2TModel, token_ids: Sequence[int]) -> T2TModel:
    """Make sure the model has rows for `token_ids` and start those rows from scratch: a token added to
    the tokenizer may land in the padding rows of a model whose vocabulary was rounded up (those rows
    were never an input), or past the end (the embedding grows)."""
    if not token_ids:
        return model
    grow_embeddings(model, max(token_ids) + 1 - model.embed.num_embeddings)
    index = torch.tensor(list(token_ids), device=model.embed.weight.device)
    std = _init_std(model)
    model.embed.weight[index] = torch.randn(len(index), model.embed.embedding_dim, device=index.device) * std
    head = getattr(model, "lm_head", None)
    if isinstance(head, nn.Linear):
        head.weight[index] = torch.randn(len(index), head.in_features, device=index.device) * std
    return model
