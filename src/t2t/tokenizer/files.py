"""The file names of a tokenizer directory, in Hugging Face's layout.

A tokenizer shares its directory with the model (config.json / t2t_config.json / model.safetensors), so
only these names are used: tokenizer.json, tokenizer_config.json, special_tokens_map.json, and the
kind's vocabulary file(s): spiece.model (T5), vocab.txt (BERT), vocab.json + merges.txt (GPT-2).
"""

from __future__ import annotations

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
SPIECE = "spiece.model"
VOCAB_TXT = "vocab.txt"
VOCAB_JSON = "vocab.json"
MERGES = "merges.txt"
ADDED_TOKENS = "added_tokens.json"  # written by older transformers; never by t2t
TOKENIZER_FILES = (
    TOKENIZER_JSON,
    TOKENIZER_CONFIG,
    SPECIAL_TOKENS_MAP,
    SPIECE,
    VOCAB_TXT,
    VOCAB_JSON,
    MERGES,
)
