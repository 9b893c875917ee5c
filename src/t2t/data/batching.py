"""Rows of token ids -> padded tensors whose keys are model forward arguments.

A piece is one example's token ids after the objective: `Seq2Seq(inputs, targets)` for an encoder-
decoder, `Causal(ids, labels)` for a decoder (labels -100 where no loss is taken) and
`Masked(ids, token_type_ids, labels, next_sentence_label)` for an encoder. A row is one piece, or
several when packed: then `segment_ids` (1, 2, ... per piece, 0 on padding) keep attention inside a
piece and `position_ids` restart at 0 for each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

IGNORE = -100


class Seq2Seq(NamedTuple):
    inputs: list[int]
    targets: list[int]


class Causal(NamedTuple):
    ids: list[int]
    labels: list[int]


class Masked(NamedTuple):
    ids: list[int]
    token_type_ids: list[int]
    labels: list[int]
    next_sentence_label: int  # -1: no next-sentence task


Piece = Seq2Seq | Causal | Masked
Row = list[Piece]


def pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad rows to the longest one."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


def _segments(lengths: Sequence[int]) -> tuple[list[int], list[int]]:
    """Segment ids (1-based) and positions restarting per piece, for pieces of these lengths."""
    segments = [k + 1 for k, n in enumerate(lengths) for _ in range(n)]
    positions = [p for n in lengths for p in range(n)]
    return segments, positions


def _add_packing(batch: dict, rows: Sequence[Row], lengths: Callable[[Piece], int], prefix: str = "") -> None:
    """segment_ids (0 on padding) and positions restarting per piece, under `prefix` + the key names."""
    parts = [_segments([lengths(p) for p in row]) for row in rows]
    batch[f"{prefix}segment_ids"] = pad([s for s, _ in parts], 0)
    batch[f"{prefix}position_ids"] = pad([q for _, q in parts], 0)


def shift_right(targets: Sequence[int], start_id: int) -> list[int]:
    """Teacher forcing: the decoder reads the start token, then the targets but the last."""
    return [start_id, *targets[:-1]]


def collate_seq2seq(
    rows: Sequence[Row], *, pad_id: int, decoder_start_id: int, packed: bool
) -> dict[str, torch.Tensor]:
    """Encoder-decoder batch: input_ids, attention_mask, labels (-100 on padding), decoder_input_ids
    (each piece's targets shifted right), decoder_attention_mask; + segment/position ids when packed."""
    inputs = [[t for p in row for t in p.inputs] for row in rows]
    targets = [[t for p in row for t in p.targets] for row in rows]
    shifted = [[t for p in row for t in shift_right(p.targets, decoder_start_id)] for row in rows]
    batch = {
        "input_ids": pad(inputs, pad_id),
        "attention_mask": pad([[1] * len(r) for r in inputs], 0),
        "labels": pad(targets, IGNORE),
        "decoder_input_ids": pad(shifted, pad_id),
        "decoder_attention_mask": pad([[1] * len(r) for r in targets], 0),
    }
    if packed:
        _add_packing(batch, rows, lambda p: len(p.inputs))
        _add_packing(batch, rows, lambda p: len(p.targets), "decoder_")
    return batch


def collate_causal(rows: Sequence[Row], *, pad_id: int, packed: bool) -> dict[str, torch.Tensor]:
    """Decoder batch: input_ids, attention_mask, labels (the model shifts them; -100 on padding and,
    when packed, on each piece's first token, which would otherwise be predicted from the piece before)."""
    ids = [[t for p in row for t in p.ids] for row in rows]
    labels = []
    for row in rows:
        out: list[int] = []
        for k, piece in enumerate(row):
            out += [IGNORE, *piece.labels[1:]] if packed and k > 0 else list(piece.labels)
        labels.append(out)
    batch = {
        "input_ids": pad(ids, pad_id),
        "attention_mask": pad([[1] * len(r) for r in ids], 0),
        "labels": pad(labels, IGNORE),
    }
    if packed:
        _add_packing(batch, rows, lambda p: len(p.ids))
    return batch


def collate_masked(rows: Sequence[Row], *, pad_id: int, packed: bool) -> dict[str, torch.Tensor]:
    """Encoder batch: input_ids, attention_mask, token_type_ids, labels, next_sentence_label (when the
    pieces have one); + segment/position ids when packed."""
    ids = [[t for p in row for t in p.ids] for row in rows]
    batch = {
        "input_ids": pad(ids, pad_id),
        "attention_mask": pad([[1] * len(r) for r in ids], 0),
        "token_type_ids": pad([[t for p in row for t in p.token_type_ids] for row in rows], 0),
        "labels": pad([[t for p in row for t in p.labels] for row in rows], IGNORE),
    }
    if not packed and rows and rows[0][0].next_sentence_label >= 0:
        batch["next_sentence_label"] = torch.tensor([row[0].next_sentence_label for row in rows])
    if packed:
        _add_packing(batch, rows, lambda p: len(p.ids))
    return batch


def piece_lengths(piece: Piece) -> tuple[int, int]:
    """(input side, target side) lengths that count against a packed row's limits."""
    if isinstance(piece, Seq2Seq):
        return len(piece.inputs), len(piece.targets)
    return len(piece.ids), 0
