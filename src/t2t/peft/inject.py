"""Adapters onto a t2t model by name: where each target part lives in t2t's shared blocks, injection,
freezing, merging, and the model without its adapters (for saving the base weights).

Every family is built from the same Attention and FeedForward modules, so one walk over them finds the
fused linears and the slices of their outputs (`qkv`: q, k, v; cross-attention's `q`: q and `kv`: k, v;
`out`: o; `up`: gate, up or ffn_in; `down`: ffn_out). There is no per-model code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from t2t.errors import ConfigError
from t2t.model.attention import Attention
from t2t.model.feedforward import FeedForward
from t2t.peft.adapter import AdapterLinear
from t2t.peft.config import HEAD_MODULES, PeftConfig
from t2t.peft.lora import LoRALinear, Slice, plain_linear

ADAPTER_TENSORS = (".lora_A.", ".lora_B.", ".adapter_down.", ".adapter_up.")
Wrapped = LoRALinear | AdapterLinear


def linear_parts(model: nn.Module) -> dict[str, dict[str, Slice]]:
    """{path of each adaptable linear: {part: (start, stop) rows of its output}}, in module order."""
    out: dict[str, dict[str, Slice]] = {}
    for path, module in model.named_modules():
        if isinstance(module, Attention):
            q, kv = module.n_heads * module.head_dim, module.kv_heads * module.head_dim
            if module.cross:
                out[f"{path}.q"] = {"q": (0, q)}
                out[f"{path}.kv"] = {"k": (0, kv), "v": (kv, 2 * kv)}
            else:
                out[f"{path}.qkv"] = {"q": (0, q), "k": (q, q + kv), "v": (q + kv, q + 2 * kv)}
            out[f"{path}.out"] = {"o": (0, module.out.out_features)}
        elif isinstance(module, FeedForward):
            d_ff = module.d_ff
            out[f"{path}.up"] = (
                {"gate": (0, d_ff), "up": (d_ff, 2 * d_ff)} if module.gated else {"ffn_in": (0, d_ff)}
            )
            out[f"{path}.down"] = {"ffn_out": (0, module.down.out_features)}
    return out


def _chosen(parts: dict[str, Slice], wanted: list[str]) -> list[str]:
    """The slices of one linear that the targets choose (ffn_in means both halves of [gate; up])."""
    names = [p for p in parts if p in wanted]
    if "ffn_in" in wanted and set(parts) == {"gate", "up"}:
        names = list(parts)
    return names


def _check_targets(layouts: dict[str, dict[str, Slice]], wanted: list[str]) -> None:
    found = {p for parts in layouts.values() for p in _chosen(parts, wanted)}
    found |= {"ffn_in"} if {"gate", "up"} & found else set()
    for part in wanted:
        if part not in found:
            hint = ""
            if part in ("gate", "up"):
                hint = (
                    "; gate and up are the halves of a gated feed-forward, this one is not gated: use ffn_in"
                )
            raise ConfigError(f"peft.target: {part!r} matches no layer of this model{hint}")


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def apply_peft(model: nn.Module, cfg: PeftConfig, *, init: bool = True) -> nn.Module:
    """Inject cfg's adapters into model (in place), freeze everything else but the modules to save, and
    record cfg as `model.peft_config`. init=False allocates the new tensors without initialising them
    (for weights about to be loaded). Returns the model; with method=none it is left as it is."""
    if not cfg.enabled:
        return model
    if getattr(model, "peft_config", None) is not None:
        raise ConfigError(
            "this model already has adapters; merge them (t2t.peft.merge) or start from its base"
        )
    layouts = linear_parts(model)
    wanted = cfg.parts
    _check_targets(layouts, wanted)
    for path, parts in layouts.items():
        names = _chosen(parts, wanted)
        if not names:
            continue
        base = model.get_submodule(path)
        if cfg.method == "lora":
            ranks = {n: cfg.r for n in names}
            scales = {n: cfg.alpha / cfg.r for n in names}
            wrapped: nn.Module = LoRALinear(base, parts, ranks, scales, cfg.dropout, init=init)
        else:
            wrapped = AdapterLinear(base, cfg.bottleneck, init=init)
        set_module(model, path, wrapped)
    freeze_base(model, modules_to_save(model, cfg))
    model.peft_config = cfg  # type: ignore[assignment]
    return model


def modules_to_save(model: nn.Module, cfg: PeftConfig) -> list[str]:
    """The top-level modules trained in full beside the adapter: cfg.modules_to_save, or the task head."""
    if cfg.modules_to_save is not None:
        missing = [m for m in cfg.modules_to_save if not isinstance(getattr(model, m, None), nn.Module)]
        if missing:
            names = [n for n, _ in model.named_children()]
            raise ConfigError(
                f"peft.modules_to_save: the model has no module {missing[0]!r}; it has {', '.join(names)}"
            )
        return list(cfg.modules_to_save)
    config = getattr(model, "config", None)
    head = getattr(config, "task_head", None)
    if head in (None, "lm", "pretraining"):
        return []
    return [m for m in HEAD_MODULES if isinstance(getattr(model, m, None), nn.Module)]


def is_adapter_tensor(name: str) -> bool:
    return any(marker in f".{name}" for marker in ADAPTER_TENSORS)


def freeze_base(model: nn.Module, trained_modules: list[str]) -> None:
    """requires_grad only for the adapters' tensors and the modules trained in full."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad = is_adapter_tensor(name) or name.split(".")[0] in trained_modules


def wrapped_layers(model: nn.Module) -> Iterator[tuple[str, Wrapped]]:
    for path, module in model.named_modules():
        if isinstance(module, (LoRALinear, AdapterLinear)):
            yield path, module


def merge(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weight and put plain nn.Linear layers back (in place;
    `merge_and_unload` in PEFT). Bottleneck adapters are not linear and stay (the model keeps them and
    its frozen base); without them the model is a plain one again, all weights trainable. Returns it."""
    layers = list(wrapped_layers(model))
    for _, layer in layers:  # all checked and merged before any layer is swapped
        if isinstance(layer, LoRALinear):
            layer.merge()
    for path, layer in layers:
        if isinstance(layer, LoRALinear):
            set_module(model, path, plain_linear(layer))
    if not any(True for _ in wrapped_layers(model)):  # a plain model again, every weight trainable
        model.peft_config = None  # type: ignore[assignment]
        model.requires_grad_(True)
    return model


@contextlib.contextmanager
def without_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block the model holds plain linears (the same weight Parameters) in place of the
    adapted ones, so its state_dict is the base model's: what a checkpoint's model files hold."""
    layers = list(wrapped_layers(model))
    for path, layer in layers:
        set_module(model, path, plain_linear(layer))
    try:
        yield model
    finally:
        for path, layer in layers:
            set_module(model, path, layer)


def adapter_state(model: nn.Module) -> dict[str, object]:
    """The tensors a saved adapter holds (t2t names): the adapters' and the modules trained in full."""
    cfg = getattr(model, "peft_config", None)
    saved = modules_to_save(model, cfg) if cfg is not None else []
    return {k: v for k, v in model.state_dict().items() if is_adapter_tensor(k) or k.split(".")[0] in saved}


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
