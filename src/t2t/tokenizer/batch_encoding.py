"""`tokenizer(texts, padding=True, truncation=True, max_length=..., return_tensors="pt")`: transformers'
call on t2t's Tokenizer, with the same results as its fast tokenizers (tests/test_hf_conventions_tokenizer.py).

The padding and truncation rules are transformers 5.23's (`_get_padding_truncation_strategies`): a
`max_length` alone truncates (longest first); `padding=True` / "longest" pads to the longest row,
"max_length" to max_length; `truncation=True` / "longest_first" cuts the longer text of a pair first,
"only_first" / "only_second" one of them; without a max_length both fall back to `model_max_length` (from
tokenizer_config.json), or are off when it is unset. Padding and truncation are done by the Rust library,
configured as transformers configures it, on a copy of the backend kept per setting (the tokenizer
itself is never switched, so calls from several threads do not disturb each other).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from t2t.errors import ConfigError, DataError

if TYPE_CHECKING:
    from t2t.tokenizer.core import Tokenizer

# transformers' model_max_length when a tokenizer config names none, and its "unset" threshold.
VERY_LARGE_LENGTH = int(1e30)
LARGE_LENGTH = int(1e20)
# transformers classes whose model inputs include token_type_ids (all others: input_ids, attention_mask).
TOKEN_TYPE_CLASSES = frozenset(
    {"BertTokenizer", "MobileBertTokenizer", "SqueezeBertTokenizer", "ConvBertTokenizer"}
)
# transformers classes that pad on the left unless tokenizer_config.json says otherwise.
LEFT_PADDING_CLASSES = frozenset({"LlamaTokenizer", "GemmaTokenizer", "CodeLlamaTokenizer"})
SIDES = ("right", "left")
_PADDING = {
    True: "longest",
    False: None,
    "longest": "longest",
    "max_length": "max_length",
    "do_not_pad": None,
}
_TRUNCATION = {
    True: "longest_first",
    False: None,
    None: None,
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
    "do_not_truncate": None,
}
RETURN_TENSORS = (None, "pt", "np")


class BatchEncoding(dict):  # type: ignore[type-arg]
    """What a tokenizer call returns: `input_ids`, `attention_mask` (and `token_type_ids`), lists or
    tensors, read as keys or attributes; `.to(device)` moves tensors, so `model(**batch)` and
    `model.generate(**batch)` take it as it is. As transformers' BatchEncoding."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any) -> BatchEncoding:
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


def model_input_names(tokenizer: Tokenizer) -> list[str]:
    names = tokenizer.extra_config.get("model_input_names")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    if tokenizer.hf_class in TOKEN_TYPE_CLASSES:
        return ["input_ids", "token_type_ids", "attention_mask"]
    return ["input_ids", "attention_mask"]


def default_padding_side(tokenizer: Tokenizer) -> str:
    side = tokenizer.extra_config.get("padding_side")
    if side in SIDES:
        return str(side)
    return "left" if tokenizer.hf_class in LEFT_PADDING_CLASSES else "right"


def check_side(name: str, side: Any) -> str:
    if side not in SIDES:
        raise ConfigError(f"{name}={side!r} is not one of right, left")
    return str(side)


def call(
    tokenizer: Tokenizer,
    text: str | Sequence[str],
    text_pair: str | Sequence[str] | None = None,
    *,
    add_special_tokens: bool = True,
    padding: bool | str = False,
    truncation: bool | str | None = None,
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
    padding_side: str | None = None,
    return_tensors: str | None = None,
    return_token_type_ids: bool | None = None,
    return_attention_mask: bool | None = None,
    return_special_tokens_mask: bool = False,
    return_length: bool = False,
) -> BatchEncoding:
    """See `Tokenizer.__call__`."""
    if return_tensors not in RETURN_TENSORS:
        raise ConfigError(f"return_tensors={return_tensors!r} is not one of None, 'pt', 'np'")
    batched, rows = _rows(text, text_pair)
    pad, cut, max_length = _strategies(tokenizer, padding, truncation, max_length, pad_to_multiple_of)
    truncating = None
    if cut is not None:
        truncating = (max_length, cut, tokenizer.truncation_side)
    padded = None
    if pad is not None:
        side = (
            check_side("padding_side", padding_side) if padding_side is not None else tokenizer.padding_side
        )
        length = max_length if pad == "max_length" else None
        padded = (length, side, tokenizer.pad_id, tokenizer.pad_token, pad_to_multiple_of)
    backend = tokenizer.configured_backend(truncating, padded)
    try:
        encodings = backend.encode_batch_fast(rows, add_special_tokens=add_special_tokens)
    except TypeError:
        raise DataError("a text to encode should be a str; convert it first") from None
    except Exception as err:  # the Rust library's own checks (a max_length too short for a pair, ...)
        raise ConfigError(f"cannot encode with these settings: {err}") from None
    names = model_input_names(tokenizer)
    types = "token_type_ids" in names if return_token_type_ids is None else return_token_type_ids
    mask = "attention_mask" in names if return_attention_mask is None else return_attention_mask
    out: dict[str, list[list[int]]] = {"input_ids": [e.ids for e in encodings]}
    if types:
        out["token_type_ids"] = [e.type_ids for e in encodings]
    if mask:
        out["attention_mask"] = [e.attention_mask for e in encodings]
    if return_special_tokens_mask:
        out["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
    if return_length:
        out["length"] = [len(e.ids) for e in encodings]  # type: ignore[misc]
    if return_tensors is not None:
        return BatchEncoding({k: _tensor(k, v, return_tensors) for k, v in out.items()})
    if not batched:  # one text (or pair): its lists, without the batch dimension
        return BatchEncoding({k: v[0] for k, v in out.items()})
    return BatchEncoding(out)


def _rows(text: Any, text_pair: Any) -> tuple[bool, list[Any]]:
    """(whether the input is a batch, the backend's inputs: texts or (text, text) pairs)."""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise DataError("text_pair should be a str when text is one str")
        # As transformers: an empty text_pair ("") counts as no pair.
        return False, [(text, text_pair) if text_pair else text]
    if not isinstance(text, (list, tuple)):
        raise DataError(f"text should be a str or a list of str, got {type(text).__name__}; convert it first")
    for index, item in enumerate(text):
        if not isinstance(item, str):
            raise DataError(f"text[{index}] should be a str, got {type(item).__name__}; convert it first")
    if text_pair is None:
        return True, list(text)
    if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
        raise DataError("text_pair should be a list of str as long as text when text is a list")
    if len(text_pair) != len(text):
        raise DataError(f"text has {len(text)} texts but text_pair {len(text_pair)}; pair them one to one")
    for index, item in enumerate(text_pair):
        if not isinstance(item, str):
            raise DataError(f"text_pair[{index}] should be a str, got {type(item).__name__}")
    return True, list(zip(text, text_pair))


def _strategies(
    tokenizer: Tokenizer,
    padding: Any,
    truncation: Any,
    max_length: int | None,
    pad_to_multiple_of: int | None,
) -> tuple[str | None, str | None, int | None]:
    """(padding: None / "longest" / "max_length", truncation: None / a strategy, max_length), as
    transformers 5.23 resolves them."""
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)):
        raise ConfigError(f"max_length={max_length!r} should be an int")
    if max_length is not None and max_length < 1:
        raise ConfigError(f"max_length={max_length} should be at least 1")
    if pad_to_multiple_of is not None and (
        isinstance(pad_to_multiple_of, bool)
        or not isinstance(pad_to_multiple_of, int)
        or pad_to_multiple_of < 1
    ):
        raise ConfigError(f"pad_to_multiple_of={pad_to_multiple_of!r} should be a positive int")
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"  # transformers: a max_length alone truncates
    if not isinstance(padding, (bool, str)) or padding not in _PADDING:
        raise ConfigError(
            f"padding={padding!r} is not one of True, False, 'longest', 'max_length', 'do_not_pad'"
        )
    if not isinstance(truncation, (bool, str, type(None))) or truncation not in _TRUNCATION:
        raise ConfigError(
            f"truncation={truncation!r} is not one of True, False, 'longest_first', 'only_first', "
            "'only_second', 'do_not_truncate'"
        )
    pad, cut = _PADDING[padding], _TRUNCATION[truncation]
    if padding is True and max_length is not None and cut is None:
        warnings.warn(
            "max_length is ignored when padding=True and there is no truncation; to pad to max_length, "
            "use padding='max_length'",
            stacklevel=4,
        )
    if max_length is None:
        model_max = tokenizer.model_max_length
        if pad == "max_length":
            if model_max > LARGE_LENGTH:
                pad = None  # transformers: no length to pad to, so no padding
            else:
                max_length = model_max
        if cut is not None:
            if model_max > LARGE_LENGTH:
                cut = None
            else:
                max_length = model_max
    if pad is not None and tokenizer.pad_id is None:
        raise ConfigError(
            f"padding needs a pad token and this {tokenizer.hf_class} has none (GPT-2 has none); set one, "
            "e.g. tokenizer.pad_token = tokenizer.eos_token, or pass padding=False"
        )
    both = cut is not None and pad is not None
    if both and pad_to_multiple_of is not None and max_length is not None and max_length % pad_to_multiple_of:
        raise ConfigError(
            f"truncation to max_length={max_length} is not a multiple of pad_to_multiple_of="
            f"{pad_to_multiple_of}; make it one"
        )
    return pad, cut, max_length


def _tensor(name: str, rows: list[Any], kind: str) -> Any:
    if len({len(row) for row in rows if isinstance(row, list)}) > 1:
        raise DataError(
            f"cannot make one tensor of {name}: the rows have different lengths; pass padding=True "
            "(and truncation=True for texts longer than the model takes)"
        )
    if kind == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long)
    import numpy as np

    return np.array(rows, dtype=np.int64)


__all__ = ["BatchEncoding", "call", "default_padding_side", "model_input_names"]
