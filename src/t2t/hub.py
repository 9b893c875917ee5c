"""from_pretrained / save_pretrained: local directories and hub names, t2t and Hugging Face formats.

A t2t directory holds `t2t_config.json` and `model.safetensors` in t2t's own weight names; a Hugging
Face directory holds `config.json` and HF weight names. `save_pretrained` writes the HF format whenever
the architecture has a transformers equivalent, so transformers can load what t2t saves.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from t2t.config import ModelConfig
from t2t.errors import CheckpointError, ConfigError, T2TError
from t2t.interop.hf import (
    convert_from_hf,
    family_for_config,
    family_for_model_type,
    read_hf_config,
    read_state_dict,
    save_hf,
)
from t2t.model.build import model_class
from t2t.model.models import T2TModel
from t2t.utils.io import atomic_write_with

T2T_CONFIG = "t2t_config.json"
WEIGHTS = "model.safetensors"
_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt"]
TOKENIZER_FILES = ["*.json", "*.model", "*.txt"]


def resolve(name_or_path: str | Path, revision: str | None = None, patterns: list[str] | None = None) -> Path:
    """A local directory as it is; anything else is a hub repo id, downloaded (or found in the cache).
    `patterns` limits the download (e.g. TOKENIZER_FILES: a tokenizer needs no weights)."""
    patterns = patterns or _HUB_FILES
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds it")
    name = str(name_or_path)
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise CheckpointError(f"{name}: no such directory")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=patterns))
    except Exception as err:
        try:  # the download failed (offline?); the local cache may still have it
            return Path(
                snapshot_download(name, revision=revision, allow_patterns=_HUB_FILES, local_files_only=True)
            )
        except Exception:
            pass
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = "HF_HUB_OFFLINE=1 is set" if offline else f"{type(err).__name__}"
        raise CheckpointError(
            f"cannot fetch {name!r} from the Hugging Face hub ({why}); if you are offline, pass a local "
            "directory with config.json and model.safetensors (e.g. one written by save_pretrained)"
        ) from None


def from_pretrained(
    name_or_path: str | Path, *, dtype: torch.dtype | None = None, revision: str | None = None
) -> T2TModel:
    """Load a t2t or Hugging Face checkpoint as a t2t model (fp32 unless dtype says otherwise)."""
    directory = resolve(name_or_path, revision)
    if (directory / T2T_CONFIG).is_file():
        cfg = ModelConfig.load(directory / T2T_CONFIG)
        state, missing = _read_native(directory), []
    elif (directory / "config.json").is_file():
        hf_config = read_hf_config(directory)
        family_for_model_type(
            hf_config.get("model_type", "")
        )  # refuse an unknown family before reading weights
        cfg, state, missing = convert_from_hf(hf_config, read_state_dict(directory), where=str(directory))
    else:
        raise CheckpointError(f"{directory}: neither {T2T_CONFIG} nor config.json; not a model checkpoint")
    model = model_class(cfg)(cfg)
    model.init_weights()  # fills any head the checkpoint lacks (e.g. the NSP head of a BertForMaskedLM)
    result = model.load_state_dict(state, strict=False)
    absent = [k for k in result.missing_keys if k not in missing]
    if absent or result.unexpected_keys:
        bad = (absent or result.unexpected_keys)[0]
        raise CheckpointError(f"{directory}: weights do not match the config (first mismatch: {bad!r})")
    model.missing_weights = missing  # type: ignore[attr-defined]
    model.eval()
    return model.to(dtype) if dtype is not None else model.float()


def _read_native(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{directory}: {WEIGHTS} is missing")
    try:
        return load_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read safetensors file ({err})") from None


def save_pretrained(model: T2TModel, directory: str | Path, *, format: str = "auto") -> Path:
    """Write model weights and config; each file appears whole or not at all."""
    if format not in ("auto", "hf", "t2t"):
        raise ConfigError(f"format={format!r} is not one of auto, hf, t2t")
    directory = Path(directory)
    cfg = model.config
    state = {k: v for k, v in model.state_dict().items()}
    if format == "hf" or (format == "auto" and family_for_config(cfg) is not None):
        save_hf(cfg, state, directory)
        stale = directory / T2T_CONFIG
    else:
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        atomic_write_with(
            directory / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": "pt"})
        )
        cfg.save(directory / T2T_CONFIG)
        stale = directory / "config.json"
    if stale.exists():  # a directory re-saved in the other format must not keep the old config
        stale.unlink()
    return directory


__all__ = ["T2TError", "from_pretrained", "resolve", "save_pretrained"]
