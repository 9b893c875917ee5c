"""Helpers shared by the tests (import as `from helpers import ...`)."""

from __future__ import annotations

import torch


def padded_batch(
    vocab: int, batch: int = 3, length: int = 9, low: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids with right padding of different lengths per row (row 0 is full)."""
    ids = torch.randint(low, vocab, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, max(1, length - 3 * row) :] = 0
    return ids, mask


def one_line_error(capsys, argv: list[str]) -> str:  # type: ignore[no-untyped-def]
    """Run the CLI in-process; it must exit 2 with exactly one stderr line; return that line."""
    from t2t.cli.main import main

    try:
        code = main(argv)
    except SystemExit as done:  # argparse's own errors
        code = done.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"t2t {argv[0]}: error: "), lines[0]
    return lines[0]
