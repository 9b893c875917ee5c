"""Features (int lists) -> a padded batch of tensors whose keys are the head's forward arguments.

Sequences are right-padded (GPT's head reads the extract token at the last real position) and the
attention mask marks the real tokens. A feature whose input_ids is a list of sequences (multiple choice,
GPT similarity) becomes [batch, sequences, length]; token labels are padded with -100.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from t2t.model.loss import IGNORE_INDEX

_SEQUENCE_KEYS = {"input_ids", "token_type_ids"}


def _rows(value: list) -> list[list[int]]:
    return value if value and isinstance(value[0], list) else [value]


def collate(features: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    grouped = isinstance(features[0]["input_ids"][0], list)
    length = max(len(row) for f in features for row in _rows(f["input_ids"]))
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if key in _SEQUENCE_KEYS:
            pad = pad_id if key == "input_ids" else 0
            rows = [[[*r, *[pad] * (length - len(r))] for r in _rows(v)] for v in values]
            tensor = torch.tensor(rows)
            batch[key] = tensor if grouped else tensor[:, 0]
        elif isinstance(values[0], list):  # token labels
            batch[key] = torch.tensor([[*v, *[IGNORE_INDEX] * (length - len(v))] for v in values])
        else:
            batch[key] = torch.tensor(values)
    lengths = torch.tensor([[len(r) for r in _rows(f["input_ids"])] for f in features])
    mask = (torch.arange(length) < lengths[..., None]).long()
    batch["attention_mask"] = mask if grouped else mask[:, 0]
    return batch
