"""Every combination the config allows runs: forward, backward, finite values, on tiny models."""

import itertools
import random

import pytest
import torch

from t2t import ModelConfig, build_model
from t2t.config import ARCHS, FFNS, NORM_POSITIONS, NORMS, POSITIONS

from helpers import padded_batch

# Every switch of a block, with every value it takes. The full product (3456 models) takes minutes on two
# cores, so the grid is an all-pairs design (every value of every axis meets every value of every other
# axis in at least one model) topped up with random combinations, for some higher-order mixes, to SIZE.
# The candidates come from a seeded random stream: the grid is the same on every run, and a failing
# model's test id names its full combination.
AXES: dict[str, tuple] = {
    "arch": ARCHS,
    "norm": NORMS,
    "norm_position": NORM_POSITIONS,
    "position": POSITIONS,
    "ffn": FFNS,
    "bias": (False, True),
    "tie_embeddings": (True, False),
    "n_kv_heads": (None, 2, 1),  # multi-head, grouped-query, multi-query (of 4 query heads)
}
SIZE = 40


def allowed(combo: dict) -> bool:
    return combo.get("arch") != "encoder" or combo.get("tie_embeddings", True)  # BERT's MLM head is tied


def pairs(combo: dict) -> set:
    return {((a, combo[a]), (b, combo[b])) for a, b in itertools.combinations(AXES, 2)}


def every_pair() -> set:
    return {
        ((a, va), (b, vb))
        for a, b in itertools.combinations(AXES, 2)
        for va, vb in itertools.product(AXES[a], AXES[b])
        if allowed({a: va, b: vb})
    }


def design(size: int, seed: int = 0, candidates: int = 50) -> list[dict]:
    rng = random.Random(seed)
    every = [dict(zip(AXES, values, strict=True)) for values in itertools.product(*AXES.values())]
    every = [c for c in every if allowed(c)]
    uncovered, rows = every_pair(), []
    while uncovered:
        best = max(rng.sample(every, candidates), key=lambda c: len(pairs(c) & uncovered))
        if not pairs(best) & uncovered:  # the sample missed every open pair: take one that has it
            best = next(c for c in every if pairs(c) & uncovered)
        rows.append(best)
        uncovered -= pairs(best)
    rest = [c for c in every if c not in rows]
    return rows + rng.sample(rest, max(0, size - len(rows)))


GRID = design(SIZE)


def tiny(arch: str, **fields) -> ModelConfig:
    layers = {
        "encoder-decoder": dict(n_encoder_layers=2, n_decoder_layers=2),
        "encoder": dict(n_encoder_layers=2, n_decoder_layers=0, decoder_start_id=None, type_vocab_size=2),
        "decoder": dict(n_encoder_layers=0, n_decoder_layers=2, decoder_start_id=None),
    }[arch]
    base = dict(arch=arch, vocab_size=64, d_model=16, n_heads=4, d_ff=32, max_positions=32, dropout=0.1)
    return ModelConfig(**{**base, **layers, **fields})


def run_training_step(model, vocab: int) -> torch.Tensor:
    ids, mask = padded_batch(vocab, batch=3, length=8)
    labels = ids.masked_fill(mask == 0, -100)
    if model.config.arch == "encoder-decoder":
        out = model(ids, attention_mask=mask, labels=labels[:, :5])
    elif model.config.arch == "encoder":
        out = model(ids, attention_mask=mask, labels=labels, next_sentence_label=torch.tensor([0, 1, 0]))
    else:
        out = model(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.loss


def combo_id(combo: dict) -> str:
    return "-".join(v if isinstance(v, str) else f"{k}={v}" for k, v in combo.items())


def test_grid_covers_every_pair_of_switch_values():
    assert all(allowed(c) for c in GRID)
    assert set().union(*(pairs(c) for c in GRID)) == every_pair()
    assert len(GRID) == SIZE and len({tuple(c.values()) for c in GRID}) == SIZE


@pytest.mark.parametrize("combo", GRID, ids=combo_id)
def test_every_combination_trains(combo):
    cfg = tiny(**combo)
    model = build_model(cfg).train()
    # The switches reach the blocks: bias on the projections, shared key/value heads, a separate head.
    stack = model.encoder if cfg.has_encoder else model.decoder
    qkv = stack.layers[0].self_attn.qkv
    assert (qkv.bias is not None) == cfg.bias
    assert qkv.out_features == (cfg.n_heads + 2 * cfg.kv_heads) * cfg.dim_head
    if cfg.has_decoder:
        assert (model.lm_head is None) == cfg.tie_embeddings
    loss = run_training_step(model, cfg.vocab_size)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("kv_heads", [4, 2, 1])  # multi-head, grouped-query, multi-query
@pytest.mark.parametrize("arch", ARCHS)
def test_attention_head_sharing(arch, kv_heads):
    cfg = tiny(arch, n_kv_heads=kv_heads, position="rope")
    model = build_model(cfg)
    qkv = model.encoder.layers[0].self_attn.qkv if cfg.has_encoder else model.decoder.layers[0].self_attn.qkv
    assert qkv.out_features == (4 + 2 * kv_heads) * 4
    assert torch.isfinite(run_training_step(model, cfg.vocab_size))


def test_t5_has_one_bias_table_per_stack_and_none_in_cross_attention():
    model = build_model(tiny("encoder-decoder", position="t5-relative"))
    tables = [name for name, _ in model.named_parameters() if "relative_bias" in name]
    assert tables == ["encoder.relative_bias.table.weight", "decoder.relative_bias.table.weight"]
    assert model.encoder.relative_bias.bidirectional and not model.decoder.relative_bias.bidirectional


def test_post_ln_normalises_embeddings_and_pre_ln_the_output():
    post = build_model(tiny("encoder", norm_position="post"))
    pre = build_model(tiny("decoder", norm_position="pre"))
    assert post.encoder.embed_norm is not None and post.encoder.final_norm is None
    assert pre.decoder.embed_norm is None and pre.decoder.final_norm is not None


def test_dropout_is_active_in_training_only():
    model = build_model(tiny("decoder", dropout=0.5))
    ids, _ = padded_batch(64)
    model.train()
    a, b = model(ids).logits, model(ids).logits
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)


def rms_row_bias(y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per row, the mean of y / exact RMSNorm(x) - 1 (exact: float64). Rounding the output to bf16 moves
    single elements by up to 2**-9 either way, which averages out over a row; an error in the row's
    variance scales the whole row and does not."""
    x64 = x.double()
    exact = weight.double() * x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6)
    return (y.double() / exact).mean(-1) - 1


def test_rmsnorm_computes_variance_in_fp32():
    from t2t.model.norms import RMSNorm

    # Rows whose mean square is 9 + 2**-5, halfway between two bf16 numbers (spacing 2**-4 there): a
    # variance rounded to bf16 is 0.35% off, so the row comes out ~0.17% too large or too small.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2048, generator=g)
    x = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True)) * (9 + 2**-5) ** 0.5).bfloat16()
    norm = RMSNorm(2048).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(2048, generator=g) + 0.5)
        y = norm(x)
        weight = norm.weight.detach()
    bf16_variance = weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
    assert y.dtype == torch.bfloat16
    limit = 6e-4  # fp32 variance: median 1.6e-4 (the bf16 output rounding); bf16 variance: 1.7e-3
    assert float(rms_row_bias(y, x, weight).abs().median()) < limit
    assert float(rms_row_bias(bf16_variance, x, weight).abs().median()) > limit  # the check bites
