"""Faster matrix products for the few-row linear layers of a decoding step on CPU.

A decoding step multiplies a handful of rows (batch x beams, one token each) by every weight matrix of
the decoder and by the vocabulary projection: memory-bound work that dominates the step. PyTorch sends
fp32 `F.linear(x, W)` to MKL's sgemm, which on the project's 2-core AMD EPYC machine streams the
weights at 4-20 GB/s (mostly 7-13) for 1 to 32 rows. Two other ways to compute the same product do better there
(`benchmarks/linear_kernels.py` measures all three with the weights streamed from memory, as in a
decode loop; benchmarks/generate.py measures the effect on whole generations):

- W @ x^T (MKL with the weight as the left operand, then transposed back): 25-35 GB/s for 2-4 rows
  when the matrix has at least as many outputs as inputs (q/k/v, the FFN's up projection, the
  vocabulary); it falls behind from 6 rows on, and for down projections;
- oneDNN's kernel (`torch.ops.mkldnn._linear_pointwise`, which PyTorch ships and its compiler uses):
  15-35 GB/s, the best for everything else up to 32 rows.

While generating, `fast_linears(model)` gives the model's nn.Linear layers a forward that picks one of
these for fp32 CPU inputs of at most MAX_ROWS rows without autograd, and `vocab_logits` does the same
for the (possibly tied) vocabulary projection. Everything else, training and the prompt's forward pass
included, keeps PyTorch's kernel. The kernels sum in a different order than sgemm's x W^T, so logits
differ in the last bits (~1e-6 relative), as between two BLAS libraries.

bfloat16 (a model loaded with dtype=torch.bfloat16, on a CPU with AVX-512 BF16): PyTorch's bf16
F.linear hands oneDNN the plain weight, which oneDNN reorders into its blocked layout at every call, a
second pass over the weight that halves the gain of reading half the bytes. The few-row products use a
copy of the weight packed once into that layout (`torch.ops.mkldnn._reorder_linear_weight`, what
PyTorch's compiler does for frozen bf16 weights), kept beside the layer while the weight is alive and
unchanged: the decoder's weights and the vocabulary projection take twice their bf16 size, still less
than fp32. int8 layers (t2t.model.quantize) bring their own kernels and are left to them.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2t.model.models import T2TModel

MAX_ROWS = 32  # beyond this the products are no longer memory-bound; PyTorch's kernel is as good
TRANSPOSED_ROWS = range(2, 5)  # rows for which W @ x^T can win: when out_features >= in_features
ENV_SWITCH = "T2T_FAST_DECODE"  # "0" turns the kernels off (to compare, or on a machine where they lose)


def _onednn():  # type: ignore[no-untyped-def]
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


_ONEDNN = _onednn()


def _bf16_supported() -> bool:
    if _ONEDNN is None:
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


_BF16 = _bf16_supported()
_PACKED: dict[int, tuple[Any, int, torch.Tensor]] = {}  # id(weight) -> (weakref, version, packed copy)


def _packed_bf16(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """oneDNN's blocked copy of a bf16 weight, made once per weight (and again if the weight changes)."""
    key = id(weight)
    entry = _PACKED.get(key)
    if entry is not None and entry[0]() is weight and entry[1] == weight._version:
        return entry[2]
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)
    if entry is None:
        weakref.finalize(weight, _PACKED.pop, key, None)  # the copy goes with the weight
    _PACKED[key] = (weakref.ref(weight), weight._version, packed)
    return packed


def few_row_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias), computed the fastest measured way for its shape (contiguous output)."""
    features = x.shape[-1]
    rows = x.numel() // features if features else 0
    if (
        rows > MAX_ROWS
        or not isinstance(weight, torch.Tensor)  # an int8 layer's QuantizedWeight: its own kernels
        or x.device.type != "cpu"
        or x.dtype != weight.dtype
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
        return F.linear(x, weight, bias)
    if x.dtype == torch.bfloat16 and _BF16:
        return _ONEDNN(x.contiguous(), _packed_bf16(weight, max(rows, 1)), bias, "none", [], "")
    if x.dtype != torch.float32:
        return F.linear(x, weight, bias)
    if rows in TRANSPOSED_ROWS and weight.shape[0] >= features:
        out = torch.mm(weight, x.reshape(rows, features).t()).t()  # (addmm with a bias column is slower)
        out = out.contiguous() if bias is None else torch.add(out, bias, out=out.new_empty(out.shape))
        return out.view(*x.shape[:-1], weight.shape[0])
    if _ONEDNN is not None:
        return _ONEDNN(x.contiguous(), weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def _linear_forward(layer: nn.Linear):  # type: ignore[no-untyped-def]
    def forward(x: torch.Tensor) -> torch.Tensor:
        return few_row_linear(x, layer.weight, layer.bias)

    return forward


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


@contextlib.contextmanager
def fast_linears(model: nn.Module) -> Iterator[None]:
    """Within the block, the model's nn.Linear layers compute with `few_row_linear` (their instances get
    a forward of their own, removed on exit)."""
    # Layers that already have an instance forward (an enclosing block's) are left to it.
    layers = (
        [m for m in model.modules() if type(m) is nn.Linear and "forward" not in vars(m)] if enabled() else []
    )
    for layer in layers:
        layer.forward = _linear_forward(layer)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def vocab_logits(model: T2TModel, hidden: torch.Tensor) -> torch.Tensor:
    """The model's vocabulary projection (T2TModel._vocab_logits) with the few-row kernels: an own head
    is an nn.Linear that `fast_linears` covers; a tied one (the embedding, scaled for T5) is done here."""
    head = getattr(model, "lm_head", None)
    if head is not None or not enabled():
        return model._vocab_logits(hidden, head)
    if model.config.scale_tied_logits:
        hidden = hidden * model.config.d_model**-0.5
    return few_row_linear(hidden, model.embed.weight)


__all__ = ["ENV_SWITCH", "MAX_ROWS", "fast_linears", "few_row_linear", "vocab_logits"]
