"""The model of an experiment's run: a preset, ModelConfig fields and a few extras, with the vocabulary
and special ids the data dictates.

Extras (keys of a model section that are not ModelConfig fields):
    preset               the t2t.presets shape to start from (default t5-tiny)
    n_layers             the layers of every stack (encoder and decoder alike)
    residual             standard | none | scaled (t2t.experiments.surgery), residual_scale: its weight
    match_parameters_of  {field: value}: d_ff moved so the model has as many parameters as the model
                         with those fields (equal-parameter comparisons, e.g. MHA vs MQA)
"""

from __future__ import annotations

from typing import Any

import torch

from t2t.configbase import closest
from t2t.errors import ConfigError

MODEL_EXTRAS = ("preset", "n_layers", "residual", "residual_scale", "match_parameters_of")
RESIDUAL_MODES = ("standard", "none", "scaled")
MAX_LAYERS = 1000


def model_fields(model: dict[str, Any], where: str = "model") -> dict[str, Any]:
    """The ModelConfig fields of a model section (its extras taken out); unknown keys are refused."""
    from t2t.config import ModelConfig
    from t2t.presets import preset_names

    fields = {k: v for k, v in model.items() if k not in MODEL_EXTRAS}
    names = ModelConfig.field_names()
    for key in fields:
        if key not in names:
            raise ConfigError(f"{where}: unknown model key {key!r}{closest(key, [*names, *MODEL_EXTRAS])}")
    name = model.get("preset")
    if name is not None and name not in preset_names():
        raise ConfigError(f"{where}: unknown preset {name!r}{closest(str(name), preset_names())}")
    layers = model.get("n_layers")
    if layers is not None and (
        isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= MAX_LAYERS
    ):
        raise ConfigError(f"{where}: n_layers={layers!r} should be an integer from 1 to {MAX_LAYERS}")
    residual = model.get("residual", "standard")
    if residual not in RESIDUAL_MODES:
        raise ConfigError(f"{where}: residual={residual!r} is not one of {', '.join(RESIDUAL_MODES)}")
    scale = model.get("residual_scale")
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale < float("inf")
    ):
        raise ConfigError(f"{where}: residual_scale={scale!r} should be a finite number >= 0")
    reference = model.get("match_parameters_of")
    if reference is not None and not isinstance(reference, dict):
        raise ConfigError(
            f"{where}: match_parameters_of should be a mapping of model fields, e.g. {{n_kv_heads: null}}"
        )
    return fields


def arch_of(model: dict[str, Any]) -> str:
    from t2t.presets import PRESETS

    return model.get("arch") or PRESETS[model.get("preset") or "t5-tiny"]["arch"]


def model_config(model: dict[str, Any], data: Any, tokenizer: Any, where: str = "model") -> Any:
    """The ModelConfig of a model section: a preset, its fields, `n_layers` for every stack, ids and
    vocabulary from the data (synthetic: pad 0, EOS 1; text: the tokenizer's, or with none yet pad 0,
    EOS 1 and data.vocab_size, to check a spec), and with `match_parameters_of` a d_ff that gives the
    model as many parameters as the model with those fields."""
    from t2t.config import ModelConfig
    from t2t.presets import PRESETS

    fields = model_fields(model, where)
    base = dict(PRESETS[model.get("preset") or "t5-tiny"])
    if ("d_model" in fields or "n_heads" in fields) and "head_dim" not in fields and base.get("head_dim"):
        d_model, heads = fields.get("d_model", base["d_model"]), fields.get("n_heads", base["n_heads"])
        if isinstance(d_model, int) and isinstance(heads, int) and heads > 0:
            fields["head_dim"] = max(1, d_model // heads)
    config = {**base, **fields}
    arch = config["arch"]
    if model.get("n_layers") is not None:
        layers = int(model["n_layers"])
        config["n_encoder_layers"] = layers if arch != "decoder" else 0
        config["n_decoder_layers"] = layers if arch != "encoder" else 0
    if data.kind == "synthetic":
        config.update(vocab_size=data.vocab, pad_id=0, eos_id=1)
        start = 0
    elif tokenizer is None:
        config.update(vocab_size=data.vocab_size, pad_id=0, eos_id=1)
        start = 0
    else:
        config.update(vocab_size=tokenizer.model_vocab_size, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
        start = tokenizer.pad_id
    config["bos_id"] = None
    config["decoder_start_id"] = start if arch == "encoder-decoder" else None
    try:
        out = ModelConfig.from_dict(config)
        reference = model.get("match_parameters_of")
        if reference:
            out = _matched(out, out.replace(**reference))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return out


def parameters_of(config: Any) -> int:
    """The parameters of a model of `config`, counted on the meta device (nothing is allocated)."""
    from t2t.model.build import new_model

    with torch.device("meta"):
        return sum(p.numel() for p in new_model(config).parameters())


def _matched(config: Any, reference: Any) -> Any:
    """config with d_ff moved so that its parameters come as close as they can to the reference's."""
    target = parameters_of(reference)
    per_unit = parameters_of(config.replace(d_ff=config.d_ff + 1)) - parameters_of(config)
    d_ff = config.d_ff + round((target - parameters_of(config)) / max(per_unit, 1))
    return config.replace(d_ff=max(1, d_ff))
