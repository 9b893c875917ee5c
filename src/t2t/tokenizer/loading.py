"""Reading a tokenizer directory (t2t's or Hugging Face's) into a Tokenizer, the way AutoTokenizer does.

Also the constructors from a vocabulary (spiece.model bytes, a WordPiece vocabulary, BPE vocabulary and
merges) that training uses too, so a trained tokenizer and the same one read back are built alike.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, models
from tokenizers import Tokenizer as Backend

from t2t.errors import CheckpointError
from t2t.tokenizer.builders import (
    OPTION_DEFAULTS,
    assemble,
    bpe_model,
    options_for,
    unigram_model,
    wordpiece_model,
)
from t2t.tokenizer.core import Tokenizer
from t2t.tokenizer.files import MERGES, SPIECE, TOKENIZER_CONFIG, TOKENIZER_JSON, VOCAB_JSON, VOCAB_TXT
from t2t.tokenizer.specials import (
    BPE,
    DEFAULT_SPECIALS,
    HF_CLASS_OF_MODEL_TYPE,
    KIND_OF_HF_CLASS,
    ROLES,
    SENTENCEPIECE,
    WORDPIECE,
    SpecialTokens,
)
from t2t.utils import delegates
from t2t.utils.io import user_path

MODEL_KIND = {"Unigram": SENTENCEPIECE, "WordPiece": WORDPIECE, "BPE": BPE}
# Keys of a loaded tokenizer_config.json that describe where it was loaded from, or that tokenizer.json
# holds anyway: not written back.
_VOLATILE_KEYS = {
    "name_or_path",
    "tokenizer_file",
    "vocab_file",
    "merges_file",
    "special_tokens_map_file",
    "is_local",
    "local_files_only",
    "added_tokens_decoder",
    "extra_special_tokens",
    "additional_special_tokens",
    "backend",
}
# Keys t2t writes from the tokenizer itself (class, special tokens, pipeline options).
_OWNED_KEYS = {
    "tokenizer_class",
    *(f"{role}_token" for role in ROLES),
    *(key for defaults in OPTION_DEFAULTS.values() for key in defaults),
}


def load_directory(name_or_path: str | Path) -> Tokenizer:
    directory = _resolve(name_or_path)
    config = _read_json(directory / TOKENIZER_CONFIG) if (directory / TOKENIZER_CONFIG).is_file() else {}
    hf_class = _hf_class(directory, config)
    kind = KIND_OF_HF_CLASS.get(hf_class)
    if (directory / TOKENIZER_JSON).is_file():
        return _from_tokenizer_json(directory / TOKENIZER_JSON, config, hf_class, kind)
    if hf_class and kind is None:
        raise CheckpointError(
            f"{directory}: tokenizer_class {hf_class} without {TOKENIZER_JSON} is not supported (t2t rebuilds "
            f"T5, BERT and GPT-2 from vocabulary files); save it with transformers' save_pretrained, "
            f"which writes {TOKENIZER_JSON}"
        )
    if (directory / SPIECE).is_file() and kind in (None, SENTENCEPIECE):
        return _from_spiece(directory / SPIECE, config)
    if (directory / VOCAB_TXT).is_file() and kind in (None, WORDPIECE):
        return _from_vocab_txt(directory / VOCAB_TXT, config)
    if (directory / VOCAB_JSON).is_file() and (directory / MERGES).is_file() and kind in (None, BPE):
        return _from_bpe_files(directory / VOCAB_JSON, directory / MERGES, config)
    raise CheckpointError(
        f"{directory}: no tokenizer files ({TOKENIZER_JSON}, {SPIECE}, {VOCAB_TXT} or {VOCAB_JSON} + "
        f"{MERGES}); train one with `t2t tokenizer train` or copy the model's tokenizer files here"
    )


def _resolve(name_or_path: str | Path) -> Path:
    path = user_path(name_or_path)
    if path.is_dir():
        return path
    if path.is_file():
        raise CheckpointError(f"{path} is a file; pass the directory that holds the tokenizer files")
    from t2t.utils.hub_files import TOKENIZER_FILES, resolve  # a hub name: downloaded, or found in the cache

    try:
        return resolve(name_or_path, patterns=TOKENIZER_FILES)
    except CheckpointError:
        raise CheckpointError(
            f"{name_or_path}: no such directory, nor a hub name that could be fetched; pass a directory "
            f"with tokenizer files ({TOKENIZER_JSON}, {SPIECE}, {VOCAB_TXT} or {VOCAB_JSON} + {MERGES})"
        ) from None


def _hf_class(directory: Path, config: dict[str, Any]) -> str:
    """The transformers class AutoTokenizer would pick: tokenizer_config.json's, else by model type."""
    name = config.get("tokenizer_class")
    if not name and (directory / "config.json").is_file():
        model_type = _read_json(directory / "config.json").get("model_type")
        name = HF_CLASS_OF_MODEL_TYPE.get(str(model_type), "")
    return str(name or "").removesuffix("Fast")


def _from_tokenizer_json(path: Path, config: dict, hf_class: str, kind: str | None) -> Tokenizer:
    raw = _read_json(path)
    try:
        backend = Backend.from_str(json.dumps(raw))
    except Exception as err:
        raise CheckpointError(f"{path}: not a tokenizers file ({_first_line(err)})") from None
    model_type = str(raw.get("model", {}).get("type", type(backend.model).__name__))
    model_kind = MODEL_KIND.get(model_type)
    if model_kind is None:
        raise CheckpointError(
            f"{path}: a {model_type} model is not supported; t2t reads Unigram, WordPiece and BPE tokenizers"
        )
    extra = _config_extras(config)
    if kind is None:
        # Any other fast tokenizer: the pipeline stored in the file is used as it is, as transformers'
        # PreTrainedTokenizerFast does; roles come from tokenizer_config.json or the kind's usual tokens.
        default = DEFAULT_SPECIALS[model_kind] if not config else SpecialTokens()
        specials = _present(SpecialTokens.from_hf(config, default), backend)
        return Tokenizer(
            backend, model_kind, specials, hf_class=hf_class or "PreTrainedTokenizerFast", extra_config=extra
        )
    if model_kind != kind:
        raise CheckpointError(
            f"{path}: tokenizer_class {hf_class} needs a {_model_name(kind)} model but the file holds "
            f"{model_type}; fix tokenizer_class in {TOKENIZER_CONFIG}"
        )
    # One of the classes transformers rebuilds: keep the file's model (vocabulary, added tokens) and give
    # it the class's pipeline, as transformers does.
    specials = SpecialTokens.from_hf(config, DEFAULT_SPECIALS[kind])
    stored = None
    if kind == BPE:  # transformers keeps the file's post-processor and drops add_bos/eos_token then
        config = {k: v for k, v in config.items() if k not in ("add_bos_token", "add_eos_token")}
        stored = backend.post_processor
    options = options_for(kind, config)
    charsmap = _precompiled_charsmap(raw.get("normalizer"))
    assemble(backend, kind, specials, options, charsmap=charsmap, stored_post_processor=stored)
    spiece = path.parent / SPIECE
    spm = spiece.read_bytes() if kind == SENTENCEPIECE and spiece.is_file() else None
    return Tokenizer(
        backend,
        kind,
        specials,
        hf_class=hf_class,
        options=options,
        spm_model=spm,
        extra_config=extra,
    )


def sentencepiece_tokenizer(model: bytes, config: dict[str, Any], where: str = SPIECE) -> Tokenizer:
    """A T5 tokenizer from spiece.model bytes: its pieces, then the sentinels, as transformers builds it."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(model)
    except Exception as err:
        raise CheckpointError(f"{where}: not a sentencepiece model ({_first_line(err)})") from None
    if not proto.pieces:
        raise CheckpointError(f"{where}: not a sentencepiece model (no pieces)")
    if proto.trainer_spec.model_type not in (0, 1):  # 0 is proto2's default, unigram
        raise CheckpointError(
            f"{where}: a sentencepiece {proto.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type)} "
            "model; t2t reads unigram models as T5 uses them"
        )
    options = options_for(SENTENCEPIECE, config)
    specials = SpecialTokens.from_hf(config, DEFAULT_SPECIALS[SENTENCEPIECE])
    pieces = [(p.piece, p.score) for p in proto.pieces]
    # control pieces (<pad>, </s>) are special tokens; user-defined pieces are added tokens that are not.
    CONTROL, USER_DEFINED = 3, 4
    extra = [
        AddedToken(p.piece, normalized=False, special=p.type == CONTROL)
        for p in proto.pieces
        if p.type in (CONTROL, USER_DEFINED)
    ]
    backend = Backend(unigram_model(pieces, proto.trainer_spec.unk_id, options["extra_ids"]))
    charsmap = proto.normalizer_spec.precompiled_charsmap or None
    assemble(backend, SENTENCEPIECE, specials, options, charsmap=charsmap, extra_tokens=extra)
    return Tokenizer(
        backend,
        SENTENCEPIECE,
        specials,
        options=options,
        spm_model=model,
        extra_config=_config_extras(config),
    )


def wordpiece_tokenizer(vocab: dict[str, int], config: dict[str, Any]) -> Tokenizer:
    """A BERT tokenizer from its vocabulary (vocab.txt's lines, or a vocabulary just trained)."""
    options = options_for(WORDPIECE, config)
    specials = SpecialTokens.from_hf(config, DEFAULT_SPECIALS[WORDPIECE])
    backend = Backend(wordpiece_model(vocab, specials.unk or "[UNK]"))
    assemble(backend, WORDPIECE, specials, options)
    return Tokenizer(backend, WORDPIECE, specials, options=options, extra_config=_config_extras(config))


def bpe_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], config: dict[str, Any]) -> Tokenizer:
    """A GPT-2 tokenizer from vocab.json and merges.txt (or a vocabulary just trained)."""
    options = options_for(BPE, config)
    specials = SpecialTokens.from_hf(config, DEFAULT_SPECIALS[BPE])
    backend = Backend(bpe_model(vocab, merges))
    assemble(backend, BPE, specials, options)
    return Tokenizer(backend, BPE, specials, options=options, extra_config=_config_extras(config))


def _from_spiece(path: Path, config: dict) -> Tokenizer:
    return sentencepiece_tokenizer(path.read_bytes(), config, where=str(path))


def _from_vocab_txt(path: Path, config: dict) -> Tokenizer:
    try:
        vocab = models.WordPiece.read_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read the WordPiece vocabulary ({_first_line(err)})") from None
    return wordpiece_tokenizer(vocab, config)


def _from_bpe_files(vocab_path: Path, merges_path: Path, config: dict) -> Tokenizer:
    try:
        vocab, merges = models.BPE.read_file(str(vocab_path), str(merges_path))
    except Exception as err:
        raise CheckpointError(
            f"{vocab_path.parent}: cannot read {VOCAB_JSON} + {MERGES} ({_first_line(err)})"
        ) from None
    return bpe_tokenizer(vocab, merges, config)


def _precompiled_charsmap(normalizer: dict | None) -> bytes | None:
    """The sentencepiece normalisation table inside a tokenizer.json normaliser, which T5 keeps."""
    if not normalizer:
        return None
    parts = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    for part in parts:
        if part and part.get("type") == "Precompiled" and part.get("precompiled_charsmap"):
            return base64.b64decode(part["precompiled_charsmap"])
    return None


def _present(specials: SpecialTokens, backend: Backend) -> SpecialTokens:
    """Drop roles whose token is not in the vocabulary (a role t2t cannot give an id to)."""
    return SpecialTokens(**{role: t for role, t in specials.items() if backend.token_to_id(t) is not None})


def _config_extras(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of a tokenizer_config.json that t2t does not set itself, written back unchanged."""
    return {k: v for k, v in config.items() if k not in _OWNED_KEYS and k not in _VOLATILE_KEYS}


def _model_name(kind: str) -> str:
    return {SENTENCEPIECE: "Unigram", WORDPIECE: "WordPiece", BPE: "BPE"}[kind]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not readable JSON ({_first_line(err)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: should hold a JSON object, found {type(data).__name__}")
    return data


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


delegates.provide("tokenizer.from_pretrained", load_directory)  # Tokenizer.from_pretrained
