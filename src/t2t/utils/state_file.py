"""Nested training state (optimizer, scheduler, RNG, data position) in one safetensors file, no pickle.

`torch.save` / `torch.load` pickle, and unpickling a file runs whatever code the file names: a
checkpoint from someone else could do anything. Here the tensors go into safetensors and the rest of
the structure into a JSON document kept in the file's metadata, so reading a state file can only ever
produce tensors, numbers, strings, lists, tuples and dicts.

The JSON tree marks what JSON cannot say by itself with one-key objects:
    {"__tensor__": "t3"}                     a tensor stored under key t3
    {"__ndarray__": "t4", "dtype": "uint32"} a numpy array (stored as a tensor, dtype restored)
    {"__tuple__": [...]}                     a tuple (RNG states, Adam's betas)
    {"__items__": [[key, value], ...]}       a dict whose keys are not all strings (optimizer state)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from t2t.errors import CheckpointError

_META_KEY = "t2t_state"
_MARKS = ("__tensor__", "__ndarray__", "__tuple__", "__items__")


def save_state(state: Any, path: str | Path) -> None:
    """Write `state` (nested dicts / lists / tuples of tensors, numpy arrays and plain values)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(tree)})


def load_state(path: str | Path) -> Any:
    """Read what save_state wrote; anything else is a CheckpointError, never code run."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
        tree = json.loads(metadata[_META_KEY])
        return _decode(tree, tensors)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{path}: not a t2t state file ({type(err).__name__}: {err}); the checkpoint is damaged or "
            "was written by another program"
        ) from None


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()  # safetensors refuses shared storage
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        key = f"t{len(tensors)}"
        wide = value.astype(np.int64) if value.dtype == np.uint32 else value  # torch's uint32 is partial
        tensors[key] = torch.from_numpy(np.ascontiguousarray(wide)).clone()
        return {"__ndarray__": key, "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(k in _MARKS for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a state file")


def _decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, list):
        return [_decode(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__ndarray__" in tree:
        dtype = np.dtype(tree["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"an array of dtype {dtype}")
        return tensors[tree["__ndarray__"]].numpy().astype(dtype)
    if "__tuple__" in tree:
        return tuple(_decode(v, tensors) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in tree["__items__"]}
    return {k: _decode(v, tensors) for k, v in tree.items()}


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict, torch.Tensor, np.ndarray)):
        raise ValueError(f"a dict key of type {type(key).__name__}")
    return key
