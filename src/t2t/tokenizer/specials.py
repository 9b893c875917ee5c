"""The kinds of tokenizer t2t knows and the special tokens each one has, named as transformers names them."""

from __future__ import annotations

import dataclasses
from typing import Any

SENTENCEPIECE, WORDPIECE, BPE = "sentencepiece", "wordpiece", "bpe"
KINDS = (SENTENCEPIECE, WORDPIECE, BPE)

# The transformers class whose behaviour each kind reproduces, and the reverse lookup used on loading.
HF_CLASS = {SENTENCEPIECE: "T5Tokenizer", WORDPIECE: "BertTokenizer", BPE: "GPT2Tokenizer"}
# transformers classes that tokenize exactly as one of those three (aliases and thin subclasses).
KIND_OF_HF_CLASS = {
    **{name: kind for kind, name in HF_CLASS.items()},
    "MT5Tokenizer": SENTENCEPIECE,
    "DistilBertTokenizer": WORDPIECE,
    "MobileBertTokenizer": WORDPIECE,
    "SqueezeBertTokenizer": WORDPIECE,
    "ConvBertTokenizer": WORDPIECE,
}
# A hub checkpoint often has no tokenizer_class; transformers then goes by config.json's model_type.
HF_CLASS_OF_MODEL_TYPE = {
    "t5": "T5Tokenizer",
    "mt5": "T5Tokenizer",
    "bert": "BertTokenizer",
    "distilbert": "BertTokenizer",
    "gpt2": "GPT2Tokenizer",
}

ROLES = ("pad", "eos", "bos", "unk", "cls", "sep", "mask")
SENTINEL = "<extra_id_{}>"
GPT2_EOT = "<|endoftext|>"


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    """Which token plays which role; None where the kind has no such token (T5 has no bos, GPT-2 no pad)."""

    pad: str | None = None
    eos: str | None = None
    bos: str | None = None
    unk: str | None = None
    cls: str | None = None
    sep: str | None = None
    mask: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """(role, token) for the roles that are set, in ROLES order."""
        return [(role, token) for role in ROLES if (token := getattr(self, role)) is not None]

    def to_hf(self) -> dict[str, str]:
        """As tokenizer_config.json spells them: {"pad_token": "<pad>", ...}."""
        return {f"{role}_token": token for role, token in self.items()}

    @classmethod
    def from_hf(cls, config: dict[str, Any], default: SpecialTokens) -> SpecialTokens:
        """Roles from a tokenizer_config.json; a role it does not mention keeps the kind's default.

        transformers writes a token either as a string or as {"content": ..., ...} (a serialised AddedToken).
        """
        values = {}
        for role in ROLES:
            key = f"{role}_token"
            value = config[key] if key in config else getattr(default, role)
            if isinstance(value, dict):
                value = value.get("content")
            values[role] = value if isinstance(value, str) else None
        return cls(**values)


DEFAULT_SPECIALS = {
    # T5's spiece.model: pad 0, eos 1, unk 2, no bos.
    SENTENCEPIECE: SpecialTokens(pad="<pad>", eos="</s>", unk="<unk>"),
    # BERT: no eos/bos; [CLS] .. [SEP] play those parts.
    WORDPIECE: SpecialTokens(pad="[PAD]", unk="[UNK]", cls="[CLS]", sep="[SEP]", mask="[MASK]"),
    # GPT-2: one token, <|endoftext|>, is bos, eos and unk; there is no pad.
    BPE: SpecialTokens(bos=GPT2_EOT, eos=GPT2_EOT, unk=GPT2_EOT),
}
