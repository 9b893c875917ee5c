"""The written-out attention used in training computes what SDPA computes."""

import pytest
import torch

from t2t import ModelConfig
from t2t.model.attention import Attention


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("case", ["none", "causal", "mask", "bias-with-grad"])
@pytest.mark.parametrize("scale", [True, False])
def test_explicit_attention_matches_sdpa(kv_heads, case, scale):
    cfg = ModelConfig(
        arch="decoder",
        n_encoder_layers=0,
        n_decoder_layers=1,
        decoder_start_id=None,
        vocab_size=16,
        d_model=32,
        n_heads=4,
        n_kv_heads=kv_heads,
        d_ff=16,
        dropout=0.0,
        scale_attention=scale,
    )
    attn = Attention(cfg)
    q = torch.randn(2, 4, 5, 8)
    k, v = torch.randn(2, kv_heads, 5, 8), torch.randn(2, kv_heads, 5, 8)
    mask = None
    if case == "mask":
        mask = torch.zeros(2, 1, 5, 5).masked_fill(
            torch.rand(2, 1, 5, 5) < 0.3, torch.finfo(torch.float32).min
        )
    elif case == "bias-with-grad":
        mask = torch.randn(1, 4, 5, 5, requires_grad=True)
    causal = case == "causal"
    got = attn._explicit_attention(q, k, v, mask, causal, 0.0)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=causal, scale=attn.scale, enable_gqa=kv_heads != 4
    )
    assert torch.allclose(got, expected, atol=1e-6)


def test_attention_dropout_drops_probabilities_in_training_only():
    cfg = ModelConfig(
        arch="decoder",
        n_encoder_layers=0,
        n_decoder_layers=1,
        decoder_start_id=None,
        vocab_size=16,
        d_model=32,
        n_heads=4,
        d_ff=16,
        dropout=0.5,
    )
    attn = Attention(cfg)
    x = torch.randn(2, 6, 32)
    attn.train()
    assert not torch.equal(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), attn(x))
