"""Read and write Hugging Face checkpoint directories (config.json + safetensors or .bin, sharded or not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from t2t.config import ModelConfig
from t2t.errors import CheckpointError, ConfigError
from t2t.interop import bert, gpt2, llama, t5
from t2t.interop.family import Family
from t2t.interop.rules import hf_to_t2t, t2t_to_hf, used_hf_keys
from t2t.utils.io import atomic_write_text, atomic_write_with

FAMILIES: tuple[Family, ...] = (t5.FAMILY, bert.FAMILY, gpt2.FAMILY, llama.FAMILY)

# Fields that do not change what a saved model computes, so they need not survive a round trip.
_NOT_SAVED = ("init", "init_std", "dropout", "attention_dropout", "classifier_dropout", "lm_loss_weight")


def family_for_model_type(model_type: str) -> Family:
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES for t in f.model_types)
    raise CheckpointError(f"model_type={model_type!r} is not supported; t2t loads {known}")


def _comparable(cfg: ModelConfig) -> dict[str, Any]:
    unused = list(_NOT_SAVED)
    if cfg.position != "t5-relative":
        unused += ["relative_buckets", "relative_max_distance"]
    if cfg.position != "rope":
        unused.append("rope_theta")
    if cfg.position == "t5-relative":
        unused.append("max_positions")
    data = {k: v for k, v in cfg.to_dict().items() if k not in unused}
    data["n_kv_heads"], data["head_dim"] = cfg.kv_heads, cfg.dim_head
    return data


def family_for_config(cfg: ModelConfig) -> Family | None:
    """The HF family that can express cfg exactly (its config survives a round trip), or None."""
    for family in FAMILIES:
        try:
            back = family.config_from_hf(family.config_to_hf(cfg))
        except (CheckpointError, ConfigError, KeyError):
            continue
        if _comparable(back) == _comparable(cfg):
            return family
    return None


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{directory}: no config.json; not a Hugging Face checkpoint directory"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: model.safetensors, pytorch_model.bin, or their shards."""
    for index_name, loader in (
        ("model.safetensors.index.json", _load_safetensors),
        ("pytorch_model.bin.index.json", _load_bin),
    ):
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(loader(directory / shard))
            return state
    if (directory / "model.safetensors").is_file():
        return _load_safetensors(directory / "model.safetensors")
    if (directory / "pytorch_model.bin").is_file():
        return _load_bin(directory / "pytorch_model.bin")
    raise CheckpointError(f"{directory}: no model.safetensors or pytorch_model.bin (nor a sharded index)")


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read safetensors file ({err})") from None


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read PyTorch weights ({err})") from None


def convert_from_hf(
    hf_config: dict[str, Any], hf_state: dict[str, torch.Tensor], *, where: str = "checkpoint"
) -> tuple[ModelConfig, dict[str, torch.Tensor], list[str]]:
    """HF config + state dict -> t2t config, t2t state dict, and the t2t keys left to initialise."""
    family = family_for_model_type(hf_config.get("model_type", ""))
    try:
        cfg = family.config_from_hf(hf_config)
    except ConfigError as err:
        raise CheckpointError(f"{where}: {err}") from None
    hf_state = family.normalize(hf_state)
    family.check_tied_copies(hf_state, where)
    cfg = _reconcile_tying(cfg, family, hf_state)
    try:
        state, missing = hf_to_t2t(hf_state, family.rules(cfg), cfg)
    except KeyError as err:
        raise CheckpointError(
            f"{where}: weight {err.args[0]} is missing from the {family.name} checkpoint"
        ) from None
    used = used_hf_keys(family.rules(cfg), cfg)
    unexpected = [k for k in hf_state if k not in used and not family.is_ignored(k)]
    if unexpected:
        raise CheckpointError(
            f"{where}: {len(unexpected)} weights t2t does not know, e.g. {unexpected[0]!r}; "
            f"is this really a {family.architecture}?"
        )
    return cfg, state, missing


def _embedding_key(family: Family, cfg: ModelConfig) -> str:
    return next(r.hf[0] for r in family.rules(cfg) if r.t2t == "embed.weight")


def _reconcile_tying(cfg: ModelConfig, family: Family, hf_state: dict[str, torch.Tensor]) -> ModelConfig:
    """Trust the weights over the config: transformers v5 ties T5 heads unless the checkpoint has a
    distinct lm_head, and drops a tied lm_head from the files it saves."""
    embed = hf_state.get(_embedding_key(family, cfg))
    head = hf_state.get("lm_head.weight")
    if not cfg.has_decoder or embed is None:
        return cfg
    if cfg.tie_embeddings and head is not None and not torch.equal(head, embed):
        if cfg.scale_tied_logits:
            raise CheckpointError(
                "checkpoint scales logits like T5 but has an untied lm_head; t2t cannot express it"
            )
        return cfg.replace(tie_embeddings=False)
    if not cfg.tie_embeddings and head is None:
        hf_state["lm_head.weight"] = embed
    return cfg


def convert_to_hf(
    cfg: ModelConfig, state: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    family = family_for_config(cfg)
    if family is None:
        raise CheckpointError(
            "this architecture has no Hugging Face transformers equivalent; save it with format='t2t'"
        )
    return family.config_to_hf(cfg), t2t_to_hf(state, family.rules(cfg), cfg)


def save_hf(cfg: ModelConfig, state: dict[str, torch.Tensor], directory: Path) -> None:
    hf_config, hf_state = convert_to_hf(cfg, state)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in hf_state.items()}
    atomic_write_with(
        directory / "model.safetensors", lambda p: save_file(tensors, str(p), metadata={"format": "pt"})
    )
    atomic_write_text(directory / "config.json", json.dumps(hf_config, indent=2) + "\n")
