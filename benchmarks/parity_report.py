"""Print t2t's numerical distance from transformers for every supported family (the closing-note figures).

.venv/bin/python benchmarks/parity_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import t2t

from helpers import padded_batch
from hf_reference import REFERENCES, reference


def main() -> None:
    print(f"{'model':<18} {'seeds':>5} {'max |logits diff|':>18} {'max |loss diff|':>16}")
    for name in sorted(REFERENCES):
        worst_logits = worst_loss = 0.0
        for seed in range(5):
            hf_model, kind = reference(name, seed)
            with tempfile.TemporaryDirectory() as tmp:
                hf_model.save_pretrained(tmp)
                model = t2t.from_pretrained(tmp)
            torch.manual_seed(100 + seed)
            ids, mask = padded_batch(128, batch=4, length=13)
            kwargs = dict(input_ids=ids, attention_mask=mask)
            if kind == "seq2seq":
                targets, target_mask = padded_batch(128, batch=4, length=7)
                kwargs["labels"] = targets.masked_fill(target_mask == 0, -100)
                real = torch.ones_like(target_mask)
            else:
                if kind == "causal":
                    kwargs["labels"] = ids.masked_fill(mask == 0, -100)
                real = mask
            with torch.no_grad():
                a, b = hf_model(**kwargs), model(**kwargs)
            ref = (
                a.logits if getattr(a, "logits", None) is not None else getattr(a, "prediction_logits", None)
            )
            ours = b.logits
            if ref is None:
                ref, ours = a.last_hidden_state, b.last_hidden_state
            diff = ((ref - ours).abs() * real.bool()[..., None]).max().item()
            worst_logits = max(worst_logits, diff)
            if getattr(a, "loss", None) is not None:
                worst_loss = max(worst_loss, abs(a.loss.item() - b.loss.item()))
        print(f"{name:<18} {5:>5} {worst_logits:>18.2e} {worst_loss:>16.2e}")


if __name__ == "__main__":
    main()
