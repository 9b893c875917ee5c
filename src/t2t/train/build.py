"""Model, tokenizer and data streams from a TrainConfig (when the caller did not pass them in)."""

from __future__ import annotations

from typing import Any

from t2t.errors import ConfigError
from t2t.train.config import TrainConfig
from t2t.utils.resources import shipped


def build_model(cfg: TrainConfig, tokenizer: Any = None) -> Any:
    """From a checkpoint as it is; from a preset or config file sized for the tokenizer (vocabulary rows,
    pad / EOS / decoder start ids) unless model.overrides sets those fields itself."""
    from t2t.config import ModelConfig
    from t2t.hub import from_pretrained
    from t2t.model.build import build_model as new_model
    from t2t.presets import preset

    m = cfg.model
    if m.checkpoint:
        model = from_pretrained(m.checkpoint)
        if m.overrides:
            model = _with_overrides(model, m.overrides)
        return model
    if m.preset:
        model_cfg = preset(m.preset)
    elif m.config:
        model_cfg = ModelConfig.load(m.config)
    else:
        raise ConfigError("model: give model.preset, model.config or model.checkpoint (or pass model=)")
    fields = {**_tokenizer_fields(model_cfg, tokenizer), **m.overrides}
    if fields:
        model_cfg = model_cfg.replace(**fields)
    return new_model(model_cfg)


def _tokenizer_fields(model_cfg: Any, tokenizer: Any) -> dict[str, Any]:
    if tokenizer is None:
        return {}
    fields: dict[str, Any] = {"vocab_size": tokenizer.model_vocab_size}
    if tokenizer.pad_id is not None:
        fields["pad_id"] = tokenizer.pad_id
        if model_cfg.arch == "encoder-decoder":
            fields["decoder_start_id"] = tokenizer.pad_id  # T5: decoding starts from the pad token
    if tokenizer.eos_id is not None and model_cfg.arch != "encoder":
        fields["eos_id"] = tokenizer.eos_id
    return fields


def _with_overrides(model: Any, overrides: dict[str, Any]) -> Any:
    """A loaded model with changed config fields (e.g. dropout): same weights, rebuilt modules."""
    from t2t.model.build import build_model as new_model

    new = new_model(model.config.replace(**overrides))
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
        if not shipped(path).is_file():
            raise ConfigError(f"data.tasks_yaml: {path} not found")
        load_tasks_yaml(path, overwrite=True)  # a second run in one process declares them again


def source_of(cfg: TrainConfig) -> str:
    """The registered task / mixture name (or data file) that make_stream resolves."""
    source = cfg.data.mixture or cfg.data.task
    if not source:
        raise ConfigError("data: give data.task or data.mixture (or pass train_stream=)")
    return source


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
        shuffle=d.shuffle and repeat,  # a finite (validation) pass reads in file order
        rank=rank,
        world_size=world_size,
        **d.options,
    )


def replay_source(tasks: list[Any], share: float) -> Any:
    """The earlier tasks (resolved Task objects) as one mixture (equal rates), or None without replay."""
    if not tasks or share <= 0:
        return None
    from t2t.data import Mixture

    return tasks[0] if len(tasks) == 1 else Mixture("replay", tasks, rate="equal")
