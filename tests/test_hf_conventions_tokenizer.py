"""Tokenizers are callable as transformers' are: `tok(texts, padding=True, truncation=True, max_length=...,
return_tensors="pt")`, with the same results as T5TokenizerFast, BertTokenizerFast and GPT2TokenizerFast
loaded from the same saved directory; and transformers' attribute names (pad_token_id, padding_side, ...)."""

from __future__ import annotations

import json

import pytest
import torch

import t2t
from t2t.errors import ConfigError, DataError
from t2t.tokenizer import Tokenizer, load_tokenizer
from tokenizer_helpers import SIZES, hf_class, write_corpus

TEXTS = [
    "the quick brown fox jumps over a lazy dog",
    "Hello World !",
    "",
    "café naïve résumé déjà vu über Straße and more words to make it long enough",
    "a",
]
SECOND = ["house", "happy dog jumps", "second text here", "x", "translate English to German: house"]

# Call arguments compared with transformers, on a list of texts unless `text` says otherwise.
CASES = [
    {},
    {"padding": True},
    {"padding": "longest", "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 24, "truncation": True, "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 30},
    {"truncation": True, "max_length": 6},
    {"truncation": "longest_first", "max_length": 7, "padding": True, "return_tensors": "pt"},
    {"max_length": 5},  # a max_length alone truncates
    {"padding": True, "pad_to_multiple_of": 8, "return_tensors": "pt"},
    {"padding": True, "padding_side": "left", "return_tensors": "pt"},
    {"padding": True, "add_special_tokens": False},
    {"padding": "max_length"},  # no max_length, no model_max_length: no padding
    {"truncation": True},  # nor truncation
    {"padding": False, "truncation": False},
    {"return_token_type_ids": True, "return_attention_mask": False},
    {"return_special_tokens_mask": True, "return_length": True, "padding": True},
    {"padding": True, "return_tensors": "np"},
    {"text": "one text"},
    {"text": "one text", "return_tensors": "pt"},
    {"text": "one text", "padding": "max_length", "max_length": 12},
    {"text": "one text here", "text_pair": "and its pair"},
    {"text": "one text here", "text_pair": ""},  # transformers: an empty pair is no pair
    {"text": "one text here", "text_pair": "and its pair", "return_tensors": "pt"},
    {"text_pair": SECOND},
    {"text_pair": SECOND, "padding": True, "return_tensors": "pt"},
    {"text_pair": SECOND, "truncation": True, "max_length": 9, "padding": True},
    {
        "text_pair": SECOND,
        "truncation": "only_second",
        "max_length": 12,
    },  # errors where the first is too long
    {"text_pair": SECOND, "truncation": "only_first", "max_length": 12},
    {"text_pair": SECOND, "truncation": "only_first", "max_length": 16, "padding": True},
    {
        "text": SECOND,
        "text_pair": TEXTS,
        "truncation": "only_second",
        "max_length": 16,
        "return_tensors": "pt",
    },
    {"text_pair": SECOND, "truncation": "longest_first", "max_length": 10, "padding": "max_length"},
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each kind trained by t2t and saved: {kind: directory}."""
    root = tmp_path_factory.mktemp("conventions")
    corpus = write_corpus(root / "corpus.txt")
    out = {}
    for kind, size in SIZES.items():
        Tokenizer.train([corpus], kind=kind, vocab_size=size).save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def pair(kind, directory):
    """(t2t's tokenizer, transformers' fast tokenizer) from one directory; GPT-2 gets its eos as pad, the
    usual way to pad with it."""
    ours, theirs = load_tokenizer(directory), hf_class(kind).from_pretrained(directory)
    if ours.pad_id is None:
        ours.pad_token = ours.eos_token
        theirs.pad_token = theirs.eos_token
    return ours, theirs


def outcome(tok, args):
    """The call's result as plain data (key order kept), or the kind of error it raised."""
    args = dict(args)
    text = args.pop("text", TEXTS)
    try:
        result = tok(text, **args)
    except Exception as err:  # transformers: ValueError / TypeError; t2t: T2TError subclasses
        return ("error", type(err).__name__)
    out = []
    for key, value in result.items():
        kind = type(value).__name__
        if hasattr(value, "tolist"):
            assert str(value.dtype) in ("torch.int64", "int64"), value.dtype
            value = value.tolist()
        out.append((key, kind, value))
    return out


@pytest.mark.parametrize("kind", list(SIZES))
def test_call_matches_transformers_fast_tokenizers(saved, kind):
    ours, theirs = pair(kind, saved[kind])
    for args in CASES:
        mine, hf = outcome(ours, args), outcome(theirs, args)
        if hf[0] == "error":
            assert mine[0] == "error", (args, mine)
        else:
            assert mine == hf, args


@pytest.mark.parametrize("kind", list(SIZES))
def test_call_with_model_max_length_and_sides_matches(saved, kind, tmp_path):
    """model_max_length from tokenizer_config.json (T5 checkpoints say 512) is what truncation=True and
    padding="max_length" use without a max_length; padding_side / truncation_side set on the tokenizer."""
    directory = tmp_path / kind
    load_tokenizer(saved[kind]).save_pretrained(directory)
    config = json.loads((directory / "tokenizer_config.json").read_text())
    (directory / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 9}))
    ours, theirs = pair(kind, directory)
    assert ours.model_max_length == theirs.model_max_length == 9
    cases = [
        {"truncation": True},
        {"padding": "max_length"},
        {"padding": "max_length", "truncation": True, "return_tensors": "pt"},
        {"text_pair": SECOND, "truncation": True, "padding": True},
    ]
    for side in ("left", "right"):
        ours.padding_side = theirs.padding_side = side
        ours.truncation_side = theirs.truncation_side = side
        for args in cases:
            assert outcome(ours, args) == outcome(theirs, args), (side, args)


@pytest.mark.parametrize("kind", list(SIZES))
def test_transformers_attribute_names(saved, kind):
    ours, theirs = load_tokenizer(saved[kind]), hf_class(kind).from_pretrained(saved[kind])
    for role in ("pad", "eos", "bos", "unk", "cls", "sep", "mask"):
        assert (
            getattr(ours, f"{role}_token_id")
            == getattr(theirs, f"{role}_token_id")
            == getattr(ours, f"{role}_id")
        )
        assert getattr(ours, f"{role}_token") == getattr(theirs, f"{role}_token")
    assert ours.padding_side == theirs.padding_side == "right"  # GPT-2 too, as transformers
    assert ours.truncation_side == theirs.truncation_side == "right"
    assert ours.model_input_names == theirs.model_input_names
    assert ours.batch_decode([[5, 6], [7]]) == theirs.batch_decode([[5, 6], [7]], skip_special_tokens=True)


def test_gpt2_pads_only_with_a_pad_token_and_the_setting_is_saved(saved, tmp_path):
    tok = load_tokenizer(saved["bpe"])
    with pytest.raises(ConfigError, match=r"pad token.*tokenizer.pad_token = tokenizer.eos_token"):
        tok(TEXTS, padding=True)
    with pytest.raises(ConfigError, match="not a token of this tokenizer"):
        tok.pad_token = "<no such token>"
    tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    batch = tok([t for t in TEXTS if t], padding=True, return_tensors="pt")
    assert (batch.input_ids[:, 0] == tok.eos_id).any() and bool(batch.attention_mask[:, -1].all())
    tok.save_pretrained(tmp_path)
    again, theirs = load_tokenizer(tmp_path), hf_class("bpe").from_pretrained(tmp_path)
    assert again.pad_token_id == theirs.pad_token_id == tok.eos_id
    assert again.padding_side == theirs.padding_side == "left"
    with pytest.raises(ConfigError, match="padding_side='middle'"):
        tok.padding_side = "middle"


def test_llama_style_tokenizer_pads_left_as_its_class(saved, tmp_path):
    """transformers' LlamaTokenizer pads on the left by default; t2t follows the class read."""
    tok = load_tokenizer(saved["bpe"])
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="LlamaTokenizer", pad_token="<|endoftext|>")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours = load_tokenizer(tmp_path)
    assert ours.hf_class == "LlamaTokenizer" and ours.padding_side == "left"
    assert ours.model_input_names == ["input_ids", "attention_mask"]


def test_ragged_tensors_and_bad_arguments_are_one_clear_error(saved):
    tok = load_tokenizer(saved["sentencepiece"])
    with pytest.raises(DataError, match="padding=True"):
        tok(TEXTS, return_tensors="pt")
    with pytest.raises(ConfigError, match="padding='sideways'"):
        tok(TEXTS, padding="sideways")
    with pytest.raises(ConfigError, match="truncation='middle'"):
        tok(TEXTS, truncation="middle")
    with pytest.raises(ConfigError, match="return_tensors='tf'"):
        tok(TEXTS, return_tensors="tf")
    with pytest.raises(DataError, match=r"text\[1\] should be a str"):
        tok(["fine", 3])
    with pytest.raises(DataError, match="text has 5 texts but text_pair 1"):
        tok(TEXTS, ["one"])
    with pytest.raises(ConfigError, match="not a multiple of pad_to_multiple_of"):
        tok(TEXTS, padding=True, truncation=True, max_length=10, pad_to_multiple_of=8)


def test_one_line_replaces_manual_padding_in_the_readme(saved):
    """The README's example: a padded batch into the model by one call instead of pad_sequence."""
    tok = load_tokenizer(saved["sentencepiece"])
    model = t2t.build_model(t2t.preset("t5-tiny", vocab_size=tok.model_vocab_size, dropout=0.0)).eval()
    texts = ["classify sentiment: What a joy it was!", "translate English to German: two"]
    batch = tok(texts, padding=True, return_tensors="pt")
    rows = [torch.tensor(tok.encode(text)) for text in texts]
    input_ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=tok.pad_id)
    assert torch.equal(batch["input_ids"], input_ids)
    assert torch.equal(batch.attention_mask, (input_ids != tok.pad_id).long())
    start = torch.full((len(texts), 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        logits = model(**batch, decoder_input_ids=start).logits
    assert logits.shape == (2, 1, model.config.vocab_size)
    out = model.generate(**batch, max_new_tokens=3)
    assert out.shape[0] == 2


def test_encode_still_truncates_as_before(saved):
    tok = load_tokenizer(saved["wordpiece"])
    long = TEXTS[3]
    assert tok.encode(long, max_length=6) == tok(long, max_length=6)["input_ids"]
    pair_ids = tok.encode_pair(long, "second one", max_length=9)
    called = tok(long, "second one", max_length=9)
    assert pair_ids.ids == called["input_ids"] and pair_ids.token_type_ids == called["token_type_ids"]
