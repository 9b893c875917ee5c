"""Loading and saving checkpoints: formats, shards, the offline hub path, and clear errors."""

import json

import pytest
import torch

import t2t
from t2t import CheckpointError, build_model, preset

from helpers import padded_batch
from hf_reference import reference


def same_outputs(a, b, ids) -> bool:
    with torch.no_grad():
        return torch.equal(a(ids).logits, b(ids).logits)


def test_sharded_safetensors_and_bin_checkpoints_load(tmp_path):
    hf_model, _ = reference("gpt2")
    hf_model.save_pretrained(tmp_path / "shards", max_shard_size="40KB")
    assert (tmp_path / "shards" / "model.safetensors.index.json").is_file()
    torch.save(hf_model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "bin").mkdir()
    (tmp_path / "pytorch_model.bin").rename(tmp_path / "bin" / "pytorch_model.bin")
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "shards" / "config.json").read_text())
    ids, _ = padded_batch(128)
    assert same_outputs(t2t.from_pretrained(tmp_path / "shards"), t2t.from_pretrained(tmp_path / "bin"), ids)


@pytest.mark.parametrize("name", ["t5-v1_1", "llama-gqa"])
def test_sharded_pytorch_bin_checkpoint_loads(name, tmp_path):
    """pytorch_model-0000k-of-0000n.bin + pytorch_model.bin.index.json, as transformers 4 wrote them
    (transformers 5 writes only safetensors, so huggingface_hub writes the .bin shards here)."""
    from huggingface_hub import save_torch_state_dict

    hf_model, _ = reference(name)
    hf_model.save_pretrained(tmp_path / "safe")
    state = dict(hf_model.state_dict())
    (tmp_path / "bin").mkdir()
    save_torch_state_dict(state, tmp_path / "bin", safe_serialization=False, max_shard_size="20KB")
    index = json.loads((tmp_path / "bin" / "pytorch_model.bin.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 2 and all(name.endswith(".bin") for name in shards)
    assert not list((tmp_path / "bin").glob("*.safetensors"))
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "safe" / "config.json").read_text())
    from_bin, from_safe = t2t.from_pretrained(tmp_path / "bin"), t2t.from_pretrained(tmp_path / "safe")
    a, b = from_bin.state_dict(), from_safe.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if name == "t5-v1_1":
        assert torch.equal(from_bin.lm_head.weight, hf_model.lm_head.weight)  # the untied head survives


def test_headless_bert_model_loads_and_reports_missing_heads(tmp_path):
    hf_model, _ = reference("bert-model")
    hf_model.save_pretrained(tmp_path)
    model = t2t.from_pretrained(tmp_path)
    assert "nsp.weight" in model.missing_weights and "mlm.dense.weight" in model.missing_weights
    assert "pooler.dense.weight" not in model.missing_weights


def test_architecture_without_hf_equivalent_saves_in_t2t_format(tmp_path):
    cfg = preset("t5-tiny", position="rope", scale_attention=True)
    model = build_model(cfg).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "t2t_config.json").is_file() and not (tmp_path / "config.json").exists()
    again = t2t.from_pretrained(tmp_path)
    assert again.config == cfg
    ids, _ = padded_batch(128)
    with torch.no_grad():
        assert torch.equal(model(ids, labels=ids).logits, again(ids, labels=ids).logits)
    with pytest.raises(CheckpointError, match="no Hugging Face transformers equivalent"):
        model.save_pretrained(tmp_path / "hf", format="hf")


def test_hf_families_save_in_hf_format(tmp_path):
    model = build_model(preset("llama-tiny"))
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "llama"


def test_offline_hub_name_gives_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"cannot fetch 'google/flan-t5-small'.*pass a local directory"):
        t2t.from_pretrained("google/flan-t5-small")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "neither t2t_config.json nor config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (
            lambda d: (d / "config.json").write_text('{"model_type": "bart"}'),
            "model_type='bart' is not supported",
        ),
        (
            lambda d: (d / "config.json").write_text(
                '{"model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_layer": 1, "vocab_size": 64}'
            ),
            "no model.safetensors",
        ),
    ],
)
def test_broken_checkpoints_fail_clearly(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        t2t.from_pretrained(tmp_path)


def test_checkpoint_missing_a_weight_names_it(tmp_path):
    hf_model, _ = reference("llama-gqa")
    state = {k: v for k, v in hf_model.state_dict().items() if "layers.1.mlp.up_proj" not in k}
    hf_model.save_pretrained(tmp_path, state_dict=state)
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.up_proj\.weight is missing"):
        t2t.from_pretrained(tmp_path)


def test_untied_bert_mlm_decoder_is_refused_not_silently_tied(tmp_path):
    """t2t's BERT projects with the embedding matrix; a checkpoint with its own MLM decoder weights
    (tie_word_embeddings=false) would otherwise load and compute different logits without a word."""
    import transformers

    from hf_reference import BERT_FIELDS

    torch.manual_seed(0)
    config = transformers.BertConfig(**BERT_FIELDS, tie_word_embeddings=False)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"cls\.predictions\.decoder\.weight differs from"):
        t2t.from_pretrained(tmp_path)


def test_unsupported_hf_options_are_refused(tmp_path):
    hf_model, _ = reference("llama-gqa")
    hf_model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="rope_type='llama3'"):
        t2t.from_pretrained(tmp_path)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    build_model(preset("t5-tiny")).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_from_pretrained_dtype(tmp_path):
    build_model(preset("gpt2-tiny")).save_pretrained(tmp_path)
    assert t2t.from_pretrained(tmp_path, dtype=torch.bfloat16).dtype == torch.bfloat16
