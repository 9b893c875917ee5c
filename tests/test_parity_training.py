"""Training-mode parity: with dropout off, loss and every gradient match transformers.

Training runs a different attention path than inference (written-out attention instead of SDPA when
the mask needs a gradient or attention dropout is on), so it is checked separately.
"""

import pytest
import torch

import t2t
from t2t.interop.hf import family_for_config
from t2t.interop.rules import t2t_to_hf

from helpers import padded_batch
from hf_reference import reference


@pytest.mark.parametrize("name", ["t5", "t5-v1_1", "gpt2", "llama-gqa", "bert-pretraining"])
def test_loss_and_gradients_match_transformers(name, tmp_path):
    hf_model, kind = reference(name)
    hf_model.save_pretrained(tmp_path)
    model = t2t.from_pretrained(tmp_path)
    hf_model.train()
    model.train()
    ids, mask = padded_batch(128, length=11)
    if kind == "seq2seq":
        targets, target_mask = padded_batch(128, length=6)
        labels = targets.masked_fill(target_mask == 0, -100)
        kwargs = dict(input_ids=ids, attention_mask=mask, labels=labels)
    elif kind == "bert":
        labels = torch.full_like(ids, -100)
        labels[:, 3] = ids[:, 3]
        kwargs = dict(
            input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=torch.tensor([0, 1, 0])
        )
    else:
        kwargs = dict(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
    expected, got = hf_model(**kwargs).loss, model(**kwargs).loss
    expected.backward()
    got.backward()
    assert abs(expected.item() - got.item()) <= 1e-5

    family = family_for_config(model.config)
    ours = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    ours_as_hf = t2t_to_hf(ours, family.rules(model.config), model.config)
    theirs = {k: p.grad for k, p in hf_model.named_parameters() if p.grad is not None}
    assert ours_as_hf.keys() <= theirs.keys()
    for key, grad in ours_as_hf.items():
        assert torch.allclose(grad, theirs[key], atol=1e-5, rtol=1e-4), key
