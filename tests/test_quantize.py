"""Reduced-precision inference: int8 weights (dynamic and weight-only) and bf16, on every entry point.

Quality is measured on a small model trained here (a T5 that reverses token sequences): greedy tokens
of int8 and bf16 agree with fp32's on at least 95% of positions and the task accuracy stays within
6 points. A quantised model saves and loads without being quantised again.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import t2t
from generation_helpers import save_tiny_pipeline, spread_weights
from t2t.cli.main import main
from t2t.errors import CheckpointError, ConfigError, T2TError
from t2t.generation import load_pipeline
from t2t.hub import QUANTIZATION, from_pretrained
from t2t.model import quantize as q
from t2t.model.quantize import (
    QuantizedEmbedding,
    QuantizedLinear,
    as_mode,
    quantization_of,
    quantize_model,
    quantized_layers,
)

MODES = ("int8-dynamic", "int8-weight-only")
VOCAB, LENGTH = 48, 8  # the reversal task: token ids 3..47, sequences of 4 to 8 tokens


# ---- a small trained model --------------------------------------------------------------------------
def _reversal(generator: torch.Generator, n: int) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    """n random sequences (ids 3..VOCAB-1, then eos 1) and their reversals as labels."""
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=generator)
    tokens = torch.randint(3, VOCAB, (n, LENGTH), generator=generator)
    ids = torch.zeros(n, LENGTH + 1, dtype=torch.long)
    labels = torch.full((n, LENGTH + 1), -100)
    targets = []
    for i in range(n):
        seq = tokens[i, : lengths[i]].tolist()
        ids[i, : len(seq) + 1] = torch.tensor([*seq, 1])
        labels[i, : len(seq) + 1] = torch.tensor([*seq[::-1], 1])
        targets.append([*seq[::-1], 1])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}, targets


@pytest.fixture(scope="module")
def trained() -> t2t.T2TModel:
    """A 2+2-layer T5 (d_model 64) trained for 450 steps to reverse sequences (~75-95% exact)."""
    torch.manual_seed(0)
    cfg = t2t.preset("t5-tiny", vocab_size=VOCAB, d_model=64, d_ff=128, head_dim=16, dropout=0.0)
    model = t2t.build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(450):
        batch, _ = _reversal(generator, 32)
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def held_out() -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    return _reversal(torch.Generator().manual_seed(99), 64)


def _accuracy(out: torch.Tensor, targets: list[list[int]]) -> float:
    return sum(out[i, 1 : len(t) + 1].tolist() == t for i, t in enumerate(targets)) / len(targets)


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    width = min(a.shape[1], b.shape[1])
    return float((a[:, :width] == b[:, :width]).float().mean())


def _generate(model: t2t.T2TModel, batch: dict[str, torch.Tensor], **options) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=LENGTH + 1, **options)


@pytest.mark.parametrize("precision", [*MODES, "bfloat16"])
def test_trained_model_agrees_with_fp32(trained, held_out, precision):
    batch, targets = held_out
    reference = _generate(trained, batch)
    base = _accuracy(reference, targets)
    assert base >= 0.6, f"the fixture did not learn the task ({base:.2f})"
    model = copy.deepcopy(trained)
    model = model.to(torch.bfloat16) if precision == "bfloat16" else quantize_model(model, precision)
    out = _generate(model, batch)
    assert _agreement(out, reference) >= 0.95
    assert abs(_accuracy(out, targets) - base) <= 0.06
    beams = _generate(model, batch, num_beams=3)
    assert _agreement(beams, _generate(trained, batch, num_beams=3)) >= 0.95


# ---- layers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("in_features", [64, 24])  # 24: not a multiple of 16, the dequantising path
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_linear_is_the_float_product_within_quantisation_error(mode, in_features, dtype):
    layer = nn.Linear(in_features, 40).to(dtype)
    x = torch.randn(3, 5, in_features, dtype=dtype)
    expected = layer(x).float()
    quantised = QuantizedLinear.from_float(layer, mode)
    with torch.inference_mode():
        got = quantised(x)
    assert got.dtype == dtype and got.shape == expected.shape
    error = (got.float() - expected).norm() / expected.norm()
    assert error < 0.03
    assert quantised.weight.dtype == dtype and quantised.weight.shape == (40, in_features)
    weight = layer.weight.detach().float()
    step = weight.abs().amax(dim=1, keepdim=True) / 127.5  # each row's quantisation step
    assert bool(((quantised.weight.dequantize(torch.float32) - weight).abs() <= step * 0.51).all())


@pytest.mark.parametrize("mode", MODES)
def test_embedding_lookup_and_tied_projection(mode):
    embed = nn.Embedding(50, 32)
    quantised = QuantizedEmbedding.from_float(embed, mode)
    ids = torch.tensor([[1, 7, 49]])
    assert torch.allclose(quantised(ids), embed(ids), atol=float(embed.weight.detach().abs().max()) / 127)
    hidden = torch.randn(2, 32)
    projected = torch.nn.functional.linear(hidden, quantised.weight)  # as T2TModel._vocab_logits does
    expected = hidden @ embed.weight.t()
    assert ((projected - expected).norm() / expected.norm()) < 0.03


def test_modes_and_refusals(tmp_path):
    assert as_mode("int8") == "int8-dynamic" and as_mode("INT8-Weight-Only") == "int8-weight-only"
    assert as_mode(None) is None and as_mode("none") is None
    with pytest.raises(ConfigError, match="int4"):
        as_mode("int4")
    model = quantize_model(t2t.build_model(t2t.preset("t5-tiny")), "int8")
    with pytest.raises(ConfigError, match="already quantised"):
        quantize_model(model, "int8-weight-only")
    with pytest.raises(T2TError, match="inference"):
        torch.mm(model.embed.weight, torch.randn(32, 2))  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="t2t's format"):
        model.save_pretrained(tmp_path / "hf", format="hf")


# ---- every family -----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["t5-tiny", "t5-v1_1-tiny", "gpt2-tiny", "llama-tiny", "bert-tiny"])
@pytest.mark.parametrize("mode", MODES)
def test_every_family(preset, mode):
    torch.manual_seed(0)
    model = t2t.build_model(t2t.preset(preset, dropout=0.0)).eval()
    spread_weights(model, 0, gain=2.0)
    ids = torch.randint(3, 100, (2, 6))
    inputs = {"input_ids": ids}
    if model.config.arch == "encoder-decoder":
        inputs["decoder_input_ids"] = ids
    with torch.inference_mode():
        expected = model(**inputs).logits
    quantize_model(model, mode)
    names = quantized_layers(model)
    assert "embed" in names  # the token embedding, and with it a tied vocabulary projection
    if model.config.arch == "encoder-decoder":
        assert any(".cross_attn.kv" in n for n in names) and any(".cross_attn.q" in n for n in names)
    if getattr(model, "lm_head", None) is not None:
        assert "lm_head" in names
    assert not any(type(m) is nn.Linear for m in model.modules())
    with torch.inference_mode():
        got = model(**inputs).logits
    # random weights spread wide compound the rounding layer after layer; a wiring mistake gives ~0
    cosine = torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0)
    assert cosine > 0.97
    if model.config.arch != "encoder":
        assert model.generate(ids, max_new_tokens=4).shape[0] == 2


# ---- save / load ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_save_and_load_without_quantising_again(trained, held_out, tmp_path, monkeypatch, mode, dtype):
    trained.save_pretrained(tmp_path / "float")
    model = from_pretrained(tmp_path / "float", quantize=mode, dtype=dtype)
    assert quantization_of(model) == mode and model.dtype == getattr(torch, dtype)
    model.save_pretrained(tmp_path / "int8")
    assert json.loads((tmp_path / "int8" / QUANTIZATION).read_text())["mode"] == mode
    assert not (tmp_path / "int8" / "config.json").exists()
    float_size = (tmp_path / "float" / "model.safetensors").stat().st_size
    assert (tmp_path / "int8" / "model.safetensors").stat().st_size < 0.4 * float_size

    def no_requantising(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("quantised again while loading")

    monkeypatch.setattr(q, "_per_row_int8", no_requantising)
    loaded = from_pretrained(tmp_path / "int8", dtype=dtype)
    assert quantization_of(loaded) == mode and loaded.dtype == getattr(torch, dtype)
    saved, again = model.state_dict(), loaded.state_dict()
    assert saved.keys() == again.keys()
    assert all(torch.equal(saved[k], again[k]) for k in saved)
    batch, _ = held_out
    assert torch.equal(_generate(model, batch), _generate(loaded, batch))
    assert quantization_of(from_pretrained(tmp_path / "int8", quantize=mode)) == mode
    other = next(m for m in MODES if m != mode)
    with pytest.raises(CheckpointError, match="float checkpoint"):
        from_pretrained(tmp_path / "int8", quantize=other)
    float_again = t2t.build_model(trained.config)
    float_again.save_pretrained(tmp_path / "int8")  # a float model saved over it: no quantisation file left
    assert not (tmp_path / "int8" / QUANTIZATION).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"mode": "int4", "layers": []}', "not a t2t quantisation file"),
        ('{"mode": "int8", "layers": ["nowhere.q"]}', "nowhere.q"),
        ("not json", "not a t2t quantisation file"),
    ],
)
def test_a_broken_quantisation_file_is_one_line(tmp_path, content, message):
    model = quantize_model(t2t.build_model(t2t.preset("t5-tiny")), "int8")
    model.save_pretrained(tmp_path / "q")
    (tmp_path / "q" / QUANTIZATION).write_text(content)
    with pytest.raises(CheckpointError, match=message) as err:
        from_pretrained(tmp_path / "q")
    assert "\n" not in str(err.value)


def test_moves_follow_the_dtype(trained):
    model = quantize_model(copy.deepcopy(trained), "int8-dynamic")
    rows = model.state_dict()["decoder.layers.0.ffn.up.qweight"].clone()
    model.to(torch.bfloat16)
    assert model.dtype == torch.bfloat16 and model.embed.weight.dtype == torch.bfloat16
    assert model.embed.scale.dtype == torch.float32  # scales stay float32
    assert torch.equal(model.state_dict()["decoder.layers.0.ffn.up.qweight"], rows)


# ---- entry points: load_pipeline, t2t generate, t2t eval ----------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("ckpt"))


def test_load_pipeline_takes_dtype_and_quantize(checkpoint, tmp_path):
    pipe = load_pipeline(checkpoint, dtype="bfloat16", quantize="int8")
    assert pipe.model.dtype == torch.bfloat16 and quantization_of(pipe.model) == "int8-dynamic"
    answer = pipe("the quick fox", max_new_tokens=5)
    assert isinstance(answer, str)
    assert "".join(pipe.stream("the quick fox", max_new_tokens=5)) == answer
    pipe.save_pretrained(tmp_path / "saved")  # model (int8, t2t format), tokenizer, defaults
    again = load_pipeline(tmp_path / "saved", dtype="bfloat16")
    assert quantization_of(again.model) == "int8-dynamic"
    assert again("the quick fox", max_new_tokens=5) == answer


def test_generate_cli_precision_flags(checkpoint, capsys):
    for flags in (["--quantize", "int8"], ["--quantize", "int8-weight-only", "--dtype", "bfloat16"]):
        code = main(["generate", "--model", str(checkpoint), *flags, "--max-new-tokens", "4", "a dog"])
        assert code == 0
    assert capsys.readouterr().out.count("\n") == 2
    with pytest.raises(SystemExit):
        main(["generate", "--model", str(checkpoint), "--quantize", "int3", "a dog"])


def test_eval_cli_records_the_precision(checkpoint, tmp_path):
    data = tmp_path / "words"
    data.mkdir()
    rows = [{"inputs": w, "targets": w.upper()} for w in ["house", "dog", "fox"]]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "--model", str(checkpoint), "--tasks", str(data), "--out", str(tmp_path / "out")]
    flags = ["--quantize", "int8-weight-only", "--dtype", "bfloat16", "--max-new-tokens", "3", "--quiet"]
    assert main([*argv, *flags]) == 0
    settings = json.loads((tmp_path / "out" / "eval.json").read_text())["settings"]
    assert settings["quantize"] == "int8-weight-only" and settings["dtype"] == "bfloat16"


# ---- bf16 decoding kernel ---------------------------------------------------------------------------
def test_bf16_few_row_kernel_uses_a_packed_copy_that_follows_the_weight():
    from t2t.generation import kernels

    layer = nn.Linear(64, 48).to(torch.bfloat16)
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = layer(x).float()
        got = kernels.few_row_linear(x, layer.weight, layer.bias).float()
    assert torch.allclose(got, expected, rtol=0.02, atol=0.02)
    if kernels._BF16:  # a CPU with AVX-512 BF16: the packed copy is kept, and made again after a change
        assert id(layer.weight) in kernels._PACKED
        with torch.no_grad():
            layer.weight.mul_(2)
        with torch.inference_mode():
            again = kernels.few_row_linear(x, layer.weight, layer.bias).float()
        assert torch.allclose(again, layer(x).float(), rtol=0.02, atol=0.02)
        key = id(layer.weight)
        del layer
        assert key not in kernels._PACKED  # the copy goes with the weight
