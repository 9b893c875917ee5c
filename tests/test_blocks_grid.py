"""Every combination the config allows runs: forward, backward, finite values, on tiny models."""

import itertools

import pytest
import torch

from t2t import ModelConfig, build_model
from t2t.config import ARCHS, FFNS, NORM_POSITIONS, NORMS, POSITIONS

from helpers import padded_batch

GRID = list(itertools.product(ARCHS, NORMS, NORM_POSITIONS, POSITIONS, FFNS))


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


@pytest.mark.parametrize(("arch", "norm", "norm_position", "position", "ffn"), GRID)
def test_every_combination_trains(arch, norm, norm_position, position, ffn):
    cfg = tiny(
        arch, norm=norm, norm_position=norm_position, position=position, ffn=ffn, bias=norm == "layernorm"
    )
    model = build_model(cfg).train()
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


def test_rmsnorm_computes_variance_in_fp32():
    from t2t.model.norms import RMSNorm

    norm = RMSNorm(8).to(torch.bfloat16)
    x = torch.full((1, 8), 300.0, dtype=torch.bfloat16)  # x**2 = 90000 overflows nothing in fp32
    y = norm(x)
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), torch.ones(1, 8), atol=1e-2)
