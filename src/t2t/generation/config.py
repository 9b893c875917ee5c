"""GenerationConfig: every decoding choice, with Hugging Face's argument names and defaults.

The class is defined on the ground floor (`t2t.config`), so that a model can carry its generation
defaults (`model.generation_config`, read from a checkpoint's generation_config.json) without the model
layer importing generation; it is re-exported here, where generation's users look for it.
"""

from __future__ import annotations

from t2t.config import DEFAULT_MAX_NEW_TOKENS, LENGTH_PENALTY_STYLES, GenerationConfig

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "LENGTH_PENALTY_STYLES", "GenerationConfig"]
