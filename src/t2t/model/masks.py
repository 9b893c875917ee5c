"""Attention masks, built once per stack forward and shared by every layer.

Everything that limits attention (padding, causality, packed-example boundaries) becomes one boolean
`allowed` tensor; it is then merged with the relative position bias into one additive float mask.
Blocked entries get the dtype's most negative value rather than -inf, so a row with nothing to attend
to (a left-padding query) gives finite garbage instead of NaN that would leak into real tokens.
"""

from __future__ import annotations

import torch


def _and(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def allowed_keys(
    *,
    q_len: int,
    k_len: int,
    past: int,
    causal: bool,
    key_padding: torch.Tensor | None,
    query_segments: torch.Tensor | None,
    key_segments: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor | None:
    """Boolean [B|1, 1, Tq, Tk] of the keys each query may see, or None when it may see all of them.

    key_padding: [B, Tk] with 1 for real tokens. query/key_segments: [B, T] packing ids (0 = padding);
    a query sees only keys of its own example.
    """
    allowed = None
    if causal and q_len > 1:
        q_index = torch.arange(past, past + q_len, device=device)
        k_index = torch.arange(k_len, device=device)
        allowed = (k_index[None, :] <= q_index[:, None])[None, None]
    if key_padding is not None:
        allowed = _and(allowed, key_padding[:, None, None, :].bool())
    if query_segments is not None and key_segments is not None:
        same = query_segments[:, None, :, None] == key_segments[:, None, None, :]
        allowed = _and(allowed, same & (key_segments != 0)[:, None, None, :])
    return allowed


def additive_mask(
    allowed: torch.Tensor | None, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor | None:
    """Merge an `allowed` mask and a position bias into the float mask SDPA adds to the scores."""
    blocked = torch.finfo(dtype).min
    if bias is None:
        if allowed is None:
            return None
        zero = torch.zeros((), dtype=dtype, device=allowed.device)
        return torch.where(allowed, zero, torch.tensor(blocked, dtype=dtype, device=allowed.device))
    bias = bias.to(dtype)
    if allowed is None:
        return bias
    return torch.where(allowed, bias, torch.tensor(blocked, dtype=dtype, device=bias.device))


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype attention will run in: autocast's when it is on, else the activations'."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype
