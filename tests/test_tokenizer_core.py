"""Training the three kinds, T5's layout, the special ids, encode/decode behaviour and save/load."""

from __future__ import annotations

import pytest

from t2t.errors import ConfigError, DataError
from t2t.tokenizer import Tokenizer, load_tokenizer
from tokenizer_helpers import SAMPLES, SIZES, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="module")
def trained(corpus):
    return {kind: Tokenizer.train([corpus], kind=kind, vocab_size=size) for kind, size in SIZES.items()}


def test_t5_layout(trained):
    tok = trained["sentencepiece"]
    assert tok.kind == "sentencepiece"
    assert (tok.pad_id, tok.eos_id, tok.unk_id) == (0, 1, 2)
    assert tok.bos_id is tok.cls_id is tok.sep_id is tok.mask_id is None
    assert tok.vocab_size == len(tok) == SIZES["sentencepiece"]
    assert tok.sentinel_id(0) == tok.vocab_size - 1
    assert tok.sentinel_id(99) == tok.vocab_size - 100
    assert [tok.id_to_token(tok.sentinel_id(k)) for k in (0, 1, 99)] == [
        "<extra_id_0>",
        "<extra_id_1>",
        "<extra_id_99>",
    ]
    assert tok.model_vocab_size == 512 and tok.model_vocab_size % 128 == 0
    assert set(tok.special_ids) == {0, 1, 2, *range(tok.vocab_size - 100, tok.vocab_size)}
    with pytest.raises(ConfigError, match="100 sentinels"):
        tok.sentinel_id(100)


def test_bert_and_gpt2_layouts(trained):
    bert, gpt2 = trained["wordpiece"], trained["bpe"]
    assert [bert.id_to_token(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (bert.pad_id, bert.unk_id, bert.cls_id, bert.sep_id, bert.mask_id) == (0, 1, 2, 3, 4)
    assert bert.eos_id is None and bert.bos_id is None
    assert gpt2.vocab_size == SIZES["bpe"]
    eot = gpt2.vocab_size - 1  # last, as GPT-2's 50256
    assert gpt2.id_to_token(eot) == "<|endoftext|>"
    assert gpt2.eos_id == gpt2.bos_id == gpt2.unk_id == eot
    assert gpt2.pad_id is None and gpt2.mask_id is None
    assert gpt2.special_ids == [eot]
    with pytest.raises(ConfigError, match="no sentinels"):
        bert.sentinel_id(0)


def test_special_tokens_added_per_kind(trained):
    t5, bert, gpt2 = trained["sentencepiece"], trained["wordpiece"], trained["bpe"]
    assert t5.encode("hello")[-1] == t5.eos_id and t5.encode("hello", add_special_tokens=False)[-1] != 1
    assert t5.encode("") == [t5.eos_id]
    ids = bert.encode("hello world")
    assert ids[0] == bert.cls_id and ids[-1] == bert.sep_id
    assert bert.encode("") == [bert.cls_id, bert.sep_id]
    assert gpt2.encode("hello") == gpt2.encode("hello", add_special_tokens=False)
    assert gpt2.encode("") == []


@pytest.mark.parametrize("kind", list(SIZES))
def test_round_trip_text(trained, kind):
    tok = trained[kind]
    text = "the quick brown fox jumps over the lazy dog"
    assert tok.decode(tok.encode(text)) == text
    if kind == "bpe":  # byte-level: every text comes back exactly
        for sample in SAMPLES:
            assert tok.decode(tok.encode(sample), skip_special_tokens=False) == sample


@pytest.mark.parametrize("kind", list(SIZES))
def test_batch_equals_single(trained, kind):
    tok = trained[kind]
    assert tok.encode_batch(SAMPLES) == [tok.encode(s) for s in SAMPLES]
    batch = tok.encode_batch(SAMPLES)
    assert tok.decode_batch(batch) == [tok.decode(ids) for ids in batch]


@pytest.mark.parametrize("kind", list(SIZES))
def test_decode_skips_padding_rows_and_label_padding(trained, kind):
    tok = trained[kind]
    ids = tok.encode("happy house", add_special_tokens=False)
    beyond = [*list(range(tok.vocab_size, tok.model_vocab_size, 7)), tok.model_vocab_size + 5]
    noisy = [beyond[0], *ids, -100, *beyond[1:]]
    assert tok.decode(noisy) == tok.decode(ids)
    assert tok.decode(noisy, skip_special_tokens=False) == tok.decode(ids, skip_special_tokens=False)
    assert tok.decode_batch([noisy, ids]) == [tok.decode(ids)] * 2


def test_decode_accepts_tensors(trained):
    import torch

    tok = trained["sentencepiece"]
    ids = tok.encode("happy house")
    assert tok.decode(torch.tensor(ids)) == tok.decode(ids)
    assert tok.decode_batch(torch.tensor([ids, ids])) == [tok.decode(ids)] * 2


def test_skip_special_tokens(trained):
    t5 = trained["sentencepiece"]
    ids = t5.encode("house <extra_id_0> happy")
    assert t5.sentinel_id(0) in ids
    assert "<extra_id_0>" not in t5.decode(ids)
    assert "<extra_id_0>" in t5.decode(ids, skip_special_tokens=False)
    assert t5.decode(ids, skip_special_tokens=False).endswith("</s>")


def test_encode_pair_token_types(trained):
    bert = trained["wordpiece"]
    a, b = bert.encode("house", add_special_tokens=False), bert.encode("happy dog", add_special_tokens=False)
    pair = bert.encode_pair("house", "happy dog")
    assert pair.ids == [bert.cls_id, *a, bert.sep_id, *b, bert.sep_id]
    assert pair.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert bert.encode_pair_batch([("house", "happy dog")] * 2) == [pair, pair]


@pytest.mark.parametrize("kind", list(SIZES))
def test_truncation_keeps_special_tokens(trained, kind):
    tok = trained[kind]
    text = "the quick brown fox jumps over the lazy dog " * 5
    full = tok.encode(text)
    cut = tok.encode(text, max_length=10)
    assert len(cut) == 10
    if kind == "sentencepiece":
        assert cut == [*full[:9], tok.eos_id]
    elif kind == "wordpiece":
        assert cut == [*full[:9], tok.sep_id]
    else:
        assert cut == full[:10]
    assert tok.encode_batch([text, "dog"], max_length=10) == [cut, tok.encode("dog", max_length=10)]
    pair = tok.encode_pair(text, "happy", max_length=12)
    assert len(pair.ids) == 12
    assert tok.encode(text) == full  # the untruncated path is untouched


def test_truncation_too_short(trained):
    with pytest.raises(ConfigError, match="no room"):
        trained["wordpiece"].encode("hello", max_length=2)


def test_non_text_input_is_a_data_error(trained):
    tok = trained["sentencepiece"]
    with pytest.raises(DataError, match="should be a str, got NoneType"):
        tok.encode(None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"texts\[1\] should be a str, got int"):
        tok.encode_batch(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(DataError, match="list of texts"):
        tok.encode_batch("one text")
    with pytest.raises(DataError, match="use decode_batch"):
        tok.decode([[1, 2], [3]])


@pytest.mark.parametrize("kind", list(SIZES))
def test_save_load_round_trip(trained, kind, tmp_path):
    tok = trained[kind]
    written = tok.save_pretrained(tmp_path)
    names = {p.name for p in written}
    assert names.isdisjoint({"config.json", "model.safetensors", "t2t_config.json"})
    assert {"tokenizer.json", "tokenizer_config.json"} <= names
    again = load_tokenizer(tmp_path)
    assert (again.kind, again.vocab_size, again.special_ids) == (tok.kind, tok.vocab_size, tok.special_ids)
    assert again.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)
    for role in ("pad", "eos", "bos", "unk", "cls", "sep", "mask"):
        assert getattr(again, f"{role}_id") == getattr(tok, f"{role}_id")


@pytest.mark.parametrize("kind", list(SIZES))
def test_pickles_for_data_loader_workers(trained, kind):
    import pickle

    tok = trained[kind]
    copy = pickle.loads(pickle.dumps(tok))
    assert copy.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)
    assert (copy.kind, copy.special_ids, copy.eos_id) == (tok.kind, tok.special_ids, tok.eos_id)


@pytest.mark.parametrize("kind", list(SIZES))
def test_training_is_deterministic(corpus, trained, kind):
    """Twice the same files and settings, twice the same vocabulary (tokenizers' WordPiece trainer alone
    is not: t2t fixes its alphabet order)."""
    for _ in range(2):
        again = Tokenizer.train([corpus], kind=kind, vocab_size=SIZES[kind])
        assert again.get_vocab() == trained[kind].get_vocab()
        assert again.backend.to_str() == trained[kind].backend.to_str()
        assert again.spm_model == trained[kind].spm_model


def test_bad_training_config_names_the_key(corpus):
    with pytest.raises(ConfigError, match="unknown key 'vocab_sise' \\(did you mean 'vocab_size'\\?\\)"):
        Tokenizer.train([corpus], vocab_sise=300)
    with pytest.raises(ConfigError, match="kind='unigram' is not one of sentencepiece, wordpiece, bpe"):
        Tokenizer.train([corpus], kind="unigram", vocab_size=300)
    with pytest.raises(DataError, match="not a file"):
        Tokenizer.train([corpus.parent], vocab_size=300)


@pytest.mark.parametrize("kind", list(SIZES))
def test_streamed_decoding_adds_up_to_decode(trained, kind):
    """Generated ids arrive one at a time; the streamed pieces must join to the full decode, also where
    a byte-level piece holds half of a character (emoji, CJK) and across padding-row ids."""
    tok = trained[kind]
    for skip in (True, False):
        for text in SAMPLES:
            ids = [*tok.encode(text), tok.model_vocab_size - 1]
            stream = tok.decode_stream(skip_special_tokens=skip)
            pieces = [stream.step(i) for i in ids]
            assert "".join(pieces) == tok.decode(ids, skip_special_tokens=skip), text
            assert pieces[-1] == ""
    if kind == "bpe":
        emoji = tok.encode("🙂")
        assert len(emoji) > 1  # one character, several byte pieces
        stream = tok.decode_stream()
        assert [stream.step(i) for i in emoji][:-1] == [""] * (len(emoji) - 1)
