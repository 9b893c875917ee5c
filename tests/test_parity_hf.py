"""Numerical parity with Hugging Face transformers on tiny random models, padded batches included."""

import pytest
import torch

import t2t
from t2t.model.positions import relative_position_bucket

from helpers import padded_batch
from hf_reference import REFERENCES, reference

LOGITS_ATOL = 1e-4
LOSS_ATOL = 1e-5


def inputs(kind: str, seed: int):
    torch.manual_seed(100 + seed)
    ids, mask = padded_batch(128, batch=3, length=11)
    labels = ids.masked_fill(mask == 0, -100)
    if kind == "seq2seq":
        targets, target_mask = padded_batch(128, batch=3, length=6)
        labels = targets.masked_fill(target_mask == 0, -100)
        hf = dict(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=target_mask)
        return hf, dict(hf), mask.new_ones(3, 6)
    if kind == "bert":
        types = (torch.arange(11) >= 5).long().expand(3, 11)
        hf = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return hf, dict(hf), mask
    hf = dict(input_ids=ids, attention_mask=mask, labels=labels)
    return hf, dict(hf), mask


def main_logits(out):
    for name in ("logits", "prediction_logits", "last_hidden_state"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    raise AssertionError("no logits")


def load_t2t(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path / "hf")
    return t2t.from_pretrained(tmp_path / "hf")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_forward_parity(name, seed, tmp_path):
    hf_model, kind = reference(name, seed)
    model = load_t2t(hf_model, tmp_path)
    hf_in, t2t_in, real = inputs(kind, seed)
    with torch.no_grad():
        expected, got = hf_model(**hf_in), model(**t2t_in)
    ref = main_logits(expected)
    ours = got.last_hidden_state if ref is getattr(expected, "last_hidden_state", None) else got.logits
    keep = real.bool()[..., None]  # outputs at padding positions are unspecified in both
    assert ours.shape == ref.shape
    assert float(((ours - ref).abs() * keep).max()) <= LOGITS_ATOL
    if getattr(expected, "loss", None) is not None:
        assert abs(float(got.loss) - float(expected.loss)) <= LOSS_ATOL
    if kind == "bert" and getattr(expected, "pooler_output", None) is not None:
        assert torch.allclose(got.pooled_output, expected.pooler_output, atol=LOGITS_ATOL)
    if name == "bert-pretraining":
        assert torch.allclose(got.nsp_logits, expected.seq_relationship_logits, atol=LOGITS_ATOL)


def test_bert_pretraining_loss_parity(tmp_path):
    hf_model, _ = reference("bert-pretraining")
    model = load_t2t(hf_model, tmp_path)
    ids, mask = padded_batch(128, length=11)
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    labels[:, 5] = ids[:, 5]
    nsp = torch.tensor([0, 1, 1])
    with torch.no_grad():
        a = hf_model(input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=nsp)
        b = model(ids, attention_mask=mask, labels=labels, next_sentence_label=nsp)
    assert abs(float(a.loss) - float(b.loss)) <= LOSS_ATOL


def test_t5_decoder_inputs_come_from_labels_shifted_right(tmp_path):
    hf_model, _ = reference("t5")
    model = load_t2t(hf_model, tmp_path)
    labels = torch.tensor([[5, 6, 7, -100], [8, 9, -100, -100]])
    assert torch.equal(model.shift_right(labels), hf_model._shift_right(labels))
    assert model.shift_right(labels)[0].tolist() == [0, 5, 6, 7]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_round_trip_t2t_hf_t2t_is_exact(name, tmp_path):
    import transformers

    hf_model, kind = reference(name)
    model = load_t2t(hf_model, tmp_path)
    model.save_pretrained(tmp_path / "ours")
    again = t2t.from_pretrained(tmp_path / "ours")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # transformers loads what t2t saved and computes the same thing as the original.
    reloaded = getattr(transformers, type(hf_model).__name__).from_pretrained(tmp_path / "ours").eval()
    hf_in, _, real = inputs(kind, 0)
    with torch.no_grad():
        x, y = main_logits(hf_model(**hf_in)), main_logits(reloaded(**hf_in))
    assert float(((x - y).abs() * real.bool()[..., None]).max()) <= LOGITS_ATOL


def test_relative_position_buckets_match_transformers():
    from transformers.models.t5.modeling_t5 import T5Attention

    distance = torch.arange(-300, 301)[None, :]
    for bidirectional in (True, False):
        for buckets, max_distance in ((32, 128), (8, 20), (64, 256)):
            ours = relative_position_bucket(
                distance, bidirectional=bidirectional, num_buckets=buckets, max_distance=max_distance
            )
            theirs = T5Attention._relative_position_bucket(
                distance, bidirectional=bidirectional, num_buckets=buckets, max_distance=max_distance
            )
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    ("preset_name", "hf_class", "hf_config"),
    [
        ("t5-small", "T5ForConditionalGeneration", dict(model_type="t5")),
        ("gpt2", "GPT2LMHeadModel", {}),
        ("bert-base", "BertForPreTraining", {}),
        ("llama-small", "LlamaForCausalLM", {}),
    ],
)
def test_preset_parameter_counts_equal_transformers(preset_name, hf_class, hf_config):
    import transformers

    from t2t.interop.hf import family_for_config
    from t2t.model.build import model_class

    cfg = t2t.preset(preset_name)
    with torch.device("meta"):
        ours = model_class(cfg)(cfg)
    family = family_for_config(cfg)
    assert family is not None
    config_cls = getattr(transformers, hf_class).config_class
    fields = {k: v for k, v in family.config_to_hf(cfg).items() if k not in ("architectures", "model_type")}
    with torch.device("meta"):
        theirs = getattr(transformers, hf_class)(config_cls(**fields))
    assert ours.num_parameters() == theirs.num_parameters()
