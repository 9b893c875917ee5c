"""Incremental decoding with the KV cache gives the same logits as one full forward pass."""

import pytest
import torch

from t2t import ModelConfig, build_model
from t2t.config import POSITIONS

from helpers import padded_batch


def config(arch: str, position: str, kv_heads: int) -> ModelConfig:
    layers = (
        dict(n_encoder_layers=2, n_decoder_layers=2)
        if arch == "encoder-decoder"
        else dict(n_encoder_layers=0, n_decoder_layers=2, decoder_start_id=None)
    )
    return ModelConfig(
        arch=arch,
        vocab_size=64,
        d_model=32,
        n_heads=4,
        n_kv_heads=kv_heads,
        d_ff=64,
        max_positions=64,
        position=position,
        dropout=0.0,
        **layers,
    )


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("position", POSITIONS)
def test_decoder_only_cache_matches_full_forward(position, kv_heads):
    model = build_model(config("decoder", position, kv_heads)).eval()
    ids, _ = padded_batch(64, batch=2, length=10)
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_cache(capacity=2)  # small on purpose: the cache must grow
        prompt = model(ids[:, :4], cache=cache).logits
        steps = [model(ids[:, t : t + 1], cache=cache).logits for t in range(4, 10)]
    got = torch.cat([prompt, *steps], dim=1)
    assert cache.length == 10
    assert torch.allclose(got, full, atol=1e-5)


@pytest.mark.parametrize("position", POSITIONS)
def test_encoder_decoder_cache_matches_full_forward(position):
    model = build_model(config("encoder-decoder", position, 2)).eval()
    src, src_mask = padded_batch(64, batch=3, length=7)
    tgt, _ = padded_batch(64, batch=3, length=6)
    with torch.no_grad():
        full = model(src, attention_mask=src_mask, decoder_input_ids=tgt).logits
        memory = model.encode(src, src_mask)
        cache = model.new_cache()
        steps = [
            model.decode(tgt[:, t : t + 1], memory if t == 0 else None, src_mask, cache=cache)[1]
            for t in range(6)
        ]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_left_padded_prompts_match_unpadded_rows():
    """Decoder-only prompts are left-padded; with position ids from the mask, each row's logits equal
    those of the same prompt run alone."""
    model = build_model(config("decoder", "rope", 2)).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[0, 0, 5, 6, 7]])
    mask = torch.tensor([[0, 0, 1, 1, 1]])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        alone = model(short).logits[:, -1]
        batched = model(padded, attention_mask=mask, position_ids=positions).logits[:, -1]
    assert torch.allclose(alone, batched, atol=1e-5)


def test_reorder_selects_rows():
    model = build_model(config("decoder", "learned", 4)).eval()
    ids, _ = padded_batch(64, batch=3, length=5)
    with torch.no_grad():
        cache = model.new_cache()
        model(ids, cache=cache)
        cache.reorder(torch.tensor([2, 2, 0]))
        nxt = torch.tensor([[9], [9], [9]])
        got = model(nxt, cache=cache).logits
        ref = model(torch.cat([ids[[2, 2, 0]], nxt], dim=1)).logits[:, -1:]
    assert torch.allclose(got, ref, atol=1e-5)
