"""Checks of a checkpoint's tensors before they go into a model, so that a bad checkpoint is one clear
line: weights of NaN (a diverged run) would load and generate empty text, and a config edited after
the weights were saved would fail in load_state_dict with a page of `size mismatch` lines."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t2t.config import ModelConfig
from t2t.errors import CheckpointError, ConfigError
from t2t.model.models import T2TModel

# Config fields that size tensors, in the order a guess prefers them when several could explain a shape.
SIZE_FIELDS = (
    "d_ff",
    "vocab_size",
    "d_model",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "max_positions",
    "relative_buckets",
    "type_vocab_size",
    "num_labels",
)
_EFFECTIVE = {"n_kv_heads": "kv_heads", "head_dim": "dim_head"}  # None in the config means these


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse floating-point weights with NaN or infinite values, naming the first such tensor."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            what = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise CheckpointError(
                f"{where}: weight {key!r} holds {what} values (saved from a run that diverged?); load an "
                "earlier checkpoint, or pass check_finite=False to load it anyway"
            )


@dataclass
class ShapeMismatch:
    """The first tensor whose shape in the checkpoint differs from what the config builds, and the
    config field that explains it: `value` is set when that field, so changed, fits every tensor."""

    key: str
    expected: tuple[int, ...]  # what the config makes
    found: tuple[int, ...]  # what the checkpoint holds
    field: str | None = None
    current: int | None = None  # the config's value of field
    value: int | None = None  # the value the weights were made with


def find_shape_mismatch(model: T2TModel, state: dict[str, torch.Tensor]) -> ShapeMismatch | None:
    """The first tensor of `state` whose shape the model does not have, with the likely culprit."""
    target = model.state_dict()
    for key, tensor in state.items():
        if key in target and tuple(tensor.shape) != tuple(target[key].shape):
            mismatch = ShapeMismatch(key, tuple(target[key].shape), tuple(tensor.shape))
            _explain(mismatch, model.config, state)
            return mismatch
    return None


def _explain(mismatch: ShapeMismatch, config: ModelConfig, state: dict[str, torch.Tensor]) -> None:
    """Name the field: the one whose changed value makes every tensor fit, else the first field whose
    value is the mismatching dimension (or divides it, as d_ff does the fused gate+up matrix)."""
    guesses: list[tuple[str, int]] = []
    for expected, found in zip(mismatch.expected, mismatch.found):
        if expected == found:
            continue
        for field in SIZE_FIELDS:
            current = _value(config, field)
            if current < 1 or expected % current:
                continue
            guesses.append((field, current))
            times = expected // current
            if found % times == 0 and _fits(config, field, found // times, state):
                mismatch.field, mismatch.current, mismatch.value = field, current, found // times
                return
    exact = [g for g in guesses if g[1] in mismatch.expected]
    if guesses:
        mismatch.field, mismatch.current = (exact or guesses)[0]


def _value(config: ModelConfig, field: str) -> int:
    return int(getattr(config, _EFFECTIVE.get(field, field)))


def _fits(config: ModelConfig, field: str, value: int, state: dict[str, torch.Tensor]) -> bool:
    """Whether the model of config with field=value has the checkpoint's shape for every tensor."""
    from t2t.model.build import model_class

    try:
        changed = config.replace(**{field: value})
        with torch.device("meta"):
            model = model_class(changed)(changed)
    except (ConfigError, RuntimeError, ValueError):
        return False
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return all(tuple(t.shape) == shapes[k] for k, t in state.items() if k in shapes)


__all__ = ["SIZE_FIELDS", "ShapeMismatch", "check_finite", "find_shape_mismatch"]
