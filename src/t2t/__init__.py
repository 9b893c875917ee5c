"""t2t: text-to-text transformers in PyTorch. Public API only; see docs/architecture.md for the layout."""

from t2t.config import ModelConfig
from t2t.errors import CheckpointError, ConfigError, DataError, T2TError
from t2t.model.build import build_model
from t2t.model.models import DecoderLM, EncoderDecoderLM, EncoderModel, T2TModel
from t2t.presets import preset, preset_names
from t2t.tokenizer import Tokenizer, load_tokenizer

__version__ = "0.1.0"


def from_pretrained(name_or_path: str, **kwargs):  # type: ignore[no-untyped-def]
    """Load a t2t or Hugging Face checkpoint (local directory or hub name) as a t2t model."""
    from t2t.hub import from_pretrained as _load

    return _load(name_or_path, **kwargs)


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DecoderLM",
    "EncoderDecoderLM",
    "EncoderModel",
    "ModelConfig",
    "T2TError",
    "T2TModel",
    "Tokenizer",
    "build_model",
    "from_pretrained",
    "load_tokenizer",
    "preset",
    "preset_names",
]
