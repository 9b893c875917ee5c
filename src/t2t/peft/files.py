"""Adapter directories in and out: t2t's own layout, and Hugging Face PEFT's for LoRA.

    t2t_adapter.json + t2t_adapter.safetensors        the PeftConfig and the adapter's tensors in t2t
                                                      names: any method, any model; what resume reads
    adapter_config.json + adapter_model.safetensors   PEFT's LoRA layout in transformers' module names
                                                      (`base_model.model.<module>.lora_A.weight`), so
                                                      `peft.PeftModel.from_pretrained(hf_model, DIR)` loads it

PEFT names come from interop's weight rules (t2t.interop): a rule that splits t2t's fused `qkv` into HF's
q / k / v (or [gate; up] into wi_0 / wi_1, gate_proj / up_proj) maps each LoRA slice onto its own HF
module. GPT-2 keeps q, k, v fused in one Conv1D (`c_attn`), so there the slices' updates are written as
one LoRA of rank sum(r) whose B is block-diagonal over the chosen slices (zero rows for the others):
the same update, and `rank_pattern` / `alpha_pattern` keep PEFT's scale. Read back from PEFT's files
alone, such a LoRA becomes one update per slice with A shared (copied), again the same function.

Saving writes both layouts where PEFT can express the model (LoRA, a family transformers has), else the
t2t layout only. Loading prefers the t2t layout and reads a directory PEFT wrote otherwise.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from t2t.errors import CheckpointError, ConfigError
from t2t.interop.family import Family
from t2t.interop.hf import family_for_config
from t2t.interop.rules import _expand
from t2t.peft.config import PeftConfig
from t2t.peft.inject import (
    adapter_state,
    apply_peft,
    freeze_base,
    is_adapter_tensor,
    linear_parts,
    set_module,
    wrapped_layers,
)
from t2t.peft.lora import LoRALinear
from t2t.utils.io import atomic_write_text, atomic_write_with

T2T_ADAPTER_CONFIG = "t2t_adapter.json"
T2T_ADAPTER_WEIGHTS = "t2t_adapter.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
_TASK_TYPES = {
    ("encoder-decoder", None): "SEQ_2_SEQ_LM",
    ("decoder", "lm"): "CAUSAL_LM",
    ("encoder", "classification"): "SEQ_CLS",
    ("encoder", "regression"): "SEQ_CLS",
    ("encoder", "token-classification"): "TOKEN_CLS",
    ("encoder", "span-qa"): "QUESTION_ANS",
}


def has_adapter(directory: str | Path) -> bool:
    directory = Path(directory)
    return (directory / T2T_ADAPTER_CONFIG).is_file() or (directory / PEFT_CONFIG).is_file()


# ---------------------------------------------------------------------------------------------- save
def save_adapter(model: nn.Module, directory: str | Path, *, base_model: str | None = None) -> list[str]:
    """Write the model's adapter into directory (t2t layout, plus PEFT's where it applies); returns the
    names of the files written. base_model: recorded as PEFT's base_model_name_or_path."""
    return adapter_writer(model, base_model=base_model)(Path(directory))


def adapter_writer(model: nn.Module, *, base_model: str | None = None) -> Callable[[Path], list[str]]:
    """save_adapter in two steps: the files' contents are taken from the model now, and written by the
    function returned (so the model may be without its adapters by then, see without_adapters)."""
    cfg = getattr(model, "peft_config", None)
    if cfg is None:
        raise CheckpointError("the model has no adapter to save (t2t.peft.apply_peft adds one)")
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter_state(model).items()}
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(f"refusing to save the adapter: {bad!r} is not finite")
    meta = {"format": "t2t-adapter", "version": 1, **cfg.to_dict()}
    family = family_for_config(model.config) if cfg.method == "lora" else None
    peft_files = to_peft(model, family, base_model) if family is not None else None

    def write(directory: Path) -> list[str]:
        directory.mkdir(parents=True, exist_ok=True)
        _write_safetensors(directory / T2T_ADAPTER_WEIGHTS, tensors)
        atomic_write_text(directory / T2T_ADAPTER_CONFIG, json.dumps(meta, indent=2) + "\n")
        if peft_files is None:
            return [T2T_ADAPTER_CONFIG, T2T_ADAPTER_WEIGHTS]
        _write_safetensors(directory / PEFT_WEIGHTS, peft_files[1])
        atomic_write_text(directory / PEFT_CONFIG, json.dumps(peft_files[0], indent=2) + "\n")
        return [T2T_ADAPTER_CONFIG, T2T_ADAPTER_WEIGHTS, PEFT_CONFIG, PEFT_WEIGHTS]

    return write


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write_with(path, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))


def _hf_modules(model: nn.Module, family: Family) -> dict[str, tuple[str, list[str]]]:
    """{HF module name: (t2t linear path, the parts of that linear's output it holds)} for every
    adaptable linear, from the family's weight rules."""
    parts = linear_parts(model)
    out: dict[str, tuple[str, list[str]]] = {}
    for rule in _expand(family.rules(model.config), model.config):
        path = rule.t2t.removesuffix(".weight")
        if path not in parts or not rule.t2t.endswith(".weight"):
            continue
        names = list(parts[path])
        hf = [k.removesuffix(".weight") for k in rule.hf]
        if len(hf) == len(names):
            for module, name in zip(hf, names, strict=True):
                out[module] = (path, [name])
        elif len(hf) == 1:  # one HF module holds the whole fused output (GPT-2's c_attn)
            out[hf[0]] = (path, names)
    return out


def _hf_names(model: nn.Module, family: Family) -> dict[str, str]:
    """{t2t tensor name: HF tensor name} for the tensors one HF tensor holds whole (heads, norms...)."""
    return {
        rule.t2t: rule.hf[0]
        for rule in _expand(family.rules(model.config), model.config)
        if len(rule.hf) == 1
    }


def _pattern(names: list[str]) -> str:
    """A regex that PEFT full-matches against exactly these module names (layer indices generalised)."""
    generic = sorted({re.sub(r"\\\.\d+(?=\\\.)", r"\\.\\d+", re.escape(n)) for n in names})
    return "|".join(generic)


def to_peft(
    model: nn.Module, family: Family, base_model: str | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """PEFT's adapter_config.json and adapter_model.safetensors tensors for the model's LoRA."""
    cfg: PeftConfig = model.peft_config  # type: ignore[assignment]
    scale = cfg.alpha / cfg.r
    layers = dict(wrapped_layers(model))
    tensors: dict[str, torch.Tensor] = {}
    targets: list[str] = []
    ranks: dict[str, int] = {}
    for module, (path, covered) in _hf_modules(model, family).items():
        layer = layers.get(path)
        if not isinstance(layer, LoRALinear):
            continue
        chosen = [p for p in covered if p in layer.lora_A]
        if not chosen:
            continue
        first = layer.parts[covered[0]][0]
        rows = layer.parts[covered[-1]][1] - first
        rank = sum(layer.lora_A[p].shape[0] for p in chosen)
        a = torch.cat([layer.lora_A[p].detach() for p in chosen], dim=0)  # [rank, in]
        b = a.new_zeros(rows, rank)  # block-diagonal over the chosen slices
        col = 0
        for p in chosen:
            start, stop = layer.parts[p]
            r = layer.lora_A[p].shape[0]
            b[start - first : stop - first, col : col + r] = layer.lora_B[p].detach() * (
                layer.scales[p] / scale
            )
            col += r
        tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"] = a.cpu().contiguous()
        tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"] = b.cpu().contiguous()
        targets.append(module)
        ranks[module] = rank
    hf_names = _hf_names(model, family)
    head_modules = []
    for key, value in adapter_state(model).items():
        if is_adapter_tensor(key):
            continue
        if key not in hf_names:
            raise CheckpointError(
                f"{key}: this module to save has no Hugging Face name; save with the t2t layout"
            )
        tensors[PEFT_PREFIX + hf_names[key]] = value.detach().cpu().contiguous()
        head_modules.append(hf_names[key].rpartition(".")[0])
    odd = {m: r for m, r in ranks.items() if r != cfg.r}
    config = {
        "peft_type": "LORA",
        "task_type": _TASK_TYPES.get((model.config.arch, model.config.head)),
        "base_model_name_or_path": base_model,
        "r": cfg.r,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "target_modules": _pattern(targets),
        "rank_pattern": {_pattern([m]): r for m, r in odd.items()},
        "alpha_pattern": {_pattern([m]): scale * r for m, r in odd.items()},
        "modules_to_save": sorted(set(head_modules)) or None,
        "fan_in_fan_out": family.name == "gpt2",  # GPT-2's Conv1D stores weights transposed
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "revision": None,
    }
    return config, tensors


# ---------------------------------------------------------------------------------------------- load
def load_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Inject the adapter saved in directory into model (in place, unmerged) and load its tensors: the
    t2t layout when the directory has one, else PEFT's (LoRA written by Hugging Face PEFT)."""
    directory = Path(directory)
    if (directory / T2T_ADAPTER_CONFIG).is_file():
        return _load_t2t(model, directory)
    if (directory / PEFT_CONFIG).is_file():
        return load_peft(model, directory)
    raise CheckpointError(f"{directory}: no {T2T_ADAPTER_CONFIG} nor {PEFT_CONFIG}; not an adapter directory")


def saved_adapter_state(directory: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a t2t-layout adapter (t2t names), as save_adapter wrote them."""
    return _read_tensors(Path(directory) / T2T_ADAPTER_WEIGHTS)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: should hold a JSON object")
    return data


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read safetensors file ({err})") from None


def _load_t2t(model: nn.Module, directory: Path) -> nn.Module:
    meta = _read_json(directory / T2T_ADAPTER_CONFIG)
    fields = {k: v for k, v in meta.items() if k not in ("format", "version")}
    try:
        cfg = PeftConfig.from_dict(fields)
    except ConfigError as err:
        raise CheckpointError(f"{directory / T2T_ADAPTER_CONFIG}: {err}") from None
    tensors = _read_tensors(directory / T2T_ADAPTER_WEIGHTS)
    apply_peft(model, cfg, init=False)
    _load_into(model, tensors, directory / T2T_ADAPTER_WEIGHTS)
    return model


def _load_into(model: nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    expected = {k: v for k, v in model.state_dict().items() if is_adapter_tensor(k)}
    missing = [k for k in expected if k not in tensors]
    unknown = [k for k in tensors if k not in model.state_dict()]
    if missing or unknown:
        what = f"{missing[0]!r} is missing" if missing else f"{unknown[0]!r} is not in the model"
        raise CheckpointError(f"{where}: the adapter does not fit this model ({what})")
    for key, value in tensors.items():
        if model.state_dict()[key].shape != value.shape:
            raise CheckpointError(
                f"{where}: {key!r} has shape {tuple(value.shape)}, the model's {tuple(model.state_dict()[key].shape)}"
            )
    model.load_state_dict(tensors, strict=False)


def _scaling(config: dict[str, Any], module: str, rank: int) -> float:
    """PEFT's scale of one module: lora_alpha (or its alpha_pattern) over r (sqrt(r) with rsLoRA)."""
    alpha = config.get("lora_alpha", 8)
    for key, value in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            alpha = value
            break
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _check_peft_config(config: dict[str, Any], path: Path) -> None:
    kind = config.get("peft_type")
    if kind != "LORA":
        raise CheckpointError(f"{path}: peft_type={kind!r}; t2t reads LoRA adapters (LORA) only")
    for key, fix in (
        ("use_dora", "DoRA"),
        ("lora_bias", "LoRA biases"),
        ("target_parameters", "LoRA on parameters"),
        ("trainable_token_indices", "trainable tokens"),
        ("layer_replication", "layer replication"),
    ):
        if config.get(key):
            raise CheckpointError(f"{path}: {key}={config[key]!r}; t2t does not support {fix}")
    if config.get("bias", "none") != "none":
        raise CheckpointError(f"{path}: bias={config['bias']!r}; t2t reads adapters with bias='none' only")


def load_peft(model: nn.Module, directory: str | Path) -> nn.Module:
    """Inject a LoRA adapter that Hugging Face PEFT saved (adapter_config.json + adapter_model.safetensors)
    into a t2t model of the same base (in place, unmerged)."""
    directory = Path(directory)
    if getattr(model, "peft_config", None) is not None:
        raise CheckpointError("this model already has adapters; load the new one into its base")
    config = _read_json(directory / PEFT_CONFIG)
    _check_peft_config(config, directory / PEFT_CONFIG)
    family = family_for_config(model.config)
    if family is None:
        raise CheckpointError(f"{directory}: this t2t model has no Hugging Face equivalent for PEFT names")
    raw = _read_tensors(directory / PEFT_WEIGHTS)
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        key = key.removeprefix(PEFT_PREFIX)
        key = re.sub(r"\.(lora_[AB])\.default\.weight$", r".\1.weight", key)
        key = key.replace(".modules_to_save.default.", ".")
        state[key] = value
    state = family.normalize(state)
    modules = _hf_modules(model, family)
    layouts = linear_parts(model)
    hf_to_t2t = {hf: t2t for t2t, hf in _hf_names(model, family).items()}
    updates: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, float]]] = {}
    heads: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".lora_B.weight"):
            continue
        if not key.endswith(".lora_A.weight"):
            if key not in hf_to_t2t:
                raise CheckpointError(
                    f"{directory / PEFT_WEIGHTS}: {key!r} is no weight of this {family.name} model"
                )
            heads[hf_to_t2t[key]] = value
            continue
        module = key.removesuffix(".lora_A.weight")
        if module not in modules and isinstance(
            _plain_linear_at(model, hf_to_t2t.get(f"{module}.weight")), nn.Linear
        ):
            path = hf_to_t2t[f"{module}.weight"].removesuffix(".weight")  # a linear of its own (a pooler...)
            modules[module] = (path, ["all"])
            layouts[path] = {"all": (0, model.get_submodule(path).out_features)}
        if module not in modules:
            raise CheckpointError(
                f"{directory / PEFT_WEIGHTS}: LoRA on {module!r}, which t2t cannot adapt (it adapts attention "
                "and feed-forward projections)"
            )
        a, b = value, state.get(f"{module}.lora_B.weight")
        if b is None:
            raise CheckpointError(f"{directory / PEFT_WEIGHTS}: {module}.lora_B.weight is missing")
        path, covered = modules[module]
        parts = layouts[path]
        first = parts[covered[0]][0]
        scale = _scaling(config, module, a.shape[0])
        for part in covered:  # one HF module over several slices: A shared, B cut by rows
            start, stop = parts[part]
            updates.setdefault(path, {})[part] = (a, b[start - first : stop - first], scale)
    for path, chosen in updates.items():
        base = model.get_submodule(path)
        ranks = {p: a.shape[0] for p, (a, _, _) in chosen.items()}
        scales = {p: s for p, (_, _, s) in chosen.items()}
        layer = LoRALinear(
            base, layouts[path], ranks, scales, float(config.get("lora_dropout", 0.0)), init=False
        )
        with torch.no_grad():
            for p, (a, b, _) in chosen.items():
                layer.lora_A[p].copy_(a)
                layer.lora_B[p].copy_(b)
        set_module(model, path, layer)
    if heads:
        _load_heads(model, heads, directory)
    saved = sorted({k.split(".")[0] for k in heads})
    freeze_base(model, saved)
    found = sorted({p for chosen in updates.values() for p in chosen})
    rank = max((a.shape[0] for chosen in updates.values() for a, _, _ in chosen.values()), default=1)
    model.peft_config = PeftConfig(  # type: ignore[assignment]
        method="lora",
        r=rank,
        alpha=float(config.get("lora_alpha", rank)),
        dropout=float(config.get("lora_dropout", 0.0)),
        target=found or None,
        modules_to_save=saved,
    )
    return model


def _plain_linear_at(model: nn.Module, weight: str | None) -> nn.Module | None:
    """The nn.Linear whose weight is named `weight` (t2t name), if that is what it is."""
    if weight is None or not weight.endswith(".weight"):
        return None
    try:
        module = model.get_submodule(weight.removesuffix(".weight"))
    except AttributeError:
        return None
    return module if type(module) is nn.Linear else None


def _load_heads(model: nn.Module, heads: dict[str, torch.Tensor], directory: Path) -> None:
    current = model.state_dict()
    for key, value in heads.items():
        if current[key].shape != value.shape:
            raise CheckpointError(
                f"{directory / PEFT_WEIGHTS}: {key!r} has shape {tuple(value.shape)}, the model's "
                f"{tuple(current[key].shape)} (a head of another size)"
            )
    model.load_state_dict(heads, strict=False)
