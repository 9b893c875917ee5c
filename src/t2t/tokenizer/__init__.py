"""Tokenizers: T5's sentencepiece unigram (with sentinels), BERT's WordPiece and GPT-2's byte-level BPE.

`from t2t.tokenizer import Tokenizer, load_tokenizer`; see docs/tokenizers.md.
"""

from t2t.tokenizer import loading as _loading  # noqa: F401 (registers Tokenizer.from_pretrained)
from t2t.tokenizer import saving as _saving  # noqa: F401 (registers tokenizer.save_pretrained)
from t2t.tokenizer.batch_encoding import BatchEncoding
from t2t.tokenizer.core import MODEL_VOCAB_MULTIPLE, PairEncoding, Tokenizer, load_tokenizer
from t2t.tokenizer.specials import BPE, KINDS, SENTENCEPIECE, WORDPIECE, SpecialTokens
from t2t.tokenizer.streaming import TextStream
from t2t.tokenizer.training import TokenizerConfig, train_tokenizer

__all__ = [
    "BPE",
    "KINDS",
    "MODEL_VOCAB_MULTIPLE",
    "SENTENCEPIECE",
    "WORDPIECE",
    "BatchEncoding",
    "PairEncoding",
    "SpecialTokens",
    "TextStream",
    "Tokenizer",
    "TokenizerConfig",
    "load_tokenizer",
    "train_tokenizer",
]
