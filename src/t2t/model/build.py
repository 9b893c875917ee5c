"""Which class implements a config: the architecture and its head decide. Models are built only after
their size is checked against the memory free, so an absurd config is one clear line."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from t2t.config import ModelConfig
from t2t.errors import ConfigError
from t2t.model.memory import check_fits
from t2t.model.models import DecoderLM, EncoderDecoderLM, EncoderModel, T2TModel
from t2t.model.task_models import DecoderTaskModel, EncoderTaskModel


def model_class(config: ModelConfig) -> type[T2TModel]:
    head = config.task_head
    if config.arch == "encoder-decoder":
        return EncoderDecoderLM
    if config.arch == "encoder":
        return EncoderModel if head == "pretraining" else EncoderTaskModel
    return DecoderLM if head == "lm" else DecoderTaskModel


def parameter_count(config: ModelConfig) -> int:
    """The weights of config's model from its sizes alone (embeddings, attention and feed-forward
    matrices; norms, biases and small heads left out): a slight underestimate, computed without building
    anything, so that even a config of a billion layers or of d_model=1e11 is counted at once."""
    _check_int_fields(config)
    d, inner, kv_inner = config.d_model, config.n_heads * config.dim_head, config.kv_heads * config.dim_head
    attention = 2 * d * inner + 2 * d * kv_inner  # query and output; key and value
    ffn = (3 if config.gated_ffn else 2) * d * config.d_ff
    decoder_layer = 2 * attention + ffn if config.arch == "encoder-decoder" else attention + ffn
    embeddings = config.vocab_size * d * (1 if config.tie_embeddings else 2)
    if config.position == "learned":
        embeddings += config.max_positions * d
    encoder = config.n_encoder_layers * (attention + ffn)
    return embeddings + encoder + config.n_decoder_layers * decoder_layer


def _check_int_fields(config: ModelConfig) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.maxsize:  # int64
            raise ConfigError(f"{field.name}={value} is out of range: at most {sys.maxsize} (64 bits)")


def check_model_fits(
    config: ModelConfig, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> None:
    """Refuse a config whose weights alone (in dtype, default torch's) exceed the memory free on `device`
    (default: torch's)."""
    device = device if device is not None else torch.get_default_device()
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    sizes = f"d_model={config.d_model}, d_ff={config.d_ff}, vocab_size={config.vocab_size}"
    layers = f"{config.n_encoder_layers}+{config.n_decoder_layers} layers"
    check_fits(
        f"a model of {sizes}, {layers}",
        parameter_count(config) * dtype.itemsize,
        device,
        "lower those sizes (t2t inspect CONFIG counts the parameters)",
    )


def new_model(config: ModelConfig) -> T2TModel:
    """The model of config with its weights allocated but not initialised, once its size is checked."""
    check_model_fits(config)
    return model_class(config)(config)


# In-place initialisers (torch.nn.init's functions and these tensor methods): on a meta tensor there is
# nothing to fill, yet some (normal_, uniform_) run there as Python decompositions whose first use
# imports half of torch (~3 s and ~100 MB of memory); so do meta arithmetic ops, which is why buffers
# are computed on the CPU.
_INITIALISERS = frozenset({"normal_", "uniform_", "fill_", "zero_", "random_", "bernoulli_"})


class _EmptyParameters(TorchFunctionMode):
    """While a model is built: `torch.empty` (what nn.Linear, nn.Embedding and nn.LayerNorm allocate
    their weights with) makes meta tensors, and initialisers on meta tensors return at once. Buffers
    computed from the config (rotary frequencies, sinusoid tables) and the few parameters made by
    torch.ones / torch.zeros (norm scales, a bias) stay real: small, and computed as always. Modes are
    per thread, so another thread building a model at the same time is not affected."""

    def __init__(self, allocate: bool = True) -> None:
        super().__init__()
        self.allocate = allocate

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if self.allocate and func is torch.empty and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        elif (
            getattr(func, "__module__", "") == "torch.nn.init"
            or getattr(func, "__name__", "") in _INITIALISERS
        ):
            tensor = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def empty_model(config: ModelConfig, dtype: torch.dtype | None = None) -> T2TModel:
    """The model of config with its weights on the meta device, once its size (in dtype) is checked:
    nothing of size allocated, nothing initialised. `load_weights` fills it, as from_pretrained does."""
    check_model_fits(config, dtype=dtype)
    with _EmptyParameters():
        return model_class(config)(config)


def load_weights(
    model: T2TModel, state: dict[str, torch.Tensor], *, dtype: torch.dtype = torch.float32
) -> Any:
    """Fill a model made by `empty_model` with state's tensors, without copying them: each weight becomes
    the model's parameter (`load_state_dict(..., assign=True)`), in dtype (floating weights; converted one
    at a time, so at most one extra tensor is alive). `state` is consumed (its values are replaced).

    What state lacks (a head the checkpoint does not have) is allocated and initialised as `build_model`
    initialises it; buffers computed at construction (rotary frequencies, sinusoid tables) are computed
    again on the CPU. All of it ends in dtype, as `model.to(dtype)` would leave it. Returns
    load_state_dict's result (missing and unexpected keys)."""
    targets = model.state_dict(keep_vars=True)
    _buffers_in(model, dtype)
    absent = [key for key in targets if key not in state]
    if absent:
        _initialize(model, absent, dtype)
    storages: set[int] = set()
    for key in list(state):
        tensor = state[key]
        target = targets.get(key)
        if target is not None and target.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        tensor = tensor.contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in storages:  # two weights read as one tensor (a copied head) stay two parameters
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        state[key] = tensor
    result = model.load_state_dict(state, strict=False, assign=True)
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left and not result.missing_keys and not result.unexpected_keys:
        raise RuntimeError(f"load_weights left {left[0]!r} unallocated")  # a bug of t2t, not of the input
    return result


def _buffers_in(model: T2TModel, dtype: torch.dtype) -> None:
    """Buffers computed at construction (rotary frequencies, sinusoid tables: non-persistent, so in no
    checkpoint) in dtype, as model.to(dtype) leaves them. One left on the meta device is computed again by
    building its module anew on the CPU (both kinds, Rotary and AbsolutePositions, are built from the
    config alone)."""
    for module in model.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer.is_meta:
                buffer = getattr(type(module)(model.config), name)  # type: ignore[call-arg]
            module._buffers[name] = buffer.to(dtype) if buffer.is_floating_point() else buffer


def _initialize(model: T2TModel, keys: list[str], dtype: torch.dtype) -> None:
    """Allocate the parameters named by keys on the CPU and initialise them with the model's scheme (the
    others are still on the meta device, where initialising costs nothing and draws no random numbers)."""
    for key in keys:
        module_name, _, name = key.rpartition(".")
        module = model.get_submodule(module_name)
        old = module._parameters.get(name)
        if old is None:
            continue
        module._parameters[name] = torch.nn.Parameter(
            torch.empty(old.shape, dtype=torch.float32), requires_grad=old.requires_grad
        )
    with _EmptyParameters(allocate=False):  # the others stay on the meta device, untouched
        model.init_weights()
    for key in keys:
        module_name, _, name = key.rpartition(".")
        module = model.get_submodule(module_name)
        param = module._parameters.get(name)
        if param is not None and param.dtype != dtype:
            module._parameters[name] = torch.nn.Parameter(param.detach().to(dtype), param.requires_grad)


def build_model(config: ModelConfig) -> T2TModel:
    """A freshly initialised model for config."""
    model = new_model(config)
    model.init_weights()
    return model


def with_head(model: T2TModel, head: str, **fields: Any) -> T2TModel:
    """The same backbone under a new head (e.g. a pre-trained BERT for span QA). Every weight the two
    models share is copied (a pre-trained pooler included); the new head starts from scratch, as in
    BERT's and GPT's fine-tuning."""
    config = model.config.replace(head=head, **fields)
    new = build_model(config).to(device=model.device, dtype=model.dtype)
    target = new.state_dict()
    shared = {
        key: value
        for key, value in model.state_dict().items()
        if key in target and not key.startswith("classifier.") and value.shape == target[key].shape
    }
    if not any(key.startswith("embed.") for key in shared):
        raise ConfigError(f"cannot put head={head!r} on a {type(model).__name__}: no weights in common")
    new.load_state_dict(shared, strict=False)
    return new
