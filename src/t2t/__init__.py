"""t2t: text-to-text transformers in PyTorch. Public API only; see docs/architecture.md for the layout."""

from t2t.config import ModelConfig
from t2t.errors import CheckpointError, ConfigError, DataError, T2TError
from t2t.generation import scoring as _scoring  # noqa: F401 (registers model.score)
from t2t.generation import search as _search  # noqa: F401 (registers model.generate)
from t2t.hub import from_pretrained  # registers T2TModel.from_pretrained / save_pretrained
from t2t.model.build import build_model
from t2t.model.models import DecoderLM, EncoderDecoderLM, EncoderModel, T2TModel
from t2t.presets import preset, preset_names
from t2t.tokenizer import Tokenizer, load_tokenizer
from t2t.utils.version import version

__version__ = version()


# Imported on first use, so `import t2t` stays light (the CLI's start-up, a model-only script).
# Evaluation is `from t2t.evaluate import evaluate` (a name here would clash with the module).
_LAZY = {
    "Task": "t2t.data",
    "Mixture": "t2t.data",
    "make_stream": "t2t.data",
    "register_task": "t2t.data",
    "get_task": "t2t.data",
    "load_tasks_yaml": "t2t.data",
    "Trainer": "t2t.train",
    "TrainConfig": "t2t.train",
    "Pipeline": "t2t.generation",
    "load_pipeline": "t2t.generation",
    "run_quickstart": "t2t.quickstart",
}


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    raise AttributeError(f"module 't2t' has no attribute {name!r}")


__all__ = [
    *_LAZY,
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
