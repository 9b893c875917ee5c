"""from_pretrained / save_pretrained: local directories and hub names, t2t and Hugging Face formats.

A t2t directory holds `t2t_config.json` and `model.safetensors` in t2t's own weight names; a Hugging
Face directory holds `config.json` and HF weight names. `save_pretrained` writes the HF format whenever
the architecture has a transformers equivalent, so transformers can load what t2t saves; either format
may be sharded (`max_shard_size`), and `generation_config.json` holds the model's generation defaults.

Loading builds the model on the meta device and puts each weight read from the files into it as it is
(in the dtype asked for): no throw-away initialised model, no second copy of the weights, so a
checkpoint loads in about its own size of memory.

Quantised models (`from_pretrained(..., quantize="int8-dynamic")`, t2t.model.quantize) save in t2t's
format with `t2t_quantization.json` beside the weights (the mode and the int8 layers); loading such a
directory puts the int8 weights back as they were saved, without quantising anything again.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from t2t.config import GenerationConfig, ModelConfig
from t2t.errors import CheckpointError, ConfigError, T2TError
from t2t.interop.hf import (
    SAFETENSORS,
    SAFETENSORS_INDEX,
    config_from_hf,
    convert_from_hf,
    family_for_config,
    family_for_model_type,
    read_hf_config,
    read_state_dict,
    save_hf,
    write_safetensors,
)
from t2t.model import weights
from t2t.model.build import check_model_fits, empty_model, load_weights
from t2t.model.models import T2TModel
from t2t.model.quantize import as_mode, empty_quantized, quantization_of, quantize_model, quantized_layers
from t2t.peft.files import has_adapter, load_adapter
from t2t.peft.inject import merge
from t2t.utils import delegates
from t2t.utils.hub_files import TOKENIZER_FILES, resolve
from t2t.utils.io import atomic_write_text

T2T_CONFIG = "t2t_config.json"
WEIGHTS = SAFETENSORS
GENERATION_CONFIG = "generation_config.json"
QUANTIZATION = "t2t_quantization.json"  # a quantised model's mode and int8 layers (t2t format only)
# dtype names from_pretrained takes besides torch dtypes ("auto": the dtype the weights are stored in).
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | str | None:
    """A torch floating dtype, "auto", or None, from a dtype or its name ("bfloat16", "torch.float16",
    "bf16", ...)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
            raise ConfigError(
                f"dtype={dtype} is not a floating-point dtype; use float32, bfloat16 or float16"
            )
        return dtype
    if isinstance(dtype, str):
        name = dtype.strip().lower().removeprefix("torch.")
        if name == "auto":
            return "auto"
        if name in DTYPES:
            return DTYPES[name]
    raise ConfigError(
        f"dtype={dtype!r} is not one of float32, bfloat16, float16 (torch dtypes or their names) or 'auto'"
    )


def from_pretrained(
    name_or_path: str | Path,
    *,
    dtype: torch.dtype | str | None = None,
    quantize: str | None = None,
    revision: str | None = None,
    check_finite: bool = True,
    adapter: bool = True,
) -> T2TModel:
    """Load a t2t or Hugging Face checkpoint as a t2t model, in fp32 unless dtype says otherwise
    (torch.bfloat16 / "bfloat16" / "bf16", ..., or "auto": the dtype the weights are stored in).

    quantize: "int8-dynamic" (or "int8") / "int8-weight-only": the linear layers, the token embedding
    and the vocabulary projection become int8 (t2t.model.quantize), after loading in dtype, which stays
    the dtype of everything else and of the computation around the int8 products. A directory saved
    from a quantised model loads quantised without quantize= (asking for another mode is refused).

    adapter: apply an adapter saved beside the weights (a LoRA / adapter run's checkpoint, t2t.peft),
    LoRA folded into the weights; False: the base model alone.

    check_finite: refuse weights holding NaN or infinity (a diverged run's), which would load and
    then answer nothing; one pass over the weights, cheap beside reading them.
    """
    target = as_dtype(dtype)
    mode = as_mode(quantize)
    estimate = target if isinstance(target, torch.dtype) else None  # for the memory check
    directory = resolve(name_or_path, revision)
    saved = _read_quantization(directory)
    if saved is not None and mode is not None and mode != saved["mode"]:
        raise CheckpointError(
            f"{directory} holds a model quantised as {saved['mode']}; it cannot become {mode} without its "
            "float weights: load the float checkpoint with quantize=" + repr(mode)
        )
    hf_config: dict[str, Any] | None = None
    if saved is not None and not (directory / T2T_CONFIG).is_file():
        raise CheckpointError(
            f"{directory}: {QUANTIZATION} without {T2T_CONFIG}; a quantised model saves in t2t's format"
        )
    if (directory / T2T_CONFIG).is_file():
        cfg = ModelConfig.load(directory / T2T_CONFIG)
        check_model_fits(cfg, dtype=estimate)  # refuse a config too large before reading any weight
        state, missing = _read_native(directory), []
    elif (directory / "config.json").is_file():
        hf_config = read_hf_config(directory)
        declared = config_from_hf(hf_config, str(directory))  # an unknown family or bad field: refused here
        check_model_fits(declared, dtype=estimate)  # before reading (or converting) any weight
        cfg, state, missing = convert_from_hf(
            hf_config, read_state_dict(directory), where=str(directory), cfg=declared
        )
    else:
        raise CheckpointError(f"{directory}: neither {T2T_CONFIG} nor config.json; not a model checkpoint")
    if target == "auto":  # the dtype the weights are stored in
        floats = (
            t for k, t in state.items() if t.is_floating_point() and not (saved and k.endswith(".scale"))
        )
        target = next((t.dtype for t in floats), torch.float32)  # (int8 layers' scales are float32)
    target = target if isinstance(target, torch.dtype) else torch.float32
    model = empty_model(cfg, target)  # refuses a config too large for the memory; allocates nothing
    if saved is not None:  # empty int8 layers where the saved ones go: nothing is quantised again
        try:
            empty_quantized(model, saved["mode"], saved["layers"], target)
        except ConfigError as err:
            raise CheckpointError(f"{directory / QUANTIZATION}: {err}") from None
    mismatch = weights.find_shape_mismatch(model, state)
    if mismatch is not None:
        raise CheckpointError(_mismatch_line(directory, mismatch, hf_config))
    if check_finite:
        _check_finite(state, str(directory))
    # Fills any head the checkpoint lacks (e.g. the NSP head of a BertForMaskedLM) as build_model would.
    result = load_weights(model, state, dtype=target)
    absent = [k for k in result.missing_keys if k not in missing]
    if absent or result.unexpected_keys:
        bad = (absent or result.unexpected_keys)[0]
        raise CheckpointError(f"{directory}: weights do not match the config (first mismatch: {bad!r})")
    model.missing_weights = missing  # type: ignore[attr-defined]
    model.generation_config = _read_generation_config(directory, cfg)
    if adapter and has_adapter(directory):
        if saved is not None:
            raise CheckpointError(f"{directory}: an adapter beside quantised weights cannot be merged")
        merge(load_adapter(model, directory))  # t2t.peft: the embedded adapter, LoRA merged
    if mode is not None and saved is None:
        quantize_model(model, mode)  # layer by layer: each float weight is freed as its int8 one is made
    model.eval()
    return model


def _read_quantization(directory: Path) -> dict[str, Any] | None:
    """The quantisation a directory was saved with ({"mode", "layers"}), or None."""
    path = directory / QUANTIZATION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mode = as_mode(data["mode"])
        layers = data["layers"]
        if mode is None or not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ValueError("layers should be a list of layer names")
    except (OSError, KeyError, TypeError, ValueError) as err:  # JSON and ConfigError are ValueErrors
        raise CheckpointError(f"{path}: not a t2t quantisation file ({err})") from None
    return {"mode": mode, "layers": layers}


def _check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """weights.check_finite, looking at a million values at a time: its whole-tensor test would take
    temporaries of about twice the largest weight, more than the loading itself needs."""
    chunk = 1 << 20
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        flat = tensor.reshape(-1)
        if not all(bool(torch.isfinite(flat[i : i + chunk]).all()) for i in range(0, flat.numel(), chunk)):
            weights.check_finite({key: tensor}, where)  # raises, naming the weight and what it holds


def _mismatch_line(directory: Path, m: weights.ShapeMismatch, hf_config: dict[str, Any] | None) -> str:
    """A weight of another shape than the config builds: which, both shapes, and the config field."""
    config_file = directory / ("config.json" if hf_config is not None else T2T_CONFIG)
    line = (
        f"{directory}: weight {m.key!r} has shape {list(m.found)} in the checkpoint but the config "
        f"builds {list(m.expected)}"
    )
    if m.field is None:
        return f"{line}; the weights and {config_file} do not belong together"
    key = _config_key(m.field, m.current, m.value, hf_config)
    if m.value is None:
        return f"{line}: check {key}={m.current} in {config_file}, the likely cause"
    return (
        f"{line}: {config_file} says {key}={m.current} but the weights were made with {key}={m.value}; "
        f"set it back to {m.value}"
    )


def _config_key(field: str, current: int | None, value: int | None, hf_config: dict[str, Any] | None) -> str:
    """The name of t2t's config field in the checkpoint's own config file (config.json names d_ff
    n_inner for GPT-2, intermediate_size for BERT and Llama)."""
    if hf_config is None or current is None:
        return field
    try:  # which key of config.json changes with the field
        family = family_for_model_type(hf_config.get("model_type", ""))
        cfg = family.config_from_hf(hf_config)
        before = family.config_to_hf(cfg)
        after = family.config_to_hf(cfg.replace(**{field: value if value is not None else 2 * current}))
    except (T2TError, KeyError, TypeError):
        return field
    changed = [k for k in before if before[k] != after.get(k) and k in hf_config]
    return changed[0] if changed else field


def _read_native(directory: Path) -> dict[str, torch.Tensor]:
    if not (directory / WEIGHTS).is_file() and not (directory / SAFETENSORS_INDEX).is_file():
        raise CheckpointError(f"{directory}: {WEIGHTS} is missing")
    return dict(read_state_dict(directory))


def _read_generation_config(directory: Path, cfg: ModelConfig) -> GenerationConfig:
    """generation_config.json as the model's generation defaults. Options t2t does not implement are
    ignored with a warning; ids equal to the model config's stay implicit (None: the model's)."""
    path = directory / GENERATION_CONFIG
    if not path.is_file():
        return GenerationConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: should hold a JSON object, found {type(data).__name__}")
    start = data.get("decoder_start_token_id")
    if cfg.arch == "encoder-decoder" and start is not None and start != cfg.decoder_start_id:
        warnings.warn(
            f"{path}: decoder_start_token_id={start} differs from the model's {cfg.decoder_start_id}; "
            "t2t starts from the model config's",
            stacklevel=3,
        )
    try:
        values = GenerationConfig.hf_values(data, strict=False, where=str(path))
        if "eos_token_id" in values and values["eos_token_id"] in (cfg.eos_id, [cfg.eos_id]):
            del values["eos_token_id"]
        if "pad_token_id" in values and values["pad_token_id"] == cfg.pad_id:
            del values["pad_token_id"]
        return GenerationConfig.from_dict(values)
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _write_generation_config(model: T2TModel, directory: Path, defaults: Any | None = None) -> None:
    """generation_config.json when the generation defaults (the model's unless given) are not t2t's,
    with the model's special ids as transformers writes them (its generate reads them there); else none
    (an older one is removed, as it would no longer describe the model)."""
    path = directory / GENERATION_CONFIG
    defaults = model.generation_config if defaults is None else defaults
    if not isinstance(defaults, GenerationConfig):  # a transformers config or a dict assigned by a user
        defaults = GenerationConfig.from_hf(defaults, where="model.generation_config")
    changed = defaults.to_hf()
    if not changed:
        if path.is_file():
            path.unlink()
        return
    cfg = model.config
    ids = {
        "bos_token_id": cfg.bos_id,
        "decoder_start_token_id": cfg.decoder_start_id if cfg.arch == "encoder-decoder" else None,
        "eos_token_id": cfg.eos_id,
        "pad_token_id": cfg.pad_id,
    }
    data = {**{k: v for k, v in ids.items() if v is not None}, **changed}
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_pretrained(
    model: T2TModel,
    directory: str | Path,
    *,
    format: str = "auto",
    max_shard_size: int | str | None = None,
    generation_config: GenerationConfig | None = None,
) -> Path:
    """Write model weights and config (and generation_config.json for non-default generation settings:
    `generation_config`, else the model's); each file appears whole or not at all. max_shard_size
    ("5GB", "500MB", or bytes) writes shards and an index as transformers does."""
    if format not in ("auto", "hf", "t2t"):
        raise ConfigError(f"format={format!r} is not one of auto, hf, t2t")
    directory = Path(directory)
    cfg = model.config
    mode = quantization_of(model)
    if mode is not None and format == "hf":
        raise ConfigError(
            f"a quantised model ({mode}) saves in t2t's format only (format='t2t' or 'auto'): transformers "
            "does not read t2t's int8 layers"
        )
    state = dict(model.state_dict())
    quantization = directory / QUANTIZATION
    if mode is not None:
        write_safetensors(
            directory, state, max_shard_size=max_shard_size, total_parameters=model.num_parameters()
        )
        cfg.save(directory / T2T_CONFIG)
        layers = quantized_layers(model)
        atomic_write_text(quantization, json.dumps({"mode": mode, "layers": layers}, indent=2) + "\n")
        stale = directory / "config.json"
    elif format == "hf" or (format == "auto" and family_for_config(cfg) is not None):
        save_hf(cfg, state, directory, max_shard_size=max_shard_size, total_parameters=model.num_parameters())
        stale = directory / T2T_CONFIG
    else:
        write_safetensors(
            directory, state, max_shard_size=max_shard_size, total_parameters=model.num_parameters()
        )
        cfg.save(directory / T2T_CONFIG)
        stale = directory / "config.json"
    if stale.exists():  # a directory re-saved in the other format must not keep the old config
        stale.unlink()
    if mode is None and quantization.exists():  # nor the quantisation of a model saved there before
        quantization.unlink()
    _write_generation_config(model, directory, generation_config)
    return directory


delegates.provide("from_pretrained", from_pretrained)  # T2TModel.from_pretrained(...)
delegates.provide("save_pretrained", save_pretrained)  # model.save_pretrained(...)


__all__ = [
    "DTYPES",
    "QUANTIZATION",
    "TOKENIZER_FILES",
    "T2TError",
    "as_dtype",
    "from_pretrained",
    "resolve",
    "save_pretrained",
]
