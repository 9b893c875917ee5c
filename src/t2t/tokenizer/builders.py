"""Backends built the way transformers 5.23 builds T5Tokenizer, BertTokenizer and GPT2Tokenizer.

transformers 5 ignores the normaliser, pre-tokeniser and decoder stored in a tokenizer.json of these three
classes and rebuilds them from the class and tokenizer_config.json. Whatever the source (spiece.model,
vocab.txt, vocab.json + merges.txt, tokenizer.json, or a vocabulary t2t just trained), t2t puts the model
(the vocabulary) into a `tokenizers.Tokenizer` and gives it the same pipeline here, so ids and decoded text
match transformers by construction; the parity tests check it on real samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as Backend

from t2t.tokenizer.specials import BPE, ROLES, SENTENCEPIECE, SENTINEL, WORDPIECE, SpecialTokens

# The tokenizer_config.json keys that shape each kind's pipeline, with transformers' defaults.
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    SENTENCEPIECE: {"extra_ids": 100},
    WORDPIECE: {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True},
    BPE: {"add_prefix_space": False, "add_bos_token": False, "add_eos_token": False},
}
METASPACE = "▁"
# transformers adds the named special tokens in this order; it decides the ids of any not in the vocabulary.
_HF_ROLE_ORDER = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
assert set(_HF_ROLE_ORDER) == set(ROLES)


def options_for(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The kind's pipeline options from a tokenizer_config.json, transformers' default where it is silent."""
    return {key: config.get(key, default) for key, default in OPTION_DEFAULTS[kind].items()}


def sentinels(count: int) -> list[str]:
    """<extra_id_0> ... <extra_id_{count-1}>."""
    return [SENTINEL.format(k) for k in range(count)]


def unigram_model(pieces: Sequence[tuple[str, float]], unk_id: int, extra_ids: int) -> models.Model:
    """T5's layout: the sentencepiece pieces, then the sentinels in reverse so that <extra_id_0> is last."""
    vocab = [*pieces, *((token, 0.0) for token in reversed(sentinels(extra_ids)))]
    return models.Unigram(vocab, unk_id=unk_id, byte_fallback=False)


def wordpiece_model(vocab: dict[str, int], unk: str) -> models.Model:
    return models.WordPiece(vocab, unk_token=unk)


def bpe_model(vocab: dict[str, int], merges: list[tuple[str, str]]) -> models.Model:
    return models.BPE(
        vocab=vocab,
        merges=merges,
        dropout=None,
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
    )


def assemble(
    backend: Backend,
    kind: str,
    specials: SpecialTokens,
    options: dict[str, Any],
    *,
    charsmap: bytes | None = None,
    extra_tokens: Sequence[AddedToken] = (),
    stored_post_processor: processors.PostProcessor | None = None,
) -> Backend:
    """Add the special tokens and the pipeline of `kind` to a backend whose model is set.

    extra_tokens: added tokens the source carries besides the named ones (sentencepiece control and
    user-defined pieces, tokens a user added); stored_post_processor: the one in a tokenizer.json, which
    transformers keeps for GPT-2 (add_bos_token / add_eos_token only count when there is no tokenizer.json).
    """
    tokens = list(extra_tokens)
    tokens += [_special(getattr(specials, role)) for role in _HF_ROLE_ORDER if getattr(specials, role)]
    if kind == SENTENCEPIECE:
        tokens += [_special(token) for token in sentinels(options["extra_ids"])]
    for token in tokens:  # one at a time, in order: the order decides the ids of tokens new to the vocabulary
        if token.special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
    if kind == SENTENCEPIECE:
        _sentencepiece_pipeline(backend, specials, charsmap)
    elif kind == WORDPIECE:
        _wordpiece_pipeline(backend, specials, options)
    else:
        _bpe_pipeline(backend, specials, options, stored_post_processor)
    return backend


def _special(token: str) -> AddedToken:
    return AddedToken(token, special=True, normalized=False)


def _sentencepiece_pipeline(backend: Backend, specials: SpecialTokens, charsmap: bytes | None) -> None:
    # WhitespaceSplit drops runs of whitespace (newlines and tabs too) as sentencepiece's
    # remove_extra_whitespaces does; "always" puts a ▁ before every piece of text, also right after a
    # sentinel: transformers 5.23 has no `legacy=False` mode for T5 any more.
    backend.normalizer = normalizers.Precompiled(charsmap) if charsmap else None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    eos = specials.eos
    if eos is None:
        backend.post_processor = None
        return
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", eos],
        pair=["$A", eos, "$B", eos],
        special_tokens=[(eos, _id(backend, eos))],
    )


def _wordpiece_pipeline(backend: Backend, specials: SpecialTokens, options: dict[str, Any]) -> None:
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=options["tokenize_chinese_chars"],
        strip_accents=options["strip_accents"],
        lowercase=options["do_lower_case"],
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    cls, sep = specials.cls or "[CLS]", specials.sep or "[SEP]"
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, _id(backend, cls, 2)), (sep, _id(backend, sep, 3))],
    )


def _bpe_pipeline(
    backend: Backend,
    specials: SpecialTokens,
    options: dict[str, Any],
    stored: processors.PostProcessor | None,
) -> None:
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=options["add_prefix_space"])
    backend.decoder = decoders.ByteLevel()
    if stored is not None:
        backend.post_processor = stored
        return
    add_bos = bool(options["add_bos_token"]) and specials.bos is not None
    add_eos = bool(options["add_eos_token"]) and specials.eos is not None
    bos, eos = specials.bos, specials.eos
    single = f"{f'{bos}:0 ' if add_bos else ''}$A:0{f' {eos}:0' if add_eos else ''}"
    pair = f"{single}{f' {bos}:1' if add_bos else ''} $B:1{f' {eos}:1' if add_eos else ''}"
    used = [(t, _id(backend, t)) for t, on in ((bos, add_bos), (eos, add_eos)) if on and t is not None]
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=list(dict(used).items())
    )


def _id(backend: Backend, token: str, fallback: int | None = None) -> int:
    found = backend.token_to_id(token)
    if found is None:
        if fallback is None:
            raise KeyError(token)
        return fallback
    return found
