"""Read and write Hugging Face checkpoint directories (config.json + safetensors or .bin, sharded or not).

Weights are read lazily (`CheckpointTensors`): a tensor is read from its file when the conversion asks
for it, so a loader holds each weight once, not the whole file beside what it built from it. Sharded
safetensors are written as transformers writes them (`model-00001-of-00003.safetensors` and
`model.safetensors.index.json`), by huggingface_hub's splitter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{directory}: no config.json; not a Hugging Face checkpoint directory"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds a {type(data).__name__}, not a JSON object of config fields")
    return data


def config_from_hf(hf_config: dict[str, Any], where: str) -> ModelConfig:
    """The t2t config of a transformers config.json; a field of the wrong type or value is one
    CheckpointError naming the file, not a TypeError deep in the conversion."""
    family = family_for_model_type(hf_config.get("model_type", ""))
    try:
        return family.config_from_hf(hf_config)
    except ConfigError as err:
        raise CheckpointError(f"{where}: {err}") from None
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise CheckpointError(
            f"{where}: a field of config.json has the wrong type or value ({type(err).__name__}: {err})"
        ) from None


SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
_SHARD = re.compile(r"(model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)")


class CheckpointTensors(Mapping[str, torch.Tensor]):
    """The tensors of a checkpoint's weight files by name, each read from its file when asked for (a
    new tensor every time, which the caller owns). Safetensors files are read with pread(2) rather than
    mapped, so a loaded weight is memory of its own and the file's pages are not counted twice."""

    def __init__(self, readers: dict[str, Callable[[], torch.Tensor]]) -> None:
        self._readers = readers
        self._set: dict[str, torch.Tensor] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        if key in self._set:
            return self._set[key]
        return self._readers[key]()

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self._set[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._set or key in self._readers

    def __iter__(self) -> Iterator[str]:
        yield from self._readers
        yield from (k for k in self._set if k not in self._readers)

    def __len__(self) -> int:
        return len(self._readers) + sum(k not in self._readers for k in self._set)

    def renamed(self, rename: Callable[[dict[str, str]], dict[str, str]]) -> CheckpointTensors:
        """The same tensors under new names: `rename` maps a {name: name} dict to a {new name: name} one
        (a family's `normalize`, which renames keys and passes values through)."""
        names = rename({key: key for key in self})
        return CheckpointTensors({new: self._reader(old) for new, old in names.items()})

    def _reader(self, key: str) -> Callable[[], torch.Tensor]:
        return lambda: self[key]


def read_state_dict(directory: Path) -> CheckpointTensors:
    """All tensors of a checkpoint directory: model.safetensors, pytorch_model.bin, or their shards."""
    for index_name in (SAFETENSORS_INDEX, BIN_INDEX):
        index = directory / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise CheckpointError(
                    f"{index}: not a checkpoint index ({type(err).__name__}: {err})"
                ) from None
            readers: dict[str, Callable[[], torch.Tensor]] = {}
            for shard in sorted(set(weight_map.values())):
                readers.update(_file_readers(directory / shard))
            return CheckpointTensors(readers)
    for name in (SAFETENSORS, BIN):
        if (directory / name).is_file():
            return CheckpointTensors(_file_readers(directory / name))
    raise CheckpointError(f"{directory}: no {SAFETENSORS} or {BIN} (nor a sharded index)")


def _file_readers(path: Path) -> dict[str, Callable[[], torch.Tensor]]:
    if path.suffix == ".safetensors":
        try:
            with _open_safetensors(path) as f:
                keys = list(f.keys())
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{path}: cannot read safetensors file ({err})") from None
        return {key: (lambda key=key: _read_tensor(path, key)) for key in keys}
    state = _load_bin(path)  # a pickle archive is read whole (torch's weights-only unpickler)
    return {key: (lambda tensor=tensor: tensor) for key, tensor in state.items()}


def _open_safetensors(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: the weight file is missing")
    try:
        return safe_open(str(path), framework="pt", backend="pread")
    except TypeError:  # safetensors < 0.8 has no pread backend: memory-mapped, copied below
        return safe_open(str(path), framework="pt")


def _read_tensor(path: Path, key: str) -> torch.Tensor:
    try:
        with _open_safetensors(path) as f:
            tensor = f.get_tensor(key)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read tensor {key!r} ({err})") from None
    # A memory-mapped tensor (old safetensors) would keep the whole file mapped: own its memory instead.
    return tensor if _owns_memory(tensor) else tensor.clone()


def _owns_memory(tensor: torch.Tensor) -> bool:
    return tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read PyTorch weights ({err})") from None


_SIZE_UNITS = {
    "TB": 10**12,
    "GB": 10**9,
    "MB": 10**6,
    "KB": 10**3,
}  # huggingface_hub's, which transformers uses


def parse_shard_size(size: int | str) -> int:
    """ "5GB" / "500MB" / "40KB" (TB, GB, MB, KB: decimal units, as transformers reads them) or bytes."""
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise ConfigError(f"max_shard_size={size!r} should be bytes or a size such as '5GB' or '500MB'")
    value: float = size if isinstance(size, int) else -1
    if isinstance(size, str):
        text = size.strip()
        unit = _SIZE_UNITS.get(text[-2:].upper())
        try:
            value = float(text[:-2].strip()) * unit if unit else float("nan")
        except ValueError:
            value = float("nan")
        if not math.isfinite(value):  # not a size (NaN), or an infinite one
            raise ConfigError(
                f"max_shard_size={size!r} is not a size; write it as '5GB', '500MB', '40KB' or a number of bytes"
            )
    if value < 1:
        raise ConfigError(f"max_shard_size={size!r} should be at least 1 byte")
    return int(value)


def write_safetensors(
    directory: Path,
    state: dict[str, torch.Tensor],
    *,
    max_shard_size: int | str | None = None,
    total_parameters: int | None = None,
) -> list[Path]:
    """Write state as model.safetensors, or (max_shard_size) as shards with an index laid out exactly as
    transformers writes them; each file is atomic, and weight files of an earlier save that the new one
    does not use are removed (an index left behind would be read instead of the new weights)."""
    from huggingface_hub import split_torch_state_dict_into_shards

    directory.mkdir(parents=True, exist_ok=True)
    limit = parse_shard_size(max_shard_size) if max_shard_size is not None else None
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    split = split_torch_state_dict_into_shards(
        tensors, filename_pattern="model{suffix}.safetensors", max_shard_size=limit or 2**63
    )
    written = []
    for filename, names in split.filename_to_tensors.items():
        shard = {name: tensors[name] for name in names}
        path = directory / filename
        atomic_write_with(path, lambda p, shard=shard: save_file(shard, str(p), metadata={"format": "pt"}))
        written.append(path)
    if split.is_sharded:
        metadata = dict(split.metadata)
        if total_parameters is not None:
            metadata = {"total_parameters": total_parameters, **metadata}
        index = {"metadata": metadata, "weight_map": split.tensor_to_filename}
        path = directory / SAFETENSORS_INDEX
        atomic_write_text(path, json.dumps(index, indent=2, sort_keys=True) + "\n")
        written.append(path)
    keep = {p.name for p in written}
    for old in directory.iterdir():
        stale = old.name in (SAFETENSORS, SAFETENSORS_INDEX, BIN, BIN_INDEX) or _SHARD.fullmatch(old.name)
        if stale and old.name not in keep and old.is_file():
            old.unlink()
    return written


def convert_from_hf(
    hf_config: dict[str, Any],
    hf_state: Mapping[str, torch.Tensor],
    *,
    where: str = "checkpoint",
    cfg: ModelConfig | None = None,
) -> tuple[ModelConfig, dict[str, torch.Tensor], list[str]]:
    """HF config + state dict -> t2t config, t2t state dict, and the t2t keys left to initialise. cfg: the
    t2t config of hf_config when the caller has made it already (`family.config_from_hf`)."""
    family = family_for_model_type(hf_config.get("model_type", ""))
    if cfg is None:
        cfg = config_from_hf(hf_config, where)
    if isinstance(hf_state, CheckpointTensors):  # rename without reading: normalize passes values through
        hf_state = hf_state.renamed(family.normalize)
    else:
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


def _reconcile_tying(cfg: ModelConfig, family: Family, hf_state: Any) -> ModelConfig:
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


def save_hf(
    cfg: ModelConfig,
    state: dict[str, torch.Tensor],
    directory: Path,
    *,
    max_shard_size: int | str | None = None,
    total_parameters: int | None = None,
) -> None:
    hf_config, hf_state = convert_to_hf(cfg, state)
    write_safetensors(directory, hf_state, max_shard_size=max_shard_size, total_parameters=total_parameters)
    atomic_write_text(directory / "config.json", json.dumps(hf_config, indent=2) + "\n")
