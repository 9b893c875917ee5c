"""Directories as the hub has them, beyond what t2t writes itself: a v4-era T5 tokenizer.json picked by
config.json's model_type, cased BERT, GPT-2 options, clean-up of spaces, Bert subclasses, and any other
fast tokenizer (tokenizer.json used as it is). Each is compared with transformers' AutoTokenizer."""

from __future__ import annotations

import json

import pytest
import transformers
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, normalizers, processors, trainers

from t2t.tokenizer import Tokenizer
from test_tokenizer_parity import assert_same
from tokenizer_helpers import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("layouts") / "corpus.txt")


def write_json(path, data):
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def both(directory):
    return Tokenizer.from_pretrained(directory), transformers.AutoTokenizer.from_pretrained(directory)


def test_v4_era_t5_tokenizer_json_found_by_model_type(corpus, tmp_path):
    """transformers 5 ignores the pipeline stored for T5 (Replace normaliser, prepend_scheme 'first') and
    rebuilds its own; t2t must do the same, and find the class from config.json alone."""
    Tokenizer.train([corpus], kind="sentencepiece", vocab_size=400).save_pretrained(tmp_path / "src")
    data = json.loads((tmp_path / "src" / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            data["normalizer"],
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"},
        ],
    }
    data["pre_tokenizer"] = {
        "type": "Metaspace",
        "replacement": "▁",
        "prepend_scheme": "first",
        "split": True,
    }
    data["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    hub = tmp_path / "hub"
    hub.mkdir()
    write_json(hub / "tokenizer.json", data)
    write_json(hub / "config.json", {"model_type": "t5", "vocab_size": 512})
    ours, theirs = both(hub)
    assert type(theirs) is transformers.T5TokenizerFast and ours.kind == "sentencepiece"
    assert_same(ours, theirs)


def test_cased_bert(corpus, tmp_path):
    tok = Tokenizer.train([corpus], kind="wordpiece", vocab_size=500, lowercase=False)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["do_lower_case"] is False
    assert "Hello" in tok.tokenize("Hello World")
    ours, theirs = both(tmp_path)
    assert_same(ours, theirs)
    assert_same(tok, theirs)


def test_bert_subclass_and_space_clean_up(corpus, tmp_path):
    Tokenizer.train([corpus], kind="wordpiece", vocab_size=400).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="DistilBertTokenizer", clean_up_tokenization_spaces=True)
    write_json(tmp_path / "tokenizer_config.json", config)
    ours, theirs = both(tmp_path)
    assert ours.kind == "wordpiece"
    assert ours.decode(ours.encode("don't stop , ok ?")) == "don't stop, ok?"  # the clean-up is on
    assert_same(ours, theirs)


@pytest.mark.parametrize("with_json", [True, False])
@pytest.mark.parametrize(
    "options", [{"add_prefix_space": True}, {"add_bos_token": True, "add_eos_token": True}]
)
def test_gpt2_options(corpus, tmp_path, options, with_json):
    """add_bos/eos_token count only without a tokenizer.json (its post-processor wins), as in transformers."""
    Tokenizer.train([corpus], kind="bpe", vocab_size=500).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    write_json(tmp_path / "tokenizer_config.json", {**config, **options})
    if not with_json:
        (tmp_path / "tokenizer.json").unlink()
    ours, theirs = both(tmp_path)
    assert_same(ours, theirs)
    adds = options.get("add_bos_token", False) and not with_json
    assert (ours.encode("hi")[0] == ours.bos_id) == adds
    assert (ours.encode("hi")[-1] == ours.eos_id) == adds


def test_any_other_fast_tokenizer_uses_its_tokenizer_json(corpus, tmp_path):
    """A Llama-style sentencepiece BPE (Metaspace, byte fallback, <s> prepended) from tokenizers."""
    backend = Backend(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    specials = ["<unk>", "<s>", "</s>"]
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials + bytes_, show_progress=False)
    backend.train([str(corpus)], trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    backend.save(str(tmp_path / "tokenizer.json"))
    write_json(
        tmp_path / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
        },
    )
    ours, theirs = both(tmp_path)
    assert (ours.kind, ours.bos_id, ours.eos_id, ours.unk_id, ours.pad_id) == ("bpe", 1, 2, 0, None)
    assert ours.encode("hi")[0] == ours.bos_id
    assert_same(ours, theirs)
    # and written back, transformers and t2t still agree
    ours.save_pretrained(tmp_path / "again")
    again, theirs_again = both(tmp_path / "again")
    assert_same(again, theirs_again)
    assert_same(again, theirs)


def test_bert_vocab_laid_out_like_googles(corpus, tmp_path):
    """Google's vocab.txt: [PAD] 0, [unused*], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103. Here one
    role token is missing too: transformers appends it after the vocabulary, and so must t2t."""
    trained = Tokenizer.train([corpus], kind="wordpiece", vocab_size=400)
    pieces = [t for t, _ in sorted(trained.get_vocab().items(), key=lambda kv: kv[1])][5:]
    lines = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", *pieces]  # no [MASK]
    (tmp_path / "vocab.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    ours, theirs = (
        Tokenizer.from_pretrained(tmp_path),
        transformers.BertTokenizerFast.from_pretrained(tmp_path),
    )
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id) == (0, 100, 101, 102)
    assert ours.mask_id == len(lines) == theirs.mask_token_id
    assert_same(ours, theirs)
