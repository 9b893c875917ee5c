"""Print t2t's numerical distance from transformers for every reference model (the closing-note figures).

One row per tiny random reference of tests/hf_reference.py (T5, T5 v1.1, Flan-T5, mT5, BERT's three
classes, GPT-2, Llama): over 5 seeds (weights and inputs), the worst fp32 max |logits difference| at the
real positions of a padded batch and the worst |loss difference|, as a markdown table. Every model that
has a loss gets labels (BERT: masked-LM labels with -100s, plus next-sentence labels for
BertForPreTraining); BertModel has no head, so it compares its last hidden state and has no loss.

    timeout 600 .venv/bin/python benchmarks/parity_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import t2t

from hf_reference import REFERENCES, WITH_LOSS, compared_outputs, max_gap, reference, reference_inputs

SEEDS = 5
BATCH, LENGTH, TARGET_LENGTH = 4, 13, 7


def worst_gaps(name: str) -> tuple[float, float | None]:
    """(worst logits gap, worst loss gap or None) over the seeds."""
    logits_gap, loss_gap = 0.0, None
    for seed in range(SEEDS):
        hf_model, _ = reference(name, seed)
        with tempfile.TemporaryDirectory() as tmp:
            hf_model.save_pretrained(tmp)
            model = t2t.from_pretrained(tmp)
        args, real = reference_inputs(name, seed, BATCH, LENGTH, TARGET_LENGTH)
        with torch.no_grad():
            expected, got = hf_model(**args), model(**args)
        logits_gap = max(logits_gap, max_gap(*compared_outputs(expected, got), real))
        if name in WITH_LOSS:
            loss_gap = max(loss_gap or 0.0, abs(float(expected.loss) - float(got.loss)))
    return logits_gap, loss_gap


def main() -> None:
    import transformers

    transformers.logging.set_verbosity_error()  # the table only: no progress bars or load notes
    transformers.logging.disable_progress_bar()
    print(f"fp32, {SEEDS} seeds, batch {BATCH} x {LENGTH} right-padded (targets {TARGET_LENGTH})\n")
    print("| reference | transformers class | max abs logits diff | max abs loss diff |")
    print("| --- | --- | --- | --- |")
    for name in REFERENCES:
        cls = type(reference(name)[0]).__name__
        logits_gap, loss_gap = worst_gaps(name)
        loss = "n/a" if loss_gap is None else f"{loss_gap:.2e}"
        print(f"| {name} | {cls} | {logits_gap:.2e} | {loss} |", flush=True)


if __name__ == "__main__":
    main()
