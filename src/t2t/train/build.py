"""Model, tokenizer and data streams from a TrainConfig (when the caller did not pass them in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2t.errors import ConfigError
from t2t.train.config import TrainConfig


def build_model(cfg: TrainConfig) -> Any:
    import t2t
    from t2t.config import ModelConfig

    m = cfg.model
    if m.checkpoint:
        model = t2t.from_pretrained(m.checkpoint)
        if m.overrides:
            model = _with_overrides(model, m.overrides)
        return model
    if m.preset:
        model_cfg = t2t.preset(m.preset)
    elif m.config:
        model_cfg = ModelConfig.load(m.config)
    else:
        raise ConfigError("model: give model.preset, model.config or model.checkpoint (or pass model=)")
    if m.overrides:
        model_cfg = model_cfg.replace(**m.overrides)
    return t2t.build_model(model_cfg)


def _with_overrides(model: Any, overrides: dict[str, Any]) -> Any:
    """A loaded model with changed config fields (e.g. dropout): same weights, rebuilt modules."""
    import t2t

    new = t2t.build_model(model.config.replace(**overrides))
    new.load_state_dict(model.state_dict())
    return new


def build_tokenizer(cfg: TrainConfig) -> Any:
    from t2t.tokenizer import load_tokenizer

    source = cfg.model.tokenizer or cfg.model.checkpoint
    if not source:
        raise ConfigError(
            "model.tokenizer: a model from a preset or config needs a tokenizer directory "
            "(set model.tokenizer: DIR, or pass tokenizer=)"
        )
    return load_tokenizer(source)


def register_yaml_tasks(cfg: TrainConfig) -> None:
    if not cfg.data.tasks_yaml:
        return
    from t2t.data import load_tasks_yaml

    for path in cfg.data.tasks_yaml:
        if not Path(path).is_file():
            raise ConfigError(f"data.tasks_yaml: {path} not found")
        load_tasks_yaml(path)


def source_of(cfg: TrainConfig) -> Any:
    from t2t.data import get_mixture, get_task

    if cfg.data.mixture:
        return get_mixture(cfg.data.mixture)
    if cfg.data.task:
        return get_task(cfg.data.task)
    raise ConfigError("data: give data.task or data.mixture (or pass train_stream=)")


def arch_of(model: Any) -> str:
    return model.config.arch


def build_stream(
    cfg: TrainConfig,
    tokenizer: Any,
    arch: str,
    source: Any,
    *,
    split: str = "train",
    repeat: bool = True,
    rank: int = 0,
    world_size: int = 1,
    seed_offset: int = 0,
) -> Any:
    from t2t.data import make_stream

    d = cfg.data
    return make_stream(
        source,
        tokenizer,
        objective=d.objective,
        arch=arch,
        batch_size=d.batch_size,
        max_input_length=d.max_input_length,
        max_target_length=d.max_target_length,
        split=split,
        seed=d.seed + seed_offset,
        pack=d.pack,
        repeat=repeat,
        rank=rank,
        world_size=world_size,
        **d.options,
    )


def replay_source(cfg: TrainConfig) -> Any:
    """The earlier tasks as one mixture (equal rates), or None without replay."""
    replay = cfg.data.replay
    if not replay.tasks or replay.share <= 0:
        return None
    from t2t.data import Mixture, get_task

    tasks = [get_task(name) for name in replay.tasks]
    return tasks[0] if len(tasks) == 1 else Mixture("replay", tasks, rate="equal")
