"""The built-in fine-tuning recipes (configs/finetune/*.yaml, ordinary training configs) and the
recipe vocabulary of t2t 0.1, read as deprecated aliases of the training config's names.

t2t 0.1 recipes had their own keys (`learning_rate`, `output_dir`, `task: span-qa`, `model_overrides`,
...). They still load, through `legacy_recipe` (a whole file) and `legacy_override` (one `key=value`),
each with a warning that names the new key; they go in the next release.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from t2t.configbase import closest, parse_override_value
from t2t.errors import ConfigError
from t2t.presets import PRESETS
from t2t.utils.resources import configs_dir, shipped

RECIPE_DIR = configs_dir() / "finetune"

# t2t 0.1 recipe key -> training config key (dotted); values pass through unchanged.
_RENAMES = {
    "transform": "data.options.transform",
    "model_overrides": "model.overrides",
    "tokenizer": "model.tokenizer",
    "tokenizer_vocab_size": "model.tokenizer_vocab_size",
    "max_length": "data.max_input_length",
    "doc_stride": "data.options.doc_stride",
    "max_query_length": "data.options.max_query_length",
    "epochs": "epochs",
    "max_steps": "max_steps",
    "batch_size": "data.batch_size",
    "eval_batch_size": "eval.batch_size",
    "learning_rate": "optim.lr",
    "weight_decay": "optim.weight_decay",
    "grad_clip": "optim.grad_clip",
    "warmup": "schedule.warmup_ratio",
    "freeze_encoder": "model.freeze_encoder",
    "lm_loss_weight": "model.overrides.lm_loss_weight",
    "mask_probability": "data.options.mlm_probability",
    "metrics": "eval.metrics",
    "seed": "seed",
    "device": "device",
    "output_dir": "run_dir",
    "save_format": "checkpoint.format",
    "data.limit_test": "data.limit_eval",
}
_DATA_KEYS = ("train", "test", "text_field", "pair_field", "label_field", "limit_train")
# What a t2t 0.1 recipe meant when it left a key out.
_LEGACY_DEFAULTS = {
    "epochs": 3.0,
    "batch_size": 32,
    "eval_batch_size": 64,
    "learning_rate": 1e-3,
    "warmup": 0.1,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "max_length": 128,
    "model": "bert-tiny",
    "task": "classification",
    "tokenizer_vocab_size": 2000,
}
_LEGACY_ONLY = {"name", "task", "family", "model", *_RENAMES, "data"}


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def recipe_path(name_or_file: str | Path) -> Path:
    """A recipe by name (configs/finetune/NAME.yaml) or by file."""
    path = shipped(name_or_file)
    if path.is_file():
        return path
    names = recipe_names()
    if str(name_or_file) not in names:
        raise ConfigError(
            f"no recipe {str(name_or_file)!r}{closest(str(name_or_file), names)}; "
            f"use a YAML file or one of {', '.join(names)}"
        )
    return RECIPE_DIR / f"{name_or_file}.yaml"


_SHARED = {"epochs", "max_steps", "seed", "device"}  # keys both vocabularies have at the top
_MARKERS = ({"name", "task", "family"} | set(_RENAMES)) - _SHARED


def is_legacy(data: dict[str, Any]) -> bool:
    """A t2t 0.1 recipe: a key only 0.1 had at the top (task, learning_rate, ...), or `model` a name."""
    if not isinstance(data, dict):
        return False
    return bool(_MARKERS & set(data)) or isinstance(data.get("model"), str)


def legacy_recipe(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A t2t 0.1 recipe as a training config mapping (with 0.1's defaults made explicit)."""
    unknown = sorted(set(data) - _LEGACY_ONLY)
    if unknown:
        raise ConfigError(f"{where}: unknown recipe key {unknown[0]!r}{closest(unknown[0], _LEGACY_ONLY)}")
    _warn(f"{where} is a t2t 0.1 recipe; its keys are read as the training config's (see docs/finetuning.md)")
    merged = {**_LEGACY_DEFAULTS, **data}
    out: dict[str, Any] = {
        "schedule": {"name": "linear"},
        "optim": {"name": "adamw"},
        "eval": {"split": "test"},
        "checkpoint": {"format": "t2t"},
    }
    if "name" in merged:
        out["run_dir"] = f"runs/{merged['name']}"
    for key, value in merged.items():
        if key in ("name", "family"):
            continue
        if key == "task":
            _put(out, "data.objective", value.replace("-", "_"))
        elif key == "model":
            _put(out, *_model_key(value))
        elif key == "data":
            for field, item in (value or {}).items():
                if field not in (*_DATA_KEYS, "limit_test"):
                    raise ConfigError(f"{where}: unknown recipe key 'data.{field}'")
                _put(out, _RENAMES.get(f"data.{field}", f"data.{field}"), item)
        else:
            _put(out, _RENAMES[key], value)
    return out


def legacy_override(item: str) -> list[str]:
    """A t2t 0.1 `key=value` override as the training config's (with a warning); others unchanged."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep:
        return [item]
    if key == "model":
        new, _ = _model_key(str(parse_override_value(raw)))
        other = "model.checkpoint" if new == "model.preset" else "model.preset"
        _warn(f"{key}= is now {new}=")
        return [f"{other}=null", f"{new}={raw}"]
    if key == "task":
        _warn("task= is now data.objective=")
        return [f"data.objective={raw.replace('-', '_')}"]
    if key in _RENAMES and _RENAMES[key] != key:
        _warn(f"{key}= is now {_RENAMES[key]}=")
        return [f"{_RENAMES[key]}={raw}"]
    return [item]


def _model_key(value: str) -> tuple[str, str]:
    return ("model.preset", value) if value in PRESETS else ("model.checkpoint", value)


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for part in path:
        tree = tree.setdefault(part, {})
    tree[last] = value


def _warn(message: str) -> None:
    logging.getLogger("t2t").warning("deprecated: %s", message)
