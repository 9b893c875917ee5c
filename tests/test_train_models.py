"""Where the model comes from: a ModelConfig file (YAML or JSON) or a checkpoint in t2t or HF names."""

from __future__ import annotations

import json

import pytest
import torch

import t2t
from t2t.errors import ConfigError
from t2t.hub import save_pretrained
from t2t.tokenizer import load_tokenizer
from t2t.train import Trainer
from test_train_support import text_config, train_tokenizer, write_text_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_text_data(root)
    return root, train_tokenizer(root)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_model_from_a_config_file(data, tmp_path, suffix):
    root, tok_dir = data
    shape = t2t.preset("t5-tiny").replace(d_model=48, n_heads=3, d_ff=96, dropout=0.0)
    path = tmp_path / f"model{suffix}"
    shape.save(path)
    if suffix == ".json":
        assert json.loads(path.read_text())["d_model"] == 48
    cfg = text_config(
        root, tok_dir, run_dir=str(tmp_path / "run"), model={"preset": None, "config": str(path)}
    )
    trainer = Trainer(cfg)
    tok = load_tokenizer(tok_dir)
    built = trainer.model.config
    # the file's shape, sized for the tokenizer (vocabulary rows, pad / EOS / decoder start ids)
    assert (built.d_model, built.n_heads, built.d_ff) == (48, 3, 96)
    assert built.vocab_size == tok.model_vocab_size != shape.vocab_size
    assert (built.pad_id, built.eos_id, built.decoder_start_id) == (tok.pad_id, tok.eos_id, tok.pad_id)
    result = trainer.fit()
    assert result.step == 4 and result.losses[-1] < result.losses[0]
    assert t2t.from_pretrained(result.last_checkpoint).config.d_model == 48


def test_missing_model_config_file_names_the_file(data, tmp_path):
    root, tok_dir = data
    cfg = text_config(root, tok_dir, model={"preset": None, "config": str(tmp_path / "nope.yaml")})
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        Trainer(cfg)


@pytest.mark.parametrize("weight_format", ["t2t", "hf"])
def test_model_from_a_checkpoint_directory(data, tmp_path, weight_format):
    """A saved model directory (weights in t2t or HF names, tokenizer beside them) is trained as it is:
    same weights, its own tokenizer, and model.overrides (here dropout) rebuilt around the weights."""
    root, tok_dir = data
    tok = load_tokenizer(tok_dir)
    torch.manual_seed(3)
    shape = t2t.preset("t5-tiny").replace(
        vocab_size=tok.model_vocab_size, pad_id=tok.pad_id, eos_id=tok.eos_id, decoder_start_id=tok.pad_id
    )
    source = t2t.build_model(shape)
    directory = tmp_path / f"ckpt-{weight_format}"
    save_pretrained(source, directory, format=weight_format)
    tok.save_pretrained(directory)
    names = {p.name for p in directory.iterdir()}
    assert ("t2t_config.json" in names) == (weight_format == "t2t")
    model_section = {
        "preset": None,
        "tokenizer": None,
        "checkpoint": str(directory),
        "overrides": {"dropout": 0.2},
    }
    cfg = text_config(root, tok_dir, run_dir=str(tmp_path / "run"), model=model_section)
    trainer = Trainer(cfg)
    assert trainer.model.config.dropout == 0.2 and trainer.model.config.d_model == shape.d_model
    assert trainer.tokenizer.vocab_size == tok.vocab_size
    for key, value in source.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[key], value), key
    result = trainer.fit()
    assert result.step == 4 and all(torch.isfinite(torch.tensor(result.losses)))
    trained = t2t.from_pretrained(result.last_checkpoint).state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in source.state_dict().items())
