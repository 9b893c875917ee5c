"""generate() behaviour beyond parity: the cache with every position scheme, stopping and padding,
lengths, seeds, scores and the two length penalties, work done once, modes, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import t2t
from generation_helpers import left_padded, right_padded, spread_weights
from t2t.config import POSITIONS
from t2t.errors import ConfigError, T2TError
from t2t.generation import GenerationConfig, generate, stream_tokens
from t2t.generation.kernels import fast_linears, few_row_linear


def tiny(
    arch: str, position: str = "t5-relative", kv_heads: int | None = None, seed: int = 0
) -> t2t.T2TModel:
    layers = (
        dict(n_encoder_layers=2, n_decoder_layers=2)
        if arch == "encoder-decoder"
        else dict(n_encoder_layers=0, n_decoder_layers=2, decoder_start_id=None)
    )
    cfg = t2t.ModelConfig(
        arch=arch,
        vocab_size=96,
        d_model=32,
        n_heads=4,
        n_kv_heads=kv_heads,
        d_ff=64,
        max_positions=64,
        position=position,
        dropout=0.1,  # on, to show that generate switches it off
        eos_id=1,
        pad_id=0,
        **layers,
    )
    torch.manual_seed(seed)
    model = t2t.build_model(cfg)
    spread_weights(model, seed)
    return model.eval()


def batch(model: t2t.T2TModel, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    make = right_padded if model.config.arch == "encoder-decoder" else left_padded
    return make(model.config.vocab_size, batch=3, length=7, pad_id=0)


@pytest.mark.parametrize("kv_heads", [None, 2, 1], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_cache_changes_nothing(arch, position, kv_heads):
    """Every position scheme and head grouping: with and without the KV cache, greedy and beam search
    give the same tokens and (nearly) the same beam scores."""
    model = tiny(arch, position, kv_heads)
    ids, mask = batch(model)
    for beams in (1, 3):
        kwargs = dict(max_new_tokens=8, num_beams=beams, eos_token_id=[], return_scores=True)
        cached = generate(model, ids, mask, use_cache=True, **kwargs)
        uncached = generate(model, ids, mask, use_cache=False, **kwargs)
        assert torch.equal(cached.sequences, uncached.sequences)
        assert torch.allclose(cached.sequences_scores, uncached.sequences_scores, atol=1e-4)


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_rows_stop_at_eos_and_are_padded(arch):
    model = tiny(arch)
    ids, mask = batch(model)
    free = generate(model, ids, mask, max_new_tokens=8, eos_token_id=[])
    start = 1 if arch == "encoder-decoder" else ids.shape[1]
    eos = int(free[0, start + 2])  # row 0 will stop after its third token
    out = generate(model, ids, mask, max_new_tokens=8, eos_token_id=eos, pad_token_id=0)
    new = out[:, start:]
    for row, free_row in zip(new.tolist(), free[:, start:].tolist()):
        end = row.index(eos) + 1 if eos in row else len(row)
        assert row[:end] == free_row[:end]  # the same tokens up to the row's eos
        assert all(t == 0 for t in row[end:])  # then padding
    assert eos in new[0].tolist()[:3]
    longest = max((r.index(eos) + 1 if eos in r else 8) for r in free[:, start:].tolist())
    assert new.shape[1] == longest  # as long as the longest row, no longer


def test_max_length_counts_the_prompt_as_transformers_does():
    seq2seq, causal = tiny("encoder-decoder"), tiny("decoder")
    ids, mask = batch(seq2seq)
    assert generate(seq2seq, ids, mask, max_length=5, eos_token_id=[]).shape[1] == 5  # start + 4 new
    ids, mask = batch(causal)
    assert generate(causal, ids, mask, max_length=10, eos_token_id=[]).shape[1] == 10  # 7 prompt + 3 new
    assert generate(causal, ids, mask, max_new_tokens=4, max_length=10, eos_token_id=[]).shape[1] == 11
    with pytest.raises(ConfigError, match="max_length=7 leaves no room"):
        generate(causal, ids, mask, max_length=7)


def test_min_new_tokens_holds_eos_back():
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    first = int(generate(model, ids, mask, max_new_tokens=1, eos_token_id=[])[0, 1])
    assert generate(model, ids, mask, max_new_tokens=6, eos_token_id=first)[0, 1] == first
    held = generate(model, ids, mask, max_new_tokens=6, eos_token_id=first, min_new_tokens=3)
    assert first not in held[0, 1:4].tolist()


def test_sampling_is_reproducible_with_a_seed_and_leaves_the_global_rng_alone():
    model = tiny("decoder", "rope")
    ids, mask = batch(model)
    kwargs = dict(max_new_tokens=12, do_sample=True, temperature=1.5, top_k=0, eos_token_id=[])
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    a = generate(model, ids, mask, seed=3, **kwargs)
    assert torch.equal(torch.rand(3), expected_draw)  # the private generator did the sampling
    b = generate(model, ids, mask, seed=3, **kwargs)
    c = generate(model, ids, mask, seed=4, **kwargs)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    many = generate(model, ids[:1], mask[:1], seed=5, num_return_sequences=4, **kwargs)
    assert many.shape == (4, 7 + 12) and len({tuple(r) for r in many.tolist()}) > 1


def test_greedy_scores_are_the_log_likelihood_that_score_gives():
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    out = generate(model, ids, mask, max_new_tokens=6, eos_token_id=[], return_scores=True)
    assert torch.allclose(out.sequences_scores, model.score(ids, out.new_tokens, mask), atol=1e-4)


@pytest.mark.parametrize("style", ["hf", "gnmt"])
@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_beam_scores_follow_the_length_penalty_convention(style, alpha):
    """A returned hypothesis's score is its log-likelihood divided by the convention's divisor."""
    model = tiny("encoder-decoder", seed=2)
    ids, mask = batch(model, seed=2)
    free = generate(model, ids, mask, max_new_tokens=8, eos_token_id=[])
    eos = int(free[0, 3])
    out = generate(
        model,
        ids,
        mask,
        max_new_tokens=8,
        num_beams=4,
        num_return_sequences=2,
        eos_token_id=eos,
        length_penalty=alpha,
        length_penalty_style=style,
        return_scores=True,
    )
    new = out.new_tokens
    lengths = torch.tensor([r.index(eos) + 1 if eos in r else len(r) for r in new.tolist()])
    labels = new.masked_fill(torch.arange(new.shape[1])[None] >= lengths[:, None], -100)
    loglik = model.score(ids.repeat_interleave(2, 0), labels, mask.repeat_interleave(2, 0))
    divisor = lengths.float() ** alpha if style == "hf" else ((5 + lengths.float()) / 6) ** alpha
    assert torch.allclose(out.sequences_scores, loglik / divisor, atol=1e-4)


def test_encoder_and_cross_attention_projections_run_once():
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    calls = {"encoder": 0, "cross_kv": 0}
    model.encoder.register_forward_hook(lambda *_: calls.__setitem__("encoder", calls["encoder"] + 1))
    model.decoder.layers[0].cross_attn.kv.register_forward_hook(
        lambda *_: calls.__setitem__("cross_kv", calls["cross_kv"] + 1)
    )
    generate(model, ids, mask, max_new_tokens=6, num_beams=3, eos_token_id=[])
    assert calls == {"encoder": 1, "cross_kv": 1}


def test_decoder_only_prompt_runs_once_per_example_under_beam_search():
    model = tiny("decoder", "learned")
    ids, mask = batch(model)
    widths = []
    model.decoder.register_forward_hook(lambda _m, args, _o: widths.append(tuple(args[0].shape[:2])))
    generate(model, ids, mask, max_new_tokens=4, num_beams=3, eos_token_id=[])
    assert widths[0] == (3, 7)  # the prompt: 3 examples, not 3 x 3 beams
    assert widths[1:] == [(9, 1)] * 3  # then one token per beam


def test_training_mode_is_restored_and_dropout_is_off_meanwhile():
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    expected = generate(model, ids, mask, max_new_tokens=6)
    model.train()
    assert torch.equal(generate(model, ids, mask, max_new_tokens=6), expected)
    assert model.training and model.decoder.layers[0].training


def test_model_methods_and_plain_lists():
    model = tiny("decoder", "rope", 2)
    out = model.generate([5, 6, 7], max_new_tokens=3, eos_token_id=[])
    assert out.shape == (1, 6) and out[0, :3].tolist() == [5, 6, 7]
    config = GenerationConfig(max_new_tokens=2, eos_token_id=[])
    assert model.generate([[5, 6, 7]], config=config).shape == (1, 5)


def test_stream_tokens_gives_generate_columns_outside_inference_mode():
    model = tiny("decoder", "rope")
    ids, mask = batch(model)
    columns = []
    for tokens in stream_tokens(model, ids, mask, max_new_tokens=5, eos_token_id=[]):
        assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
        columns.append(tokens)
    assert torch.equal(
        torch.stack(columns, 1), generate(model, ids, mask, max_new_tokens=5, eos_token_id=[])[:, 7:]
    )
    with pytest.raises(T2TError, match="num_beams=1"):
        next(stream_tokens(model, ids, mask, num_beams=2))


@pytest.mark.parametrize("rows", [1, 4, 8, 16, 200])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("outputs", "inputs"), [(300, 64), (64, 300)])  # W @ x^T or oneDNN at 2-4 rows
def test_few_row_kernels_compute_the_same_product(rows, with_bias, outputs, inputs):
    torch.manual_seed(rows)
    weight, bias = torch.randn(outputs, inputs), torch.randn(outputs) if with_bias else None
    x = torch.randn(rows, 1, inputs)
    got = few_row_linear(x, weight, bias)
    assert got.shape == (rows, 1, outputs) and got.is_contiguous()
    assert torch.allclose(got, F.linear(x, weight, bias), atol=1e-5)


def test_fast_linears_leave_autograd_and_the_model_as_they_were():
    model = tiny("decoder", "rope")
    layer = model.decoder.layers[0].ffn.up
    x = torch.randn(3, 1, 32, requires_grad=True)
    with fast_linears(model):
        assert "forward" in vars(layer)
        layer(x).sum().backward()  # autograd still works: such calls keep PyTorch's own kernel
        with fast_linears(model):  # nested (e.g. scoring inside a generation loop): no double patch
            pass
        assert "forward" in vars(layer)
    assert "forward" not in vars(layer)
    assert torch.allclose(x.grad, layer.weight.sum(0).expand(3, 1, -1), atol=1e-5)


BAD_INPUTS = [
    (lambda m, ids, mask: generate(t2t.build_model(t2t.preset("bert-tiny")), ids), "has no decoder"),
    (lambda m, ids, mask: generate(m, ids.flip(1), mask.flip(1)), "right-padded"),
    (lambda m, ids, mask: generate(m, ids + 1000), r"input_ids\[0, 0\] = 10\d\d is outside the vocabulary"),
    (lambda m, ids, mask: generate(m, ids, mask[:, 1:]), "attention_mask has shape"),
    (lambda m, ids, mask: generate(m, ids, mask * 0), "no real token"),
    (lambda m, ids, mask: generate(m, ids[:, :0]), "input_ids is empty"),
    (lambda m, ids, mask: generate(m, ids.float()), "integer token ids"),
    (lambda m, ids, mask: generate(m, ids, mask, max_new_tokens=60), "exceeds the model's max_positions=64"),
]


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)))
def test_bad_input_is_one_clear_error(case):
    model = tiny("decoder", "learned")
    ids, mask = batch(model)
    call, message = BAD_INPUTS[case]
    with pytest.raises(T2TError, match=message) as err:
        call(model, ids, mask)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_beam=4), "unknown argument 'num_beam' \\(did you mean 'num_beams'\\?\\)"),
        (dict(do_sample=True, temperature=0.0), "temperature=0.0 must be > 0"),
        (dict(top_p=1.5), "top_p=1.5 is out of range"),
        (dict(num_return_sequences=3), "needs num_beams >= 3 or do_sample=True"),
        (dict(num_beams=2, num_return_sequences=3), "more than num_beams=2"),
        (dict(early_stopping="sometimes"), "early_stopping='sometimes' is not one of"),
        (dict(length_penalty_style="gnm"), "did you mean 'gnmt'"),
        (dict(max_new_tokens=0), "max_new_tokens=0 is out of range"),
        (dict(pad_token_id=96), r"pad_token_id=96 is not a token id of this model \(0 to 95\)"),
        (dict(eos_token_id=[1, -1]), r"eos_token_id=-1 is not a token id"),
    ],
)
def test_bad_config_is_a_config_error(kwargs, message):
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    with pytest.raises(ConfigError, match=message):
        generate(model, ids, mask, **kwargs)


def test_temperature_only_matters_when_sampling():
    """As in transformers: greedy and beam search ignore the temperature, so any value is accepted there;
    with do_sample=True it must be positive."""
    model = tiny("encoder-decoder")
    ids, mask = batch(model)
    for beams in (1, 3):
        plain = generate(model, ids, mask, max_new_tokens=5, num_beams=beams)
        for temperature in (0.0, -1.0, 0.3):
            assert torch.equal(
                generate(model, ids, mask, max_new_tokens=5, num_beams=beams, temperature=temperature), plain
            )
    GenerationConfig(temperature=0.0).validate()
    with pytest.raises(ConfigError, match=r"temperature=-1\.0 must be > 0"):
        GenerationConfig(temperature=-1.0, do_sample=True).validate()
