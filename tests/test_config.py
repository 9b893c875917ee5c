import json

import pytest

from t2t import ConfigError, ModelConfig, preset, preset_names


def test_divisibility_error_names_both_fields():
    with pytest.raises(ConfigError, match=r"n_heads=12 is not divisible by n_kv_heads=5"):
        ModelConfig(n_heads=12, n_kv_heads=5, d_model=768)


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"norm='batchnorm' is not one of layernorm, rmsnorm"):
        ModelConfig(norm="batchnorm")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ffn": "geglu"}, r"ffn='geglu' is not one of relu, gelu, gelu_new, silu, gated-gelu, swiglu"),
        ({"position": "alibi"}, r"position='alibi' is not one of"),
        ({"d_model": 30, "n_heads": 4}, r"d_model=30 is not divisible by n_heads=4"),
        ({"position": "rope", "d_model": 20, "n_heads": 4}, r"needs an even head_dim, got 5"),
        (
            {"arch": "decoder", "n_encoder_layers": 2},
            r"arch='decoder' needs n_decoder_layers >= 1 and n_encoder_layers=0",
        ),
        ({"dropout": 1.5}, r"dropout=1.5 is out of range"),
        ({"pad_id": 40000}, r"pad_id=40000 is out of range \[0, vocab_size=32128\)"),
        ({"d_model": "512"}, r"d_model='512' should be an integer"),
        (
            {"tie_embeddings": False, "scale_tied_logits": True},
            r"scale_tied_logits=True needs tie_embeddings=True",
        ),
        (
            {"arch": "encoder", "n_decoder_layers": 0, "decoder_start_id": None, "tie_embeddings": False},
            r"tie_embeddings=False is not supported for arch='encoder'",
        ),
    ],
)
def test_impossible_configs_fail_at_build_time(fields, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**fields)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'n_head' \(did you mean 'n_heads'\?\)"):
        ModelConfig.from_dict({"n_head": 8})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_yaml_and_json_round_trip(tmp_path, suffix):
    cfg = preset("llama-tiny")
    path = tmp_path / f"model{suffix}"
    cfg.save(path)
    if suffix == ".json":
        assert json.loads(path.read_text())["n_kv_heads"] == 2
    assert ModelConfig.load(path) == cfg


def test_load_reports_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("arch: decoder\nnorm: batchnorm\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: norm='batchnorm'"):
        ModelConfig.load(path)


def test_dotted_overrides_parse_values():
    cfg = preset("t5-tiny").with_overrides(["dropout=0.0", "ffn=gated-gelu", "n_kv_heads=2"])
    assert (cfg.dropout, cfg.ffn, cfg.kv_heads) == (0.0, "gated-gelu", 2)
    with pytest.raises(ConfigError, match="did you mean 'dropout'"):
        cfg.with_overrides(["dropuot=0.1"])


def test_presets_cover_every_family():
    names = set(preset_names())
    required = {"t5-small", "t5-base", "t5-v1_1-small", "flan-t5-small", "bert-base", "bert-large", "gpt2"}
    assert required <= names
    assert {"llama-small", "t5-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"} <= names
    assert preset("llama-small").kv_heads < preset("llama-small").n_heads  # grouped-query attention
    with pytest.raises(ConfigError, match="did you mean 't5-small'"):
        preset("t5-smal")
