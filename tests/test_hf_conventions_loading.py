"""Checkpoints as transformers users know them: from_pretrained loads on the meta device straight into the
requested dtype (in about the weights' own memory, with the same numbers as the old build-then-copy
path), sharded safetensors with transformers' index, and generation_config.json as the model's
generation defaults."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import t2t
from t2t.errors import CheckpointError, ConfigError
from t2t.hub import from_pretrained
from t2t.interop.hf import convert_from_hf, read_hf_config, read_state_dict
from t2t.model.build import build_model

from hf_reference import REFERENCES, UNTIED_T5, compared_outputs, max_gap, reference, reference_inputs

LOGITS_ATOL = 1e-4  # against transformers, as tests/test_parity_hf.py


def old_path(directory: Path, dtype: torch.dtype | None = None) -> t2t.T2TModel:
    """How from_pretrained loaded before: a fp32 model built and initialised, then the converted weights
    copied in, then cast."""
    cfg, state, _ = convert_from_hf(read_hf_config(directory), dict(read_state_dict(directory)))
    model = build_model(cfg)
    model.load_state_dict(state, strict=False)
    model.eval()
    return model.to(dtype) if dtype is not None else model.float()


def assert_same_model(a: t2t.T2TModel, b: t2t.T2TModel) -> None:
    """Equal weights (those the checkpoint holds: missing heads start random) and buffers, dtypes too."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key in getattr(a, "missing_weights", []):
            assert sa[key].dtype == sb[key].dtype and sa[key].shape == sb[key].shape, key
            continue
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key
    buffers_a, buffers_b = dict(a.named_buffers()), dict(b.named_buffers())
    assert buffers_a.keys() == buffers_b.keys()
    for key in buffers_a:
        assert buffers_a[key].dtype == buffers_b[key].dtype and torch.equal(buffers_a[key], buffers_b[key]), (
            key
        )


def assert_materialised(model: t2t.T2TModel) -> None:
    """Nothing left on the meta device, every parameter its own memory, trainable, a tied head shared."""
    tensors = [*model.parameters(), *model.buffers()]
    assert not any(t.is_meta for t in tensors)
    storages = [p.untyped_storage().data_ptr() for p in model.parameters()]
    assert len(storages) == len(set(storages))
    assert all(p.requires_grad for p in model.parameters())
    if model.config.tie_embeddings:
        assert getattr(model, "lm_head", None) is None  # the LM head is the embedding itself


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_meta_load_equals_old_path_and_transformers(name, tmp_path):
    hf_model, _ = reference(name)
    hf_model.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    assert_materialised(model)
    assert_same_model(model, old_path(tmp_path))
    args, real = reference_inputs(name, 0)
    with torch.no_grad():
        expected, got, old = hf_model(**args), model(**args), old_path(tmp_path)(**args)
        assert torch.equal(compared_outputs(expected, got)[1], compared_outputs(expected, old)[1])
    assert max_gap(*compared_outputs(expected, got), real) <= LOGITS_ATOL
    if name in UNTIED_T5:
        assert (
            model.lm_head.weight.untyped_storage().data_ptr()
            != model.embed.weight.untyped_storage().data_ptr()
        )


@pytest.mark.parametrize("name", ["t5", "llama-gqa", "gpt2", "bert-mlm"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dtype_load_equals_old_cast(name, dtype, tmp_path):
    """Straight into bf16 / fp16: the same weights and buffers (Llama's rotary frequencies) as loading in
    fp32 and casting, as before."""
    hf_model, _ = reference(name)
    hf_model.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path, dtype=dtype)
    assert model.dtype == dtype
    assert_materialised(model)
    assert_same_model(model, old_path(tmp_path, dtype))


def test_dtype_names_and_auto(tmp_path):
    hf_model, _ = reference("llama-gqa")
    hf_model.to(torch.bfloat16).save_pretrained(tmp_path)
    for name, dtype in [
        ("bfloat16", torch.bfloat16),
        ("bf16", torch.bfloat16),
        ("torch.float16", torch.float16),
    ]:
        assert from_pretrained(tmp_path, dtype=name).dtype == dtype
    assert from_pretrained(tmp_path).dtype == torch.float32  # fp32 unless asked, as before
    assert from_pretrained(tmp_path, dtype="auto").dtype == torch.bfloat16  # as stored
    with pytest.raises(ConfigError, match="dtype='int8' is not one of float32, bfloat16, float16"):
        from_pretrained(tmp_path, dtype="int8")
    with pytest.raises(ConfigError, match="not a floating-point dtype"):
        from_pretrained(tmp_path, dtype=torch.int64)


def test_heads_missing_from_the_checkpoint_are_initialised(tmp_path):
    """A BertModel checkpoint has no MLM / NSP heads: they are allocated and initialised as build_model
    does (N(0, init_std) weights, zero biases), the rest loaded."""
    hf_model, _ = reference("bert-model")
    hf_model.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    assert_materialised(model)
    assert "nsp.weight" in model.missing_weights
    nsp = model.nsp.weight.detach()
    assert bool(torch.isfinite(nsp).all()) and 0.005 < float(nsp.std()) < 0.05
    assert float(model.nsp.bias.detach().abs().max()) == 0.0
    assert torch.equal(model.embed.weight, hf_model.embeddings.word_embeddings.weight)


def test_checks_still_refuse_bad_checkpoints(tmp_path):
    """The memory refusal, the shape mismatch naming the config field, and the non-finite check."""
    hf_model, _ = reference("gpt2")
    hf_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_inner": 96}))
    with pytest.raises(CheckpointError, match="says n_inner=96 but the weights were made with n_inner=128"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "vocab_size": 2_000_000_000}))
    with pytest.raises(ConfigError, match=r"needs about .* of memory"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    state = {k: v.clone() for k, v in hf_model.state_dict().items()}
    state["transformer.h.1.mlp.c_fc.weight"][3, 5] = float("nan")
    hf_model.save_pretrained(tmp_path, state_dict=state)
    with pytest.raises(CheckpointError, match=r"weight 'decoder.layers.1.ffn.up.weight' holds NaN values"):
        from_pretrained(tmp_path)
    assert not bool(
        torch.isfinite(from_pretrained(tmp_path, check_finite=False).decoder.layers[1].ffn.up.weight).all()
    )


# ---- memory -------------------------------------------------------------------------------------------
MEASURE = textwrap.dedent(
    """
    import json, sys

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    import torch, t2t  # imported first: their memory is not the loading's
    base = status("VmRSS")
    model = t2t.from_pretrained(sys.argv[1])
    print(json.dumps({"peak": status("VmHWM") - base, "parameters": model.num_parameters()}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_loading_takes_about_the_weights_own_memory(tmp_path):
    """A 200 MB Llama-shaped checkpoint in transformers' layout (q/k/v and gate/up fused on the way in)
    loads, in a fresh process, with a peak RSS growth below 1.5x the weights' size (measured: ~1.1x; the
    old build-initialise-copy path took ~2.7x)."""
    cfg = t2t.preset(
        "llama-small", vocab_size=16000, d_model=768, n_heads=12, n_kv_heads=4, d_ff=2048, n_decoder_layers=6
    )
    torch.manual_seed(0)
    build_model(cfg).save_pretrained(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    assert size > 150e6
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["peak"] < 1.5 * size, (
        f"peak {measured['peak'] / 1e6:.0f} MB for {size / 1e6:.0f} MB of weights"
    )


# ---- shards -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t5-v1_1", "llama-gqa"])
def test_sharded_save_is_laid_out_as_transformers_and_loads_both_ways(name, tmp_path):
    import transformers

    hf_model, _ = reference(name)
    hf_model.save_pretrained(tmp_path / "hf", max_shard_size="40KB")
    model = from_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "ours", max_shard_size="40KB")
    theirs = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    ours_text = (tmp_path / "ours" / "model.safetensors.index.json").read_text()
    ours = json.loads(ours_text)
    assert ours.keys() == {"metadata", "weight_map"}
    assert ours["metadata"] == theirs["metadata"]  # {"total_parameters": ..., "total_size": ...}
    assert ours["weight_map"].keys() == theirs["weight_map"].keys()
    assert ours_text == json.dumps(ours, indent=2, sort_keys=True) + "\n"
    shards = sorted(set(ours["weight_map"].values()))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert sorted(p.name for p in (tmp_path / "ours").glob("*.safetensors")) == shards
    reloaded = getattr(transformers, type(hf_model).__name__).from_pretrained(tmp_path / "ours").eval()
    args, real = reference_inputs(name, 0)
    with torch.no_grad():
        assert max_gap(*compared_outputs(hf_model(**args), reloaded(**args)), real) <= LOGITS_ATOL
    assert_same_model(from_pretrained(tmp_path / "ours"), model)


def test_sharded_t2t_format_and_resaving_unsharded(tmp_path):
    model = build_model(t2t.preset("t5-tiny", position="rope", scale_attention=True)).eval()
    model.save_pretrained(tmp_path, max_shard_size=20_000)
    assert (tmp_path / "t2t_config.json").is_file() and (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    assert_same_model(from_pretrained(tmp_path), model)
    model.save_pretrained(tmp_path)  # unsharded over the shards: no index or shard may stay behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "t2t_config.json"]
    assert_same_model(from_pretrained(tmp_path), model)


def test_shard_size_forms(tmp_path):
    model = build_model(t2t.preset("gpt2-tiny"))
    model.save_pretrained(tmp_path / "a", max_shard_size="0.02MB")
    model.save_pretrained(tmp_path / "b", max_shard_size=20_000)
    index = [json.loads((tmp_path / d / "model.safetensors.index.json").read_text()) for d in "ab"]
    assert index[0] == index[1]
    model.save_pretrained(tmp_path / "c", max_shard_size="5GB")  # fits in one file: no index
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["config.json", "model.safetensors"]
    for bad in ("lots", "-5MB", 0, True):
        with pytest.raises(ConfigError, match="max_shard_size"):
            model.save_pretrained(tmp_path / "d", max_shard_size=bad)


# ---- generation_config.json ---------------------------------------------------------------------------
def test_generation_config_json_round_trip_and_transformers_reads_it(tmp_path):
    from transformers import GenerationConfig as HFGenerationConfig

    model = build_model(t2t.preset("t5-tiny", dropout=0.0)).eval()
    model.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "generation_config.json").exists()  # defaults: nothing to write
    model.generation_config.num_beams = 4
    model.generation_config.length_penalty = 0.6
    model.generation_config.max_new_tokens = 7
    model.save_pretrained(tmp_path / "tuned")
    again = from_pretrained(tmp_path / "tuned")
    assert again.generation_config == model.generation_config
    hf = HFGenerationConfig.from_pretrained(tmp_path / "tuned")
    assert (hf.num_beams, hf.length_penalty, hf.max_new_tokens) == (4, 0.6, 7)
    assert (hf.decoder_start_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 1, 0)
    ids = torch.randint(3, 100, (2, 6))
    assert torch.equal(
        again.generate(ids), again.generate(ids, num_beams=4, length_penalty=0.6, max_new_tokens=7)
    )
    model.generation_config.num_beams = 1
    model.generation_config.length_penalty = 1.0
    model.generation_config.max_new_tokens = None
    model.save_pretrained(tmp_path / "tuned")  # back to the defaults: the file goes
    assert not (tmp_path / "tuned" / "generation_config.json").exists()


def test_transformers_generation_config_json_is_the_models_default(tmp_path):
    """A transformers checkpoint's generation_config.json sets generate's defaults, as in transformers,
    and a call overrides them; options t2t does not implement are ignored with a warning."""
    from generation_helpers import hf_and_t2t, hf_generate, left_padded

    hf_model, kind, _ = hf_and_t2t("gpt2", 0, tmp_path / "base")
    hf_model.generation_config.update(max_new_tokens=6, repetition_penalty=1.3, no_repeat_ngram_size=2)
    hf_model.save_pretrained(tmp_path / "tuned")
    model = from_pretrained(tmp_path / "tuned")
    assert model.generation_config.max_new_tokens == 6 and model.generation_config.repetition_penalty == 1.3
    torch.manual_seed(0)
    ids, mask = left_padded(128, batch=3, length=7, pad_id=0)
    expected = hf_generate(hf_model, kind, ids, attention_mask=mask, pad_id=0, eos_token_id=None)
    got = model.generate(ids, mask, eos_token_id=[])
    assert torch.equal(got, expected)
    assert model.generate(ids, mask, max_new_tokens=2, eos_token_id=[]).shape[1] == ids.shape[1] + 2
    config = json.loads((tmp_path / "tuned" / "generation_config.json").read_text())
    (tmp_path / "tuned" / "generation_config.json").write_text(json.dumps({**config, "typical_p": 0.5}))
    with pytest.warns(UserWarning, match=r"t2t does not implement typical_p=0.5.*ignored"):
        model = from_pretrained(tmp_path / "tuned")
    assert model.generation_config.max_new_tokens == 6
