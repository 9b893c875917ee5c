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
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

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


def few_row_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias), computed the fastest measured way for its shape (contiguous output)."""
    features = x.shape[-1]
    rows = x.numel() // features if features else 0
    if (
        rows > MAX_ROWS
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
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
