"""Which class implements a config: the architecture and its head decide."""

from __future__ import annotations

from typing import Any

from t2t.config import ModelConfig
from t2t.errors import ConfigError
from t2t.model.models import DecoderLM, EncoderDecoderLM, EncoderModel, T2TModel
from t2t.model.task_models import DecoderTaskModel, EncoderTaskModel


def model_class(config: ModelConfig) -> type[T2TModel]:
    head = config.task_head
    if config.arch == "encoder-decoder":
        return EncoderDecoderLM
    if config.arch == "encoder":
        return EncoderModel if head == "pretraining" else EncoderTaskModel
    return DecoderLM if head == "lm" else DecoderTaskModel


def build_model(config: ModelConfig) -> T2TModel:
    """A freshly initialised model for config."""
    model = model_class(config)(config)
    model.init_weights()
    return model


def with_head(model: T2TModel, head: str, **fields: Any) -> T2TModel:
    """The same backbone under a new head (e.g. a pre-trained BERT for span QA). Every weight the two
    models share is copied (a pre-trained pooler included); the new head starts from scratch, as in
    BERT's and GPT's fine-tuning."""
    config = model.config.replace(head=head, **fields)
    new = build_model(config).to(device=model.device, dtype=model.dtype)
    target = new.state_dict()
    shared = {
        key: value
        for key, value in model.state_dict().items()
        if key in target and not key.startswith("classifier.") and value.shape == target[key].shape
    }
    if not any(key.startswith("embed.") for key in shared):
        raise ConfigError(f"cannot put head={head!r} on a {type(model).__name__}: no weights in common")
    new.load_state_dict(shared, strict=False)
    return new
