"""Int8 weights for inference: every nn.Linear of a model and its token embedding (which is also the
vocabulary projection when tied) become int8 matrices with one fp32 scale per output row.

    quantize_model(model, "int8-dynamic")       # in place; returns the model
    quantize_model(model, "int8-weight-only")
    quantization_of(model)                      # "int8-dynamic", "int8-weight-only" or None

Two modes, both computed by PyTorch's own CPU kernels (no quantisation arithmetic of t2t's own beyond
the per-row absmax scale that torch.ao's per-channel symmetric observer also uses):

- "int8-dynamic" (alias "int8"): activations are quantised to 8 bits at run time, one scale per call,
  and multiplied by the int8 weights in integer arithmetic: fbgemm's `quantized::linear_dynamic`
  (what `torch.ao.quantization.quantize_dynamic` runs), on weights packed once for it. The fastest on
  CPU (`benchmarks/generate.py --kernels`), as CTranslate2's int8 is.
- "int8-weight-only": activations stay floating point; `aten::_weight_int8pack_mm` multiplies them, in
  bfloat16, by the int8 weights (its float32 path is scalar code, ~20x slower, so float32 activations
  are rounded to bfloat16 for the product and the result converted back).

Where a kernel does not apply (another device than the CPU, a PyTorch without fbgemm, or
`_weight_int8pack_mm` on rows not a multiple of 16 long, for which it computes garbage), the layer
multiplies by its dequantised weight instead: the same results as weight-only quantisation, without
the speed. torchao (the library PyTorch points to for quantisation) was measured too: on CPU its int8
tensors dequantise the whole weight at every call, so they decode no faster than float32.

A quantised layer keeps the structure of the model: `model.embed.weight` / `layer.weight` is a
`QuantizedWeight` that PyTorch's `F.linear` and `F.embedding` dispatch to (through
`__torch_function__`), so the model's own code (the tied vocabulary projection, BERT's masked-LM head)
runs unchanged, and `model.dtype` / `model.device` read it. The state dict holds, per quantised layer,
`NAME.qweight` (int8 [out, in]), `NAME.scale` ([out], float32 whatever the model's dtype: a bfloat16
scale would move every weight of its row by up to half a quantisation step) and `NAME.bias`; `t2t.hub`
saves and loads it as it is (no re-quantisation). Quantised models serve inference only: they have no
gradients to train.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2t.errors import ConfigError, T2TError

MODES = ("int8-dynamic", "int8-weight-only")
ALIASES = {
    "int8": "int8-dynamic",
    "int8-dynamic": "int8-dynamic",
    "int8_dynamic": "int8-dynamic",
    "dynamic": "int8-dynamic",
    "int8-weight-only": "int8-weight-only",
    "int8_weight_only": "int8-weight-only",
    "int8-wo": "int8-weight-only",
    "int8wo": "int8-weight-only",
    "weight-only": "int8-weight-only",
}
NONE = ("none", "no", "false", "off")
PACK_MULTIPLE = 16  # _weight_int8pack_mm needs rows of the weight (in_features) a multiple of this


def as_mode(mode: str | None) -> str | None:
    """A quantisation mode's canonical name ("int8-dynamic" / "int8-weight-only"), or None for none."""
    if mode is None or mode is False:
        return None
    if isinstance(mode, str):
        name = mode.strip().lower()
        if name in NONE or name == "":
            return None
        if name in ALIASES:
            return ALIASES[name]
    raise ConfigError(
        f"quantize={mode!r} is not one of {', '.join(MODES)} (int8 = int8-dynamic) or none; "
        "int4 has no CPU kernel in this PyTorch that t2t uses"
    )


def _reduce_range() -> bool:
    """fbgemm's 8-bit activations: the full range where the CPU multiplies with VNNI (no saturation of
    the 16-bit intermediate sums), 7 bits elsewhere (what torch.ao does on x86)."""
    vnni = getattr(torch.cpu, "_is_vnni_supported", None)
    return not (vnni is not None and vnni())


_REDUCE_RANGE = _reduce_range()


def _per_row_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 rows and one scale per row: symmetric, scale = max |w| / 127.5 and values rounded into
    [-128, 127], as torch.ao's PerChannelMinMaxObserver(qint8, per_channel_symmetric) chooses them."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.5).clamp(min=torch.finfo(torch.float32).tiny)
    q = torch.round(w / scale[:, None]).clamp(-128, 127).to(torch.int8)
    return q, scale


def _pack(qweight: torch.Tensor, scale: torch.Tensor) -> Any:
    """fbgemm's packed form of int8 rows with their scales (None where it is not available)."""
    if qweight.device.type != "cpu" or qweight.is_meta:
        return None
    try:
        with warnings.catch_warnings():  # torch 2.13 marks qint8 tensors deprecated; fbgemm still takes them
            warnings.simplefilter("ignore")
            zeros = torch.zeros(qweight.shape[0], dtype=torch.long)
            q = torch._make_per_channel_quantized_tensor(qweight, scale.double(), zeros, 0)
            return torch.ops.quantized.linear_prepack(q, None)
    except (RuntimeError, AttributeError, NotImplementedError):
        return None


def _unpack(packed: Any) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weight, _ = torch.ops.quantized.linear_unpack(packed)
        return weight.int_repr().contiguous()


class QuantizedWeight:
    """`layer.weight` of a quantised layer: stands in for the float matrix where code reads it.

    `F.linear(x, w, b)` and `F.embedding(ids, w)` dispatch here (PyTorch's `__torch_function__`
    protocol) and run the layer's int8 kernel; `dtype` (the floating dtype the layer computes in),
    `device` and `shape` are the float matrix's. Anything else is refused with one line:
    `w.dequantize()` gives a float copy."""

    __slots__ = ("layer",)

    def __init__(self, layer: Int8Layer) -> None:
        self.layer = layer

    @property
    def dtype(self) -> torch.dtype:
        return self.layer.dtype

    @property
    def device(self) -> torch.device:
        return self.layer.scale.device

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.layer.matrix_shape)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def is_meta(self) -> bool:
        return self.layer.scale.is_meta

    @property
    def requires_grad(self) -> bool:
        return False

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.layer.dequantize(dtype)

    def __repr__(self) -> str:
        return f"QuantizedWeight({self.layer.mode}, shape={list(self.shape)}, dtype={self.dtype})"

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is F.linear:
            x = args[0] if args else kwargs.pop("input")
            weight = args[1] if len(args) > 1 else kwargs.pop("weight")
            bias = args[2] if len(args) > 2 else kwargs.pop("bias", None)
            return weight.layer.linear(x, bias)
        if func is F.embedding:
            ids = args[0] if args else kwargs.pop("input")
            weight = args[1] if len(args) > 1 else kwargs.pop("weight")
            return weight.layer.lookup(ids)
        name = getattr(func, "__name__", str(func))
        raise T2TError(
            f"{name}() on a quantised weight: int8 layers serve inference (linear and embedding only); "
            "load the model without quantize= to train or edit it, or use weight.dequantize()"
        )


class Int8Layer(nn.Module):
    """int8 rows [out, in] (`qweight`) and their float32 scales (`scale`), with the kernels of `mode`;
    `dtype` is the floating dtype the layer takes and returns. The tensors are plain attributes, not
    buffers: this class writes and reads them in the state dict itself, and moves them in `_apply`, so
    that the dynamic mode can keep its weights in fbgemm's packed form alone (no second copy) and the
    scales stay float32 when the model changes dtype."""

    keep_rows = True  # the embedding looks rows up, so it keeps the plain matrix beside fbgemm's

    def __init__(
        self, out_features: int, in_features: int, mode: str, *, dtype: torch.dtype, device: Any = "meta"
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self.matrix_shape = (out_features, in_features)
        self.dtype = dtype
        self.qweight: torch.Tensor | None = torch.empty(
            out_features, in_features, dtype=torch.int8, device=device
        )
        self.scale = torch.empty(out_features, dtype=torch.float32, device=device)
        self._packed: Any = None
        self._ones: torch.Tensor | None = None  # unit scales for _weight_int8pack_mm (ours come after)

    @property
    def weight(self) -> QuantizedWeight:
        return QuantizedWeight(self)

    # ---- storage ----------------------------------------------------------------------------------
    def _set(self, qweight: torch.Tensor, scale: torch.Tensor) -> None:
        """Take int8 rows and scales; pack them for fbgemm (dynamic mode, on the CPU)."""
        self.qweight, self.scale, self._packed = qweight.contiguous(), scale.float(), None
        self._ones = None
        if self.mode == "int8-dynamic":
            self._packed = _pack(self.qweight, self.scale)
            if self._packed is not None and not self.keep_rows:
                self.qweight = None  # fbgemm's copy is the only one; the state dict unpacks it
        elif not self.scale.is_meta:
            self._ones = torch.ones(self.scale.shape, dtype=torch.bfloat16, device=self.scale.device)

    def rows(self) -> torch.Tensor:
        """The int8 matrix [out, in] (unpacked from fbgemm's copy when that is the only one)."""
        if self.qweight is not None:
            return self.qweight
        return _unpack(self._packed).to(self.scale.device)

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The float matrix the int8 one stands for (a new tensor, in `dtype`, default the layer's)."""
        return (self.rows().float() * self.scale[:, None]).to(dtype or self.dtype)

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "qweight"] = self.rows()
        # An empty layer (being loaded, t2t.hub) leaves its scales out of the list of what it takes, so
        # that they are not converted to the model's dtype on the way in: they stay float32.
        if not self.scale.is_meta:
            destination[prefix + "scale"] = self.scale

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        found = {}
        for name in ("qweight", "scale"):
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            found[name] = state_dict[key]
        if len(found) == 2:
            qweight, scale = found["qweight"], found["scale"]
            if tuple(qweight.shape) != self.matrix_shape or qweight.dtype != torch.int8:
                error_msgs.append(
                    f"{prefix}qweight: int8 {list(self.matrix_shape)} expected, got {qweight.dtype} "
                    f"{list(qweight.shape)}"
                )
            else:
                self._set(qweight.detach(), scale.detach())
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if strict:  # our own keys are not the base class's parameters: take them off its unexpected list
            ours = {prefix + "qweight", prefix + "scale"}
            unexpected_keys[:] = [k for k in unexpected_keys if k not in ours]

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        """Moves and dtype changes (`model.to(...)`): the tensors move, the layer computes in the new
        floating dtype; the int8 rows and float32 scales stay as they are."""
        probe = fn(torch.empty(0, dtype=self.dtype, device=self.scale.device))
        self.dtype = probe.dtype
        if probe.device != self.scale.device:
            self._set(self.rows().to(probe.device), self.scale.to(probe.device))
        return super()._apply(fn, recurse)

    # ---- compute ----------------------------------------------------------------------------------
    def linear(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x [..., in] @ W^T (+ bias) -> [..., out] in x's dtype."""
        out_features, in_features = self.matrix_shape
        flat = x.reshape(-1, in_features)
        if self._packed is not None and x.device.type == "cpu":
            y = torch.ops.quantized.linear_dynamic(flat.float().contiguous(), self._packed, _REDUCE_RANGE)
        elif (
            self._ones is not None
            and x.device.type == "cpu"
            and self.qweight is not None
            and in_features % PACK_MULTIPLE == 0
        ):
            # bf16 products with unit scales, then the float32 scales: no scale is rounded to 8 bits
            y = torch._weight_int8pack_mm(flat.to(torch.bfloat16).contiguous(), self.qweight, self._ones)
            y = y.float() * self.scale
        else:
            y = F.linear(flat, self.dequantize(x.dtype))
        y = y.to(x.dtype)
        if bias is not None:
            y = y + bias.to(x.dtype)
        return y.view(*x.shape[:-1], out_features)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of the matrix by index (an embedding lookup), dequantised: [..., in]."""
        rows = F.embedding(ids, self.rows()).float()
        return (rows * self.scale[ids].unsqueeze(-1)).to(self.dtype)

    def extra_repr(self) -> str:
        out_features, in_features = self.matrix_shape
        packed = ", fbgemm-packed" if self._packed is not None else ""
        return f"{out_features}x{in_features}, {self.mode}{packed}, dtype={self.dtype}"


class QuantizedLinear(Int8Layer):
    """nn.Linear with int8 weights: `forward(x)` = F.linear(x, self.weight, self.bias)."""

    keep_rows = False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mode: str,
        *,
        bias: bool,
        dtype: torch.dtype,
        device: Any = "meta",
    ) -> None:
        super().__init__(out_features, in_features, mode, dtype=dtype, device=device)
        self.in_features, self.out_features = in_features, out_features
        self.bias = (
            nn.Parameter(torch.empty(out_features, dtype=dtype, device=device), requires_grad=False)
            if bias
            else None
        )

    @classmethod
    def from_float(cls, layer: nn.Linear, mode: str) -> QuantizedLinear:
        weight = layer.weight
        new = cls(
            layer.in_features,
            layer.out_features,
            mode,
            bias=layer.bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        q, scale = _per_row_int8(weight)
        new._set(q.to(weight.device), scale.to(weight.device))
        if layer.bias is not None:
            new.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.bias)


class QuantizedEmbedding(Int8Layer):
    """nn.Embedding with int8 rows: lookups dequantise the rows they read; as the (tied) vocabulary
    projection, `F.linear(hidden, embed.weight)` multiplies by the int8 matrix."""

    keep_rows = True

    def __init__(
        self, num_embeddings: int, embedding_dim: int, mode: str, *, dtype: torch.dtype, device: Any = "meta"
    ) -> None:
        super().__init__(num_embeddings, embedding_dim, mode, dtype=dtype, device=device)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim

    @classmethod
    def from_float(cls, layer: nn.Embedding, mode: str) -> QuantizedEmbedding:
        weight = layer.weight
        new = cls(layer.num_embeddings, layer.embedding_dim, mode, dtype=weight.dtype, device=weight.device)
        q, scale = _per_row_int8(weight)
        new._set(q.to(weight.device), scale.to(weight.device))
        return new

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(ids)


# ---- whole models -----------------------------------------------------------------------------------
EMBEDDING = "embed"  # the token embedding (and tied vocabulary projection) of every t2t model


def _targets(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The layers quantisation replaces: every nn.Linear, and the token embedding."""
    for name, module in model.named_modules():
        if type(module) is nn.Linear or (name == EMBEDDING and type(module) is nn.Embedding):
            yield name, module


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@torch.no_grad()
def quantize_model(model: nn.Module, mode: str) -> nn.Module:
    """Replace, in place, every nn.Linear (attention, cross-attention, feed-forward, heads, an untied
    LM head) and the token embedding (the tied vocabulary projection) by int8 layers of `mode`, one
    layer at a time (the float weight of each is freed as it goes). Returns the model, in eval mode."""
    canonical = as_mode(mode)
    if canonical is None:
        return model
    present = quantization_of(model)
    if present is not None:
        raise ConfigError(
            f"the model is already quantised ({present}); load its float checkpoint to quantise it as {canonical}"
        )
    for name, module in list(_targets(model)):
        if any(p.is_meta for p in module.parameters()):
            raise T2TError(f"{name} has no weights yet (meta device); load or initialise the model first")
        if isinstance(module, nn.Linear):
            _replace(model, name, QuantizedLinear.from_float(module, canonical))
        else:
            _replace(model, name, QuantizedEmbedding.from_float(module, canonical))  # type: ignore[arg-type]
    return model.eval()


def quantized_layers(model: nn.Module) -> list[str]:
    """The names of the model's int8 layers."""
    return [name for name, module in model.named_modules() if isinstance(module, Int8Layer)]


def quantization_of(model: nn.Module) -> str | None:
    """The model's quantisation mode, or None when it has no int8 layer."""
    modes = {module.mode for module in model.modules() if isinstance(module, Int8Layer)}
    if len(modes) > 1:
        raise T2TError(f"the model mixes quantisation modes {sorted(modes)}")
    return modes.pop() if modes else None


def empty_quantized(model: nn.Module, mode: str, layers: list[str], dtype: torch.dtype) -> nn.Module:
    """Put empty (meta) int8 layers of `mode` at `layers` of a model built on the meta device, for a
    saved quantised state dict to be loaded into (t2t.hub): nothing is quantised again."""
    canonical = as_mode(mode)
    if canonical is None:
        raise ConfigError(f"quantisation mode {mode!r} names no quantisation")
    wanted = set(layers)
    for name, module in list(_targets(model)):
        if name not in wanted:
            continue
        wanted.discard(name)
        if isinstance(module, nn.Linear):
            new: nn.Module = QuantizedLinear(
                module.in_features, module.out_features, canonical, bias=module.bias is not None, dtype=dtype
            )
        else:
            new = QuantizedEmbedding(module.num_embeddings, module.embedding_dim, canonical, dtype=dtype)  # type: ignore[arg-type]
        _replace(model, name, new)
    if wanted:
        raise ConfigError(f"no linear layer or embedding named {sorted(wanted)[0]!r} in this model")
    return model


__all__ = [
    "ALIASES",
    "MODES",
    "Int8Layer",
    "QuantizedEmbedding",
    "QuantizedLinear",
    "QuantizedWeight",
    "as_mode",
    "empty_quantized",
    "quantization_of",
    "quantize_model",
    "quantized_layers",
]
