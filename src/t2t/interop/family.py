"""What interop needs to know about one HF model family, gathered in one record."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from t2t.config import ModelConfig
from t2t.errors import CheckpointError
from t2t.interop.rules import Rule


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    architecture: str  # the transformers class written into config.json on save
    config_from_hf: Callable[[dict[str, Any]], ModelConfig]
    config_to_hf: Callable[[ModelConfig], dict[str, Any]]
    rules: Callable[[ModelConfig], list[Rule]]
    prefix: str = ""  # HF's base-model prefix ("bert.", "transformer.", "model.") for headless classes
    base_markers: tuple[str, ...] = ()  # key starts that show a headless checkpoint missing the prefix
    ignored: tuple[str, ...] = field(default=())  # regexes of HF keys that carry nothing new (tied copies)
    # (copy, source) HF keys that t2t keeps as one tensor: a checkpoint whose copy differs is refused.
    tied_copies: tuple[tuple[str, str], ...] = field(default=())

    def check_tied_copies(self, state: dict[str, torch.Tensor], where: str) -> None:
        """An ignored copy must really be a copy; else t2t would silently compute with the source."""
        for copy, source in self.tied_copies:
            if copy in state and source in state and not torch.equal(state[copy], state[source]):
                raise CheckpointError(
                    f"{where}: {copy} differs from {source} (untied weights); t2t's {self.name} "
                    f"shares one tensor for both and cannot load this checkpoint faithfully"
                )

    def normalize(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add the base-model prefix that headless classes (BertModel, GPT2Model) leave out, and rename
        the legacy gamma/beta of old TF-converted LayerNorms."""
        out = {}
        for key, value in state.items():
            if self.prefix and key.startswith(self.base_markers):
                key = self.prefix + key
            key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
            key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
            out[key] = value
        return out

    def is_ignored(self, key: str) -> bool:
        return any(re.search(pattern, key) for pattern in self.ignored)


def require(hf: dict[str, Any], key: str, family: str) -> Any:
    if key not in hf or hf[key] is None:
        raise CheckpointError(f"config.json of this {family} checkpoint has no {key!r}")
    return hf[key]


def unsupported(hf: dict[str, Any], family: str, checks: dict[str, Any]) -> None:
    """Refuse HF options that t2t's blocks do not implement, naming the option."""
    for key, allowed in checks.items():
        if key in hf and hf[key] not in (allowed if isinstance(allowed, tuple) else (allowed,)):
            raise CheckpointError(f"{family} checkpoint uses {key}={hf[key]!r}, which t2t does not support")


def first_id(value: Any) -> int | None:
    """HF ids may be an int, a list (several EOS ids) or None; t2t keeps one."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def special_ids(hf: dict[str, Any], defaults: dict[str, int | None]) -> dict[str, int | None]:
    """pad/eos/bos/decoder-start ids from an HF config; ids outside the vocabulary (which transformers
    only warns about) are dropped with a warning, the pad id falling back to 0."""
    vocab = hf.get("vocab_size", 0)
    out: dict[str, int | None] = {}
    for ours, theirs in (
        ("pad_id", "pad_token_id"),
        ("eos_id", "eos_token_id"),
        ("bos_id", "bos_token_id"),
        ("decoder_start_id", "decoder_start_token_id"),
    ):
        if ours not in defaults:
            continue
        value = first_id(hf.get(theirs, defaults[ours]))
        if value is not None and not 0 <= value < vocab:
            warnings.warn(
                f"config.json: {theirs}={value} is outside the vocabulary of {vocab}; ignored", stacklevel=3
            )
            value = None
        out[ours] = value
    if "pad_id" in out and out["pad_id"] is None:
        out["pad_id"] = out.get("eos_id") if out.get("eos_id") is not None else 0
    return out


def head_from_hf(hf: dict[str, Any], classes: dict[str, str], default: str) -> dict[str, Any]:
    """head / num_labels / label_names from an HF config's architectures, problem_type and id2label."""
    name = (hf.get("architectures") or [""])[0]
    heads = [head for head, cls in classes.items() if cls == name]
    head = heads[0] if heads else default
    id2label = hf.get("id2label") or {}
    num_labels = len(id2label) or hf.get("num_labels", 2)
    if head == "classification" and (hf.get("problem_type") == "regression" or num_labels == 1):
        head = "regression"
    names = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(num_labels)]
    custom = names != [f"LABEL_{i}" for i in range(num_labels)]
    return {
        "head": None if head == default else head,
        "num_labels": num_labels,
        "label_names": names if custom else None,
    }


def head_to_hf(cfg: Any, classes: dict[str, str]) -> dict[str, Any]:
    head = cfg.task_head
    names = cfg.label_names or [f"LABEL_{i}" for i in range(cfg.num_labels)]
    out: dict[str, Any] = {
        "architectures": [classes[head]],
        "id2label": {str(i): name for i, name in enumerate(names)},
        "label2id": {name: i for i, name in enumerate(names)},
    }
    if head in ("classification", "regression"):
        out["problem_type"] = "regression" if head == "regression" else "single_label_classification"
    return out
