"""Parity with transformers 5.23: T5TokenizerFast, BertTokenizerFast and GPT2TokenizerFast built on the
same vocabulary files give the same ids and the same decoded text, and each side reads what the other
saves. Vocabularies are trained here on a small corpus; nothing is downloaded."""

from __future__ import annotations

import pytest
import transformers

from t2t.tokenizer import Tokenizer
from tokenizer_helpers import SAMPLES, SIZES, compare_with_hf, hf_class, vocab_only, write_corpus

HF_CLASSES = {kind: hf_class(kind) for kind in SIZES}
PAIRS = [("house", "happy dog"), ("", "second"), ("café  naïve", "<extra_id_0> x"), ("a\nb", "c\td")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each kind trained by t2t and saved: {kind: (tokenizer, directory)}."""
    root = tmp_path_factory.mktemp("parity")
    corpus = write_corpus(root / "corpus.txt")
    out = {}
    for kind, size in SIZES.items():
        tok = Tokenizer.train([corpus], kind=kind, vocab_size=size)
        tok.save_pretrained(root / kind)
        out[kind] = (tok, root / kind)
    return out


def assert_same(t2t_tok, hf_tok, samples=SAMPLES):
    """Ids with and without special tokens, and decoded text with and without skipping them."""
    assert t2t_tok.vocab_size == len(hf_tok)
    problems = compare_with_hf(t2t_tok, hf_tok, samples)
    assert not problems["ids"] + problems["decode"], "\n".join(problems["ids"] + problems["decode"])


@pytest.mark.parametrize("kind", list(SIZES))
def test_same_as_hf_fast_class_on_the_vocabulary_files(saved, kind, tmp_path):
    tok, directory = saved[kind]
    hf_tok = HF_CLASSES[kind].from_pretrained(vocab_only(kind, directory, tmp_path / "vocab"))
    assert_same(tok, hf_tok)
    # t2t reading the bare vocabulary files agrees too (it is what loading a published model does).
    assert_same(Tokenizer.from_pretrained(tmp_path / "vocab"), hf_tok)


@pytest.mark.parametrize("kind", list(SIZES))
def test_transformers_reads_what_t2t_saves(saved, kind):
    tok, directory = saved[kind]
    hf_tok = transformers.AutoTokenizer.from_pretrained(directory)
    assert type(hf_tok) is HF_CLASSES[kind]
    assert_same(tok, hf_tok)
    assert hf_tok.pad_token_id == tok.pad_id and hf_tok.eos_token_id == tok.eos_id
    assert hf_tok.unk_token_id == tok.unk_id and hf_tok.bos_token_id == tok.bos_id
    assert hf_tok.cls_token_id == tok.cls_id and hf_tok.sep_token_id == tok.sep_id
    assert hf_tok.mask_token_id == tok.mask_id
    assert sorted(hf_tok.all_special_ids) == tok.special_ids


@pytest.mark.parametrize("kind", list(SIZES))
def test_t2t_reads_what_transformers_saves(saved, kind, tmp_path):
    tok, directory = saved[kind]
    hf_tok = HF_CLASSES[kind].from_pretrained(vocab_only(kind, directory, tmp_path / "vocab"))
    hf_tok.save_pretrained(tmp_path / "hf")
    again = Tokenizer.from_pretrained(tmp_path / "hf")
    assert again.kind == kind
    assert_same(again, hf_tok)
    assert (again.pad_id, again.eos_id, again.unk_id) == (tok.pad_id, tok.eos_id, tok.unk_id)


@pytest.mark.parametrize("kind", list(SIZES))
def test_pairs_and_truncation_match(saved, kind):
    tok, directory = saved[kind]
    hf_tok = transformers.AutoTokenizer.from_pretrained(directory)
    for first, second in PAIRS:
        ours, theirs = tok.encode_pair(first, second), hf_tok(first, second, return_token_type_ids=True)
        assert ours.ids == theirs["input_ids"], (first, second)
        assert ours.token_type_ids == theirs["token_type_ids"], (first, second)
    long = "the quick brown fox jumps over the lazy dog and every model learns " * 3
    for max_length in (5, 12, 40):
        assert (
            tok.encode(long, max_length=max_length)
            == hf_tok(long, truncation=True, max_length=max_length)["input_ids"]
        )
        ours = tok.encode_pair(long, "happy house " * 4, max_length=max_length)
        theirs = hf_tok(long, "happy house " * 4, truncation=True, max_length=max_length)
        assert ours.ids == theirs["input_ids"]


def test_sentinel_ids_match_hf_t5(saved):
    tok, directory = saved["sentencepiece"]
    hf_tok = transformers.AutoTokenizer.from_pretrained(directory)
    for k in (0, 1, 50, 99):
        assert tok.sentinel_id(k) == hf_tok.convert_tokens_to_ids(f"<extra_id_{k}>")
    assert tok.sentinel_id(0) == len(hf_tok) - 1


@pytest.mark.slow
def test_t5_sized_vocabulary_has_t5s_numbers(tmp_path):
    """32100 tokens = a 32000-piece spiece.model + 100 sentinels; 32128 embedding rows; as T5 ships."""
    import random

    import sentencepiece

    rng = random.Random(0)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyzäöüé", k=rng.randint(2, 9))) for _ in range(150_000)
    ]
    corpus = tmp_path / "big.txt"
    with open(corpus, "w", encoding="utf-8") as fh:
        for _ in range(30_000):
            fh.write(" ".join(rng.choices(words, k=rng.randint(5, 20))) + "\n")
    tok = Tokenizer.train([corpus], vocab_size=32100)
    assert (tok.vocab_size, tok.model_vocab_size) == (32100, 32128)
    assert (tok.pad_id, tok.eos_id, tok.unk_id, tok.sentinel_id(0), tok.sentinel_id(99)) == (
        0,
        1,
        2,
        32099,
        32000,
    )
    tok.save_pretrained(tmp_path / "t5")
    spm = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "t5" / "spiece.model"))
    assert spm.get_piece_size() == 32000 and spm.bos_id() == -1
    hf_tok = transformers.T5TokenizerFast.from_pretrained(
        vocab_only("sentencepiece", tmp_path / "t5", tmp_path / "v")
    )
    assert_same(tok, hf_tok)


def test_tokenizer_and_model_share_a_checkpoint_directory(saved, tmp_path):
    import t2t
    from t2t.hub import save_pretrained

    tok, _ = saved["sentencepiece"]
    save_pretrained(t2t.build_model(t2t.preset("t5-tiny")), tmp_path)
    model_files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors"} <= model_files.keys()
    tok.save_pretrained(tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in model_files} == model_files
    assert Tokenizer.from_pretrained(tmp_path).encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)
    assert_same(tok, transformers.AutoTokenizer.from_pretrained(tmp_path))
    assert t2t.from_pretrained(str(tmp_path)).config.arch == "encoder-decoder"


def test_saving_another_kind_over_a_directory_replaces_the_old_vocabulary(saved, tmp_path):
    saved["sentencepiece"][0].save_pretrained(tmp_path)
    bert, _ = saved["wordpiece"]
    bert.save_pretrained(tmp_path)
    assert not (tmp_path / "spiece.model").exists()
    assert Tokenizer.from_pretrained(tmp_path).kind == "wordpiece"
    assert_same(bert, transformers.AutoTokenizer.from_pretrained(tmp_path))


@pytest.mark.parametrize("kwargs", [{"legacy": False}, {"legacy": True}, {"add_prefix_space": False}])
def test_t5_legacy_and_prefix_space_switches_change_nothing_in_transformers_5(saved, kwargs):
    """Why t2t has no such switch: transformers 5.23's T5 tokenizer ignores both (see docs/tokenizers.md)."""
    tok, directory = saved["sentencepiece"]
    assert_same(tok, transformers.T5TokenizerFast.from_pretrained(directory, **kwargs))
    tokens = tok.tokenize("house<extra_id_0>house")
    assert tokens == tok.tokenize("house <extra_id_0> house")
    assert tokens[tokens.index("<extra_id_0>") + 1].startswith("▁")  # a ▁ after the sentinel: "legacy"


def test_the_comparison_sees_differences(saved):
    """compare_with_hf (which assert_same and benchmarks/tokenizer_parity.py use) reports mismatches."""
    t5, _ = saved["sentencepiece"]
    _, bert_dir = saved["wordpiece"]
    problems = compare_with_hf(t5, transformers.AutoTokenizer.from_pretrained(bert_dir))
    assert len(problems["ids"]) > len(SAMPLES) and "encode_batch differs" in problems["ids"]
    assert problems["decode"]
