"""A faster matrix product for the few-row linear layers of a decoding step on CPU.

A decoding step multiplies a handful of rows (batch x beams, one token each) by every weight matrix of
the decoder and by the vocabulary projection: memory-bound work. PyTorch sends fp32 `F.linear` to MKL's
sgemm, which on this project's 2-core AMD machine runs such few-row products on one thread at 6-15
GB/s; oneDNN's kernel (`torch.ops.mkldnn._linear_pointwise`, which PyTorch ships and its compiler
uses) streams the same weights 1.5-2x faster with both threads (benchmarks/generate.py measures the
whole step). While generating, `few_row_linear()` routes only those products there: fp32 CPU tensors
with at most MAX_ROWS rows and no autograd. Everything else, training and the prompt's forward pass
included, keeps PyTorch's own kernel. The two kernels sum in a different order, so logits differ in the
last bits (about 1e-6 relative), as they would between two BLAS libraries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

MAX_ROWS = 32  # measured: oneDNN is ahead up to ~64 rows here; a prompt's forward pass has far more


def _onednn_linear():  # type: ignore[no-untyped-def]
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


class _FewRowLinear(TorchFunctionMode):
    def __init__(self, kernel) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.kernel = kernel

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (
                x.device.type == "cpu"
                and x.dtype == torch.float32
                and weight.dtype == torch.float32
                and x.dim() >= 2
                and x.numel() <= MAX_ROWS * x.shape[-1]
                and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            ):
                return self.kernel(x.contiguous(), weight, bias, "none", [], "")
        return func(*args, **kwargs)


@contextlib.contextmanager
def few_row_linear(enabled: bool = True) -> Iterator[None]:
    """Within this block, few-row fp32 CPU linear layers use oneDNN (a no-op where it is unavailable)."""
    kernel = _onednn_linear() if enabled else None
    if kernel is None:
        yield
        return
    with _FewRowLinear(kernel):
        yield


__all__ = ["MAX_ROWS", "few_row_linear"]
