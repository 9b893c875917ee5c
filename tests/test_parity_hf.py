"""Numerical parity with Hugging Face transformers on tiny random models, padded batches included."""

import json

import pytest
import torch

import t2t
from t2t.model.positions import relative_position_bucket

from hf_reference import (
    REFERENCES,
    UNTIED_T5,
    WITH_LOSS,
    compared_outputs,
    max_gap,
    reference,
    reference_inputs,
)

LOGITS_ATOL = 1e-4
LOSS_ATOL = 1e-5


def load_t2t(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path / "hf")
    return t2t.from_pretrained(tmp_path / "hf")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_forward_parity(name, seed, tmp_path):
    hf_model, kind = reference(name, seed)
    model = load_t2t(hf_model, tmp_path)
    args, real = reference_inputs(name, seed)
    with torch.no_grad():
        expected, got = hf_model(**args), model(**args)
    assert max_gap(*compared_outputs(expected, got), real) <= LOGITS_ATOL
    assert (expected.get("loss") is not None) == (name in WITH_LOSS)
    if name in WITH_LOSS:
        assert abs(float(got.loss) - float(expected.loss)) <= LOSS_ATOL
    if kind == "bert" and getattr(expected, "pooler_output", None) is not None:
        assert torch.allclose(got.pooled_output, expected.pooler_output, atol=LOGITS_ATOL)
    if name == "bert-pretraining":
        assert torch.allclose(got.nsp_logits, expected.seq_relationship_logits, atol=LOGITS_ATOL)


def hf_head_is_tied(hf_model) -> bool:
    return hf_model.lm_head.weight.data_ptr() == hf_model.get_input_embeddings().weight.data_ptr()


@pytest.mark.parametrize("name", sorted(UNTIED_T5))
def test_untied_t5_heads_load_untied(name, tmp_path):
    """transformers 5.x writes tie_word_embeddings=true into every T5 config.json, even for a distinct
    lm_head: t2t must see the distinct tensor and untie (else it would compute logits from `shared`)."""
    hf_model, _ = reference(name)
    assert not hf_head_is_tied(hf_model)
    head, shared = hf_model.lm_head.weight, hf_model.shared.weight
    assert not torch.allclose(head, shared)
    model = load_t2t(hf_model, tmp_path)
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["tie_word_embeddings"] is True
    assert not model.config.tie_embeddings and not model.config.scale_tied_logits
    assert model.lm_head is not None and torch.equal(model.lm_head.weight, head)
    assert torch.equal(model.embed.weight, shared)
    assert model.lm_head.weight.data_ptr() != model.embed.weight.data_ptr()
    # And back: t2t's directory says untied, keeps both tensors, and transformers loads them untied.
    model.save_pretrained(tmp_path / "ours")
    saved = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert saved["tie_word_embeddings"] is False and saved["scale_decoder_outputs"] is False
    reloaded = type(hf_model).from_pretrained(tmp_path / "ours")
    assert not hf_head_is_tied(reloaded) and torch.equal(reloaded.lm_head.weight, head)


def test_flan_t5_hub_config_loads_untied(tmp_path):
    """The config.json of the published v1.1 / Flan-T5 / mT5 checkpoints (written by transformers 4)
    says tie_word_embeddings=false and has no scale_decoder_outputs: no tying, no logit scaling."""
    hf_model, _ = reference("flan-t5")
    hf_model.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    hf_config = json.loads(path.read_text())
    hf_config.pop("scale_decoder_outputs", None)
    path.write_text(json.dumps({**hf_config, "tie_word_embeddings": False}))
    model = t2t.from_pretrained(tmp_path)
    assert not model.config.tie_embeddings and not model.config.scale_tied_logits
    assert model.config.dim_head * model.config.n_heads != model.config.d_model
    args, real = reference_inputs("flan-t5", 0)
    with torch.no_grad():
        assert max_gap(hf_model(**args).logits, model(**args).logits, real) <= LOGITS_ATOL


def test_t5_decoder_inputs_come_from_labels_shifted_right(tmp_path):
    hf_model, _ = reference("t5")
    model = load_t2t(hf_model, tmp_path)
    labels = torch.tensor([[5, 6, 7, -100], [8, 9, -100, -100]])
    assert torch.equal(model.shift_right(labels), hf_model._shift_right(labels))
    assert model.shift_right(labels)[0].tolist() == [0, 5, 6, 7]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_round_trip_t2t_hf_t2t_is_exact(name, tmp_path):
    import transformers

    hf_model, _ = reference(name)
    model = load_t2t(hf_model, tmp_path)
    model.save_pretrained(tmp_path / "ours")
    again = t2t.from_pretrained(tmp_path / "ours")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # transformers loads what t2t saved and computes the same thing as the original.
    reloaded = getattr(transformers, type(hf_model).__name__).from_pretrained(tmp_path / "ours").eval()
    args, real = reference_inputs(name, 0)
    with torch.no_grad():
        x, y = compared_outputs(hf_model(**args), reloaded(**args))
    assert max_gap(x, y, real) <= LOGITS_ATOL


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


def test_gpt2_token_type_ids_use_the_token_embeddings(tmp_path):
    """GPT-2 has no segment table: transformers adds wte(token_type_ids) to the input (GPT's
    delimiter-style inputs use it); t2t must do the same rather than ignore the ids."""
    hf_model, _ = reference("gpt2")
    model = load_t2t(hf_model, tmp_path)
    args, real = reference_inputs("gpt2", 0)
    args["token_type_ids"] = (torch.arange(args["input_ids"].shape[1]) % 3 + 5).expand_as(args["input_ids"])
    with torch.no_grad():
        expected, got = hf_model(**args), model(**args)
        plain = model(**{k: v for k, v in args.items() if k != "token_type_ids"})
    assert max_gap(expected.logits, got.logits, real) <= LOGITS_ATOL
    assert abs(float(got.loss) - float(expected.loss)) <= LOSS_ATOL
    assert max_gap(plain.logits, got.logits, real) > 1e-2  # the ids change the output
